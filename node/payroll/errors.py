"""Error codes of the payroll app (request level). Per-row outcomes of an import are not exceptions: they are the
``error_code`` of the row in the import report (:data:`node.payroll.services.ROW_CODES`)."""

from node.core.errors import Conflict, ValidationFailed


class EmployerCodeTaken(Conflict):
    code = "employer_code_taken"


class BorrowerAlreadyEnrolled(Conflict):
    """The borrower already has a live payroll enrolment at this MFI (one employer deducts a borrower's loans)."""

    code = "borrower_already_enrolled"


class EmployeeNumberTaken(Conflict):
    code = "employee_number_taken"


class EnrolmentAlreadyEnded(Conflict):
    code = "enrolment_already_ended"


class PayrollFileInvalid(ValidationFailed):
    """The uploaded file cannot be read as a result file at all (format, encoding, header, size, no rows)."""

    code = "payroll_file_invalid"


class PayrollFileAlreadyImported(Conflict):
    """The same file (sha256) was already imported for this employer and month: nothing is posted again."""

    code = "payroll_file_already_imported"


class PayrollNotExported(Conflict):
    """A reconciliation needs what was asked: no deduction file was exported for this employer and month."""

    code = "payroll_not_exported"
