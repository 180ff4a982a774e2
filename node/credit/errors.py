from node.core.errors import Conflict, ServiceUnavailable


class StackingLimitReached(Conflict):
    """Approving or disbursing would take the borrower past the network lending policy."""

    code = "stacking_limit"


class CreditNetworkUnavailable(ServiceUnavailable):
    """The ring cannot answer at quorum: cross-network credit decisions fail closed."""

    code = "credit_network_unavailable"
