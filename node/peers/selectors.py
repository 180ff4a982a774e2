"""Reads for the federation endpoints: by borrower key only (never a national ID)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db.models import Count, DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce

from node.borrowers.models import Borrower
from node.peers.schemas import LOAN_STATUSES, PAR_DAYS, BorrowerStatus, NodeFigures


def borrower_status_get(*, borrower_key: str) -> BorrowerStatus:
    # registered *here*: a visiting borrower's copy (home_district set) belongs to another district
    row = (Borrower.objects.filter(borrower_key=borrower_key, home_district="")
           .values_list("is_verified", flat=True).first())
    return BorrowerStatus(district=settings.DISTRICT.code, borrower_key=borrower_key, registered=row is not None,
                          verified=bool(row))


def node_figures() -> NodeFigures:
    """This node's own portfolio: MFIs, borrowers registered here, loans by status, outstanding principal of
    active loans, and portfolio at risk by days past due as of the last close of business (``Loan.days_past_due``
    is what close of business keeps). Four set-based queries."""
    from node.cob.services import business_date_get, closed_through
    from node.loans.models import Loan, LoanInstallment
    from node.mfis.models import Mfi

    by_status = dict(Loan.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    zero = Value(0, output_field=DecimalField(max_digits=20, decimal_places=2))
    outstanding = Coalesce(Sum(F("principal") - F("principal_paid")), zero)
    active = LoanInstallment.objects.filter(loan__status="active")
    sums = active.aggregate(total=outstanding, **{
        f"par_{n}": Coalesce(Sum(F("principal") - F("principal_paid"), filter=Q(loan__days_past_due__gt=int(n))), zero)
        for n in PAR_DAYS})
    through = closed_through()
    return NodeFigures(
        district=settings.DISTRICT.code, business_date=business_date_get().isoformat(),
        closed_through=through.isoformat() if through else None, mfis=Mfi.objects.count(),
        borrowers=Borrower.objects.filter(home_district="").count(),
        loans={s: int(by_status.get(s, 0)) for s in LOAN_STATUSES}, currency=settings.DISTRICT.currency,
        outstanding_principal=str(sums["total"]), par={n: str(sums[f"par_{n}"]) for n in PAR_DAYS},
    )


def _ratio(part: Decimal, whole: Decimal) -> str | None:
    return str((part / whole).quantize(Decimal("0.0001"))) if whole else None


def figures_json(f: NodeFigures) -> dict:
    """One district's figures with its PAR ratios (PAR_N = at-risk outstanding principal / outstanding principal)."""
    total = Decimal(f.outstanding_principal)
    return {**{k: v for k, v in f.to_json().items() if k not in ("schema", "district")},
            "par_ratio": {n: _ratio(Decimal(v), total) for n, v in f.par.items()}}


def network_totals(figures: list[NodeFigures]) -> dict:
    """The network's figures, summed over the districts that answered (one currency: LSL)."""
    total = sum((Decimal(f.outstanding_principal) for f in figures), Decimal("0.00"))
    par = {n: sum((Decimal(f.par[n]) for f in figures), Decimal("0.00")) for n in PAR_DAYS}
    return {
        "districts": len(figures), "mfis": sum(f.mfis for f in figures),
        "borrowers": sum(f.borrowers for f in figures),
        "loans": {s: sum(f.loans[s] for f in figures) for s in LOAN_STATUSES},
        "currencies": sorted({f.currency for f in figures}),
        "outstanding_principal": str(total), "par": {n: str(v) for n, v in par.items()},
        "par_ratio": {n: _ratio(v, total) for n, v in par.items()},
    }
