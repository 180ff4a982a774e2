"""Reads for the federation endpoints: by borrower key only (never a national ID)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce

from node.borrowers.models import Borrower
from node.peers.schemas import SCHEMA, LOAN_STATUSES, PAR_DAYS, BorrowerStatus, NodeFigures

AGGREGATES_PATH = "/_federation/v1/aggregates"
PING_PATH = "/_federation/v1/ping"


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


def figures_from_peer(district: str, data) -> NodeFigures:
    """A peer's answer to ``GET /_federation/v1/aggregates``, strictly parsed (the fan-out's ``parse``)."""
    from federation.fanout import BadResponse

    f = NodeFigures.from_json(data)
    if f.district != district:
        raise BadResponse("the figures are about another district")
    return f


def network_figures() -> dict:
    """Network-wide portfolio: this node's own figures and every active peer's (asked at once over signed
    requests), with totals over those that answered; a district that does not answer is listed under ``missing``
    and left out of the totals (``partial``). Figures are as of each node's last close of business."""
    from federation.fanout import fanout

    own = node_figures()
    result = fanout("GET", AGGREGATES_PATH, parse=figures_from_peer,
                    timeout=float(getattr(settings, "LETSEMA_AGGREGATES_TIMEOUT", 2.0)))
    figures = {own.district: own, **result.answered}
    return {
        "schema": SCHEMA, "partial": result.partial, "missing": dict(sorted(result.missing.items())),
        "network": network_totals(list(figures.values())),
        "districts": {d: figures_json(f) for d, f in sorted(figures.items())},
    }


def network_districts() -> dict:
    """The district nodes as this node sees them, for operators: every entry of the peer directory (this node
    first) with its URL, status, where the entry comes from and its signing keys' validity now; for each active
    peer whether it answers a signed ping right now, and if not why (timeout, refused, backing off, bad signature).
    ``ring_error`` says when the directory could only be read from configuration."""
    from federation.fanout import fanout
    from federation.peers import get_directory

    own = settings.DISTRICT.code
    directory = get_directory()
    now = datetime.now(UTC)
    pings = fanout("GET", PING_PATH, timeout=float(getattr(settings, "LETSEMA_AGGREGATES_TIMEOUT", 2.0)))
    rows = []
    for code, peer in sorted(directory.peers.items(), key=lambda kv: (kv[0] != own, kv[0])):
        if code == own:
            reach = "this node"
        elif not peer.active:
            reach = "suspended"
        elif code in pings.answered:
            reach = "answers"
        else:
            reach = pings.missing.get(code, "not asked")
        rows.append({"district": code, "url": peer.public_url, "status": peer.status, "source": peer.source,
                     "keys": [{"key_id": k, "validity": key.validity_at(now), "source": key.source}
                              for k, key in sorted(peer.keys.items())],
                     "reachable": code == own or code in pings.answered, "reach": reach})
    return {"districts": rows, "answered": len(pings.answered), "missing": dict(sorted(pings.missing.items())),
            "ring_error": None if directory.ring_ok else (directory.ring_error or "the ring could not be read"),
            "elapsed_ms": round(pings.elapsed_ms, 1)}
