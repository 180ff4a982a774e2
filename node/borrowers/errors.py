"""Stable error codes of the borrowers app."""

from node.core.errors import ApplicationError, Conflict, Forbidden, ServiceUnavailable


class BorrowerExists(Conflict):
    code = "borrower_exists"


class RegisteredElsewhere(Conflict):
    code = "borrower_registered_elsewhere"


class RingDown(ServiceUnavailable):
    code = "ring_unavailable"


class ConsentRequired(Forbidden):
    code = "consent_required"


class OtpError(ApplicationError):
    status = 400


class OtpRateLimited(ApplicationError):
    status = 429


class SmsUnavailable(ServiceUnavailable):
    code = "sms_unavailable"


class NotVerifiable(Conflict):
    code = "verification_requirements_unmet"


class UploadRejected(ApplicationError):
    status = 400


class UploadTooLarge(UploadRejected):
    code = "file_too_large"
    status = 413
