from node.core.errors import ApplicationError, Conflict, Forbidden, ValidationFailed


class IllegalTransition(Conflict):
    code = "illegal_transition"


class RateAboveCap(ValidationFailed):
    code = "rate_above_cap"


class OutsideProductLimits(ValidationFailed):
    code = "outside_product_limits"


class MakerCheckerViolation(Forbidden):
    code = "maker_checker_violation"


class StepUpRequired(ApplicationError):
    code = "step_up_required"
    status = 401


class ApprovalLimitExceeded(Forbidden):
    code = "approval_limit_exceeded"
