"""The reports an analyst can run, and the only parameters each accepts (allowlists: nothing from a request is ever
put into SQL; dimensions, statuses and periods map to fixed SQL fragments in ``node.reports.queries``).

A report is made of sections. Each section's rows have a group (``group`` column), *measures* that add up (counts
and money: a network report sums them over districts) and *derived* columns computed from the measures after
any summing (ratios, provisions), so a network PAR is the ratio of the summed amounts, never an average of ratios.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable

from django.utils.translation import gettext_lazy as _

INT, MONEY, RATIO, TEXT, DATE = "int", "money", "ratio", "text", "date"

#: Dimensions a report can be broken down by (``by``); "district" is this node (or each node, network-wide).
DIMENSIONS = {
    "mfi": _("MFI"),
    "product": _("Product"),
    "officer": _("Loan officer (approved by)"),
    "district": _("District"),
}
#: Dimensions a network-wide report may use: product codes and officers are a node's own.
NETWORK_DIMENSIONS = ("district", "mfi")
PERIODS = {"day": _("Day"), "week": _("Week"), "month": _("Month")}
#: Loan-list status groups and the loan statuses each covers.
LOAN_LISTS = {
    "active": ("active",),
    "pending": ("submitted", "under_review", "approved"),
    "closed": ("closed",),
    "written_off": ("written_off",),
    "rejected": ("rejected", "withdrawn"),
}
EXPORTS = ("csv", "xlsx", "pdf")


def ratio(part, whole) -> Decimal | None:
    """``part / whole`` to 4 places (0.1234 = 12.34%), rounded once (node.core.money); None for an empty whole."""
    from node.core.money import div_round

    part, whole = Decimal(part or 0), Decimal(whole or 0)
    return div_round(part, whole, 4) if whole else None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str


@dataclass(frozen=True)
class Derived:
    """A column computed from a row's measures (``fn(row, totals)``); on the total row it is recomputed from the
    totals (``total="recompute"``), summed over the rows (``"sum"``) or left empty (``"blank"``)."""

    key: str
    label: str
    kind: str
    fn: Callable[[dict, dict], object]
    total: str = "recompute"


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    group_label: str
    measures: tuple[Column, ...]
    derived: tuple[Derived, ...] = ()
    chart: str | None = None  # the column drawn as a bar per group
    #: a fixed row order (e.g. bucket names); otherwise rows sort by group
    order: Callable[[], list[str]] | None = None
    #: rows are periods (the group is a period's first day; every period of the range is shown, empty or not)
    by_period: bool = False

    @property
    def measure_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.measures)


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    description: str
    sections: tuple[Section, ...]
    params: tuple[str, ...]  # of: by, period, from, to, month, status, as_of
    dimensions: tuple[str, ...] = ()
    network: bool = True  # may be run network-wide (aggregates only: never lists of borrowers)
    as_of: str = "cob"  # "cob": as of the last close of business; "period": the chosen dates; "month": month end
    extra: dict = field(default_factory=dict)


def _m(key, label):
    return Column(key, label, MONEY)


def _n(key, label):
    return Column(key, label, INT)


def _par(n):
    return Derived(f"par_{n}", f"PAR{n}", RATIO, lambda r, t, n=n: ratio(r[f"at_risk_{n}"], r["outstanding"]))


def _bucket_names() -> list[str]:
    from node.cob.services import buckets

    return [name for _, name in buckets()]


def _class_names() -> list[str]:
    from node.cob.services import regulatory_classes

    return [name for _, name, _ in regulatory_classes()]


def _provision_rate(klass: str) -> Decimal | None:
    from node.cob.services import provision_rate

    return provision_rate(klass)  # like every ratio: 4 places


def _provision(row: dict) -> Decimal:
    from node.cob.services import provision_for  # the rule close of business books the provision with

    return provision_for(row["outstanding"], row["group"])


_PAR_MEASURES = (_n("loans", _("Active loans")), _m("outstanding", _("Outstanding principal")),
                 _n("loans_at_risk_30", _("Loans over 30 days")), _m("at_risk_1", _("At risk > 1 day")),
                 _m("at_risk_30", _("At risk > 30 days")), _m("at_risk_60", _("At risk > 60 days")),
                 _m("at_risk_90", _("At risk > 90 days")))
_GRADES = ["A", "B", "C", "D", "E", "—"]
_ITEMS = ["disbursed", "collected_principal", "collected_interest", "collected_fees_penalties", "written_off",
          "rescheduled", "provision_charged"]
_DEMAND = (_n("installments", _("Installments due")), _m("due", _("Due")), _m("paid", _("Paid")),
           _m("paid_on_time", _("Paid on time")))
_DEMAND_DERIVED = (
    Derived("unpaid", _("Unpaid"), MONEY, lambda r, t: Decimal(r["due"]) - Decimal(r["paid"])),
    Derived("collection_rate", _("Collection rate"), RATIO, lambda r, t: ratio(r["paid"], r["due"])),
    Derived("on_time_rate", _("On-time rate"), RATIO, lambda r, t: ratio(r["paid_on_time"], r["due"])),
)

REPORTS: dict[str, ReportSpec] = {s.name: s for s in (
    ReportSpec(
        "par", _("Portfolio at risk"),
        _("Outstanding principal of active loans with an installment overdue more than N days, divided by all "
          "outstanding principal (PAR1, PAR30, PAR60, PAR90), as of the last close of business or an earlier "
          "closed day."),
        (Section("par", _("Portfolio at risk"), _("Group"), _PAR_MEASURES, (_par(1), _par(30), _par(60), _par(90)),
                 chart="par_30"),),
        ("by", "as_of"), dimensions=("mfi", "product", "officer", "district")),
    ReportSpec(
        "par_trend", _("PAR trend"),
        _("Portfolio at risk per period (PAR1, PAR30, PAR60, PAR90), as the last close of business of each period "
          "left it: how the portfolio's quality moves from month to month."),
        (Section("trend", _("PAR trend"), _("Period starting"), _PAR_MEASURES, (_par(1), _par(30), _par(60), _par(90)),
                 chart="par_30", by_period=True),),
        ("period", "from", "to"), as_of="period"),
    ReportSpec(
        "aging", _("Arrears aging"),
        _("Active loans by days past due bucket: number, outstanding principal and the amount in arrears, as of "
          "the last close of business."),
        (Section("aging", _("Arrears aging"), _("Days past due"),
                 (_n("loans", _("Loans")), _m("outstanding", _("Outstanding principal")), _m("arrears", _("Arrears"))),
                 (Derived("share", _("Share of portfolio"), RATIO,
                          lambda r, t: ratio(r["outstanding"], t["outstanding"]), total="recompute"),),
                 chart="outstanding", order=_bucket_names),),
        ()),
    ReportSpec(
        "flows", _("Disbursements and collections"),
        _("Loans disbursed and repayments collected (reversals excluded) per period."),
        (Section("flows", _("Disbursements and collections"), _("Period starting"),
                 (_n("disbursed_loans", _("Loans disbursed")), _m("disbursed", _("Principal disbursed")),
                  _n("repayments", _("Repayments")), _m("collected", _("Collected")),
                  _m("collected_principal", _("Principal")), _m("collected_interest", _("Interest")),
                  _m("collected_fees_penalties", _("Fees and penalties"))),
                 chart="collected", by_period=True),),
        ("period", "from", "to"), as_of="period"),
    ReportSpec(
        "demand_collection", _("Expected vs collected"),
        _("Installments falling due per period (principal, interest and fees; penalties excluded) against what has "
          "been paid on them so far, and what was paid by the due date."),
        (Section("demand", _("Expected vs collected"), _("Period starting"), _DEMAND, _DEMAND_DERIVED,
                 chart="collection_rate", by_period=True),),
        ("period", "from", "to"), as_of="period"),
    ReportSpec(
        "repayment_rate", _("Repayment rate"),
        _("Everything due up to the last close of business (principal, interest and fees) against what has been "
          "paid on it, and what was paid by the due date (on-time repayment rate)."),
        (Section("rate", _("Repayment rate"), _("Group"), _DEMAND, _DEMAND_DERIVED, chart="on_time_rate"),),
        ("by",), dimensions=("mfi", "product", "officer", "district")),
    ReportSpec(
        "risk_grades", _("Risk-grade distribution"),
        _("Applications by the credit grade their network credit report gave, with how many were approved and how "
          "the active ones perform (PAR30)."),
        (Section("grades", _("Risk-grade distribution"), _("Grade"),
                 (_n("applications", _("Applications assessed")), _n("approved", _("Approved")),
                  _n("active", _("Active")), _m("outstanding", _("Outstanding principal")),
                  _m("at_risk_30", _("At risk > 30 days")), _n("written_off", _("Written off"))),
                 (Derived("approval_rate", _("Approval rate"), RATIO, lambda r, t: ratio(r["approved"], r["applications"])),
                  _par(30)),
                 chart="applications", order=lambda: list(_GRADES)),),
        ()),
    ReportSpec(
        "loans", _("Loan list"),
        _("Loans of one status group with their balances, as of the last close of business."),
        (), ("status",), network=False),
    ReportSpec(
        "regulatory_return", _("Monthly regulatory return"),
        _("Prudential return of portfolio quality: active loans by regulatory class at the month end, as close of "
          "business classified them, with the required provisions; and the month's movements."),
        (Section("classification", _("Portfolio quality at month end"), _("Class"),
                 (_n("loans", _("Loans")), _m("outstanding", _("Outstanding principal")), _m("arrears", _("Arrears"))),
                 (Derived("share", _("Share of portfolio"), RATIO, lambda r, t: ratio(r["outstanding"], t["outstanding"])),
                  Derived("provision_rate", _("Provision rate"), RATIO, lambda r, t: _provision_rate(r["group"]),
                          total="blank"),
                  Derived("provision", _("Required provision"), MONEY,
                          lambda r, t: _provision(r),
                          total="sum")),
                 chart="outstanding", order=_class_names),
         Section("movements", _("Movements in the month"), _("Item"),
                 (_n("count", _("Number")), _m("amount", _("Amount"))), order=lambda: list(_ITEMS))),
        ("month",), as_of="month"),
)}

#: Loan-list columns (not a summed report: a node's own loans, never sent to peers).
LOAN_LIST_COLUMNS = (
    Column("reference", _("Reference"), TEXT), Column("borrower", _("Borrower"), TEXT), Column("mfi", _("MFI"), TEXT),
    Column("product", _("Product"), TEXT), Column("officer", _("Loan officer"), TEXT),
    Column("status", _("Status"), TEXT), Column("principal", _("Principal"), MONEY),
    Column("disbursement_date", _("Disbursed on"), DATE), Column("outstanding", _("Outstanding principal"), MONEY),
    Column("days_past_due", _("Days past due"), INT), Column("grade", _("Grade"), TEXT),
)
MOVEMENT_LABELS = {
    "disbursed": _("Loans disbursed"), "collected_principal": _("Principal collected"),
    "collected_interest": _("Interest collected"), "collected_fees_penalties": _("Fees and penalties collected"),
    "written_off": _("Loans written off (principal)"), "rescheduled": _("Loans rescheduled (principal)"),
    "provision_charged": _("Loan loss provision charged (net; negative: released)"),
}
