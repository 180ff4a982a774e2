from node.core.errors import ApplicationError, Conflict, ServiceUnavailable


class StackingLimitReached(Conflict):
    """Approving or disbursing would take the borrower past the network lending policy."""

    code = "stacking_limit"


class CreditNetworkUnavailable(ServiceUnavailable):
    """The ring cannot answer at quorum: cross-network credit decisions fail closed."""

    code = "credit_network_unavailable"


class EnquiryLimitReached(ApplicationError):
    """The staff member has made as many credit look-ups this hour as the node allows (a harvesting guard)."""

    code = "enquiry_limit_reached"
    status = 429
