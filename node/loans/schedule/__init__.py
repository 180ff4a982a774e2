"""Pure repayment-schedule engine reproducing Apache Fineract's arithmetic.

No Django, no database, no float: ``Decimal`` throughout, HALF_EVEN rounding,
the last installment absorbing the remainder. Usage::

    from node.loans.schedule import parse_schedule_input, generate_schedule, schedule_to_json

    inp = parse_schedule_input(json_dict)   # raises ScheduleInputError(errors)
    data = schedule_to_json(generate_schedule(inp))

Modules: ``inputs`` (fields, defaults, validation), ``arithmetic`` (Fineract's
MathContext and Money rounding), ``dates``, ``cumulative`` (CUMULATIVE engine),
``progressive`` (PROGRESSIVE / EMI calculator), ``engine`` (fees, output).
The arithmetic follows apache/fineract ``develop`` as of late 2024
(LoanApplicationTerms, AbstractCumulativeLoanScheduleGenerator,
ProgressiveEMICalculator, Money).
"""

from .engine import Installment, Schedule, Totals, generate_schedule, schedule_to_json
from .inputs import Fee, ScheduleInput, ScheduleInputError, parse_schedule_input

__all__ = [
    "Fee",
    "Installment",
    "Schedule",
    "ScheduleInput",
    "ScheduleInputError",
    "Totals",
    "generate_schedule",
    "parse_schedule_input",
    "schedule_to_json",
]
