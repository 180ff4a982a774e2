"""The reports' SQL: one set-based statement per section, over this node's own books. Every fragment put into the
SQL text comes from the fixed maps below, chosen by an allowlisted parameter; values travel as query parameters.

Each function returns the section's rows as ``{"group": ..., <measure>: int | Decimal}``, measures only (the
derived columns are computed by ``node.reports.selectors`` after any summing over districts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import connection

from node.cob.services import PAR_MEASURES_SQL
from node.ledger.chart import PROVISION_EXPENSE
from node.reports.catalog import LOAN_LISTS

LOAN_JOINS = """
    JOIN mfis_mfi m ON m.id = l.mfi_id
    JOIN loans_loanproduct p ON p.id = l.product_id
    LEFT JOIN users_user u ON u.id = l.approved_by_id"""
#: the same names over close of business's daily snapshot ``s`` (``cob_portfolioday``)
SNAPSHOT_JOINS = """
    JOIN mfis_mfi m ON m.id = s.mfi_id
    JOIN loans_loanproduct p ON p.id = s.product_id
    LEFT JOIN users_user u ON u.id = s.officer_id"""
#: the PAR measures summed over snapshot rows ``s`` (a day's, or each period's last day)
SNAPSHOT_MEASURES = """COALESCE(SUM(s.loans), 0) AS loans, COALESCE(SUM(s.outstanding_principal), 0) AS outstanding,
               COALESCE(SUM(s.loans_at_risk_30), 0) AS loans_at_risk_30,
               COALESCE(SUM(s.at_risk_1), 0) AS at_risk_1, COALESCE(SUM(s.at_risk_30), 0) AS at_risk_30,
               COALESCE(SUM(s.at_risk_60), 0) AS at_risk_60, COALESCE(SUM(s.at_risk_90), 0) AS at_risk_90"""
#: the SQL expression for each dimension (``%s`` is the district code, passed as a parameter)
GROUP_SQL = {
    "mfi": "m.code",
    "product": "m.code || ' / ' || p.code",
    "officer": "COALESCE(NULLIF(u.username, ''), '—')",
    "district": "%s::text",
}
PERIOD_SQL = {"day": "day", "week": "week", "month": "month"}  # date_trunc fields

#: outstanding principal is ``loans_loan.principal_outstanding``: kept by database triggers on the installments
#: (loans migration 0006), read through the covering index ``loan_active_portfolio`` for active loans
#: arrears: unpaid amounts (all components) of installments due before the day the last close of business closed,
#: which is when that close counted days past due; only loans it found past due have any
ARREARS = """
    LEFT JOIN (SELECT i.loan_id, SUM(i.principal + i.interest + i.fees + i.penalties - i.principal_paid
                                     - i.interest_paid - i.fees_paid - i.penalties_paid) AS arrears
               FROM loans_loaninstallment i
               JOIN loans_loan a ON a.id = i.loan_id AND a.status = 'active' AND a.days_past_due > 0
               WHERE i.number >= 1 AND i.due_date < %s GROUP BY i.loan_id) ar ON ar.loan_id = l.id"""


def _arrears_day() -> date:
    from node.cob.services import business_date_get, closed_through

    return closed_through() or business_date_get()


@dataclass(frozen=True)
class ReportQuery:
    """A report's validated parameters (``node.reports.params.report_query`` builds it)."""

    name: str
    scope: str = "node"
    by: str | None = None
    mfi_id: int | None = None
    mfi_code: str | None = None
    period: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    month_end: date | None = None
    status: str | None = None
    as_of: date | None = None  # PAR as of an earlier closed day (the day's snapshot); None: the loans now

    def to_json(self) -> dict:
        """The parameters a peer needs to run the same report on its own books."""
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in (
            ("by", self.by), ("mfi", self.mfi_code), ("period", self.period), ("from", self.date_from),
            ("to", self.date_to), ("month", self.month_end.strftime("%Y-%m") if self.month_end else None),
            ("status", self.status), ("as_of", self.as_of)) if v is not None}


def _rows(sql: str, params: list) -> list[dict]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        names = [c.name for c in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def _group(q: ReportQuery) -> tuple[str, list]:
    expr = GROUP_SQL[q.by or "district"]
    return expr, [settings.DISTRICT.code] if "%s" in expr else []


def _mfi(q: ReportQuery, alias: str = "l") -> tuple[str, list]:
    return (f"{alias}.mfi_id = %s", [q.mfi_id]) if q.mfi_id else ("TRUE", [])


def par(q: ReportQuery) -> dict:
    g, gp = _group(q)
    if q.as_of is not None:  # the measures close of business kept for that day, by the same dimensions
        w, wp = _mfi(q, "s")
        return {"par": _rows(f"""
            SELECT {g} AS "group", {SNAPSHOT_MEASURES}
            FROM cob_portfolioday s {SNAPSHOT_JOINS}
            WHERE s.business_date = %s AND {w}
            GROUP BY 1 ORDER BY 1""", gp + [q.as_of] + wp)}  # nosec B608 -- allowlisted fragments, values bound
    w, wp = _mfi(q)
    return {"par": _rows(f"""
        SELECT {g} AS "group", {PAR_MEASURES_SQL}
        FROM loans_loan l {LOAN_JOINS}
        WHERE l.status = 'active' AND {w}
        GROUP BY 1 ORDER BY 1""", gp + wp)}  # nosec B608 -- allowlisted fragments, values bound


def par_trend(q: ReportQuery) -> dict:
    """PAR per period from the daily snapshots close of business keeps (``cob_portfolioday``): in each period, the
    last closed day of this node on or before ``to`` — grouped by the period's start, so districts add up."""
    w, wp = _mfi(q, "s")
    trunc = PERIOD_SQL[q.period]
    return {"trend": _rows(f"""
        WITH days AS (
            SELECT DISTINCT ON (date_trunc('{trunc}', business_date)) business_date AS day,
                   date_trunc('{trunc}', business_date)::date AS period
            FROM cob_portfolioday WHERE business_date BETWEEN %s AND %s
            ORDER BY date_trunc('{trunc}', business_date), business_date DESC)
        SELECT d.period AS "group", {SNAPSHOT_MEASURES}
        FROM days d LEFT JOIN cob_portfolioday s ON s.business_date = d.day AND {w}
        GROUP BY 1 ORDER BY 1""", [q.date_from, q.date_to, *wp])}  # nosec B608 -- allowlisted fragments, values bound


def aging(q: ReportQuery) -> dict:
    w, wp = _mfi(q)
    return {"aging": _rows(f"""
        SELECT l.delinquency_bucket AS "group", COUNT(*) AS loans,
               COALESCE(SUM(l.principal_outstanding), 0) AS outstanding, COALESCE(SUM(ar.arrears), 0) AS arrears
        FROM loans_loan l {ARREARS}
        WHERE l.status = 'active' AND {w}
        GROUP BY 1""", [_arrears_day(), *wp])}  # nosec B608 -- allowlisted fragments, values bound


def flows(q: ReportQuery) -> dict:
    w, wp = _mfi(q)
    trunc = PERIOD_SQL[q.period]
    disbursed = _rows(f"""
        SELECT date_trunc('{trunc}', l.disbursement_date)::date AS "group", COUNT(*) AS disbursed_loans,
               SUM(l.principal) AS disbursed
        FROM loans_loan l
        WHERE l.disbursement_date BETWEEN %s AND %s AND l.disbursed_at IS NOT NULL
          AND l.rescheduled_from_id IS NULL AND {w}
        GROUP BY 1""", [q.date_from, q.date_to, *wp])  # nosec B608 -- allowlisted fragments, values bound
    collected = _rows(f"""
        SELECT date_trunc('{trunc}', r.payment_date)::date AS "group", COUNT(*) AS repayments,
               SUM(r.amount) AS collected, SUM(r.principal) AS collected_principal,
               SUM(r.interest) AS collected_interest, SUM(r.fees + r.penalties) AS collected_fees_penalties
        FROM repayments_repayment r
        WHERE r.payment_date BETWEEN %s AND %s AND r.reversed_at IS NULL AND {_mfi(q, "r")[0]}
        GROUP BY 1""", [q.date_from, q.date_to, *wp])  # nosec B608 -- allowlisted fragments, values bound
    rows: dict = {}
    for r in disbursed + collected:
        rows.setdefault(r["group"], {}).update(r)
    return {"flows": list(rows.values())}


def _demand(q: ReportQuery, group: str, gp: list, due_from: date | None, due_to: date, strict_to: bool) -> list:
    w, wp = _mfi(q)
    lo = "i.due_date >= %s AND " if due_from else ""
    lo2 = "i2.due_date >= %s AND " if due_from else ""
    op = "<" if strict_to else "<="
    dp = [due_from] if due_from else []
    return _rows(f"""
        SELECT {group} AS "group", COUNT(*) AS installments,
               COALESCE(SUM(i.principal + i.interest + i.fees), 0) AS due,
               COALESCE(SUM(i.principal_paid + i.interest_paid + i.fees_paid), 0) AS paid,
               COALESCE(SUM(ot.on_time), 0) AS paid_on_time
        FROM loans_loaninstallment i
        JOIN loans_loan l ON l.id = i.loan_id {LOAN_JOINS}
        LEFT JOIN (SELECT a.installment_id, SUM(a.principal + a.interest + a.fees) AS on_time
                   FROM repayments_repaymentallocation a
                   JOIN repayments_repayment r ON r.id = a.repayment_id AND r.reversed_at IS NULL
                   JOIN loans_loaninstallment i2 ON i2.id = a.installment_id
                   WHERE {lo2} i2.due_date {op} %s AND r.payment_date <= i2.due_date
                   GROUP BY a.installment_id) ot ON ot.installment_id = i.id
        WHERE i.number >= 1 AND {lo} i.due_date {op} %s
          AND l.status IN ('active', 'closed', 'written_off') AND {w}
        GROUP BY 1""", gp + dp + [due_to] + dp + [due_to] + wp)  # nosec B608 -- allowlisted fragments, values bound


def demand_collection(q: ReportQuery) -> dict:
    return {"demand": _demand(q, f"date_trunc('{PERIOD_SQL[q.period]}', i.due_date)::date", [], q.date_from,
                              q.date_to, strict_to=False)}


def repayment_rate(q: ReportQuery) -> dict:
    from node.cob.services import business_date_get

    g, gp = _group(q)
    # due before the business day in progress: what the last close of business counted as due
    return {"rate": _demand(q, g, gp, None, business_date_get(), strict_to=True)}


def risk_grades(q: ReportQuery) -> dict:
    w, wp = _mfi(q)
    return {"grades": _rows(f"""
        SELECT COALESCE(NULLIF(l.risk_grade, ''), '—') AS "group",
               COUNT(*) FILTER (WHERE l.risk_grade <> '') AS applications,
               COUNT(*) FILTER (WHERE l.approved_at IS NOT NULL) AS approved,
               COUNT(*) FILTER (WHERE l.status = 'active') AS active,
               COALESCE(SUM(l.principal_outstanding) FILTER (WHERE l.status = 'active'), 0) AS outstanding,
               COALESCE(SUM(l.principal_outstanding) FILTER (WHERE l.status = 'active' AND l.days_past_due > 30),
                        0) AS at_risk_30,
               COUNT(*) FILTER (WHERE l.status = 'written_off') AS written_off
        FROM loans_loan l
        WHERE l.status <> 'draft' AND (l.risk_grade <> '' OR l.approved_at IS NOT NULL) AND {w}
        GROUP BY 1""", wp)}  # nosec B608 -- allowlisted fragments, values bound


def regulatory_return(q: ReportQuery) -> dict:
    w, wp = _mfi(q, "s")
    classification = _rows(f"""
        SELECT s.klass AS "group", SUM(s.loans) AS loans, SUM(s.outstanding_principal) AS outstanding,
               SUM(s.arrears) AS arrears
        FROM cob_monthendportfolio s WHERE s.month_end = %s AND {w}
        GROUP BY 1""", [q.month_end, *wp])  # nosec B608 -- allowlisted fragments, values bound
    first = q.month_end.replace(day=1)
    flow = flows(ReportQuery("flows", mfi_id=q.mfi_id, period="month", date_from=first, date_to=q.month_end))["flows"]
    f = flow[0] if flow else {}
    wl, wlp = _mfi(q)
    gone = _rows(f"""
        SELECT l.status, COUNT(*) AS count, COALESCE(SUM(l.principal_outstanding), 0) AS amount
        FROM loans_loan l
        WHERE ((l.status = 'written_off' AND l.written_off_at::date BETWEEN %s AND %s)
            OR (l.status = 'rescheduled' AND l.rescheduled_at::date BETWEEN %s AND %s)) AND {wl}
        GROUP BY 1""", [first, q.month_end, first, q.month_end, *wlp])  # nosec B608 -- allowlisted fragments, values bound
    gone = {r["status"]: r for r in gone}
    we, wep = _mfi(q, "e")
    provision = _rows(f"""
        SELECT COUNT(DISTINCT e.id) AS count, COALESCE(SUM(jl.debit - jl.credit), 0) AS amount
        FROM ledger_journalline jl
        JOIN ledger_journalentry e ON e.id = jl.entry_id
        JOIN ledger_account a ON a.id = jl.account_id
        WHERE a.code = %s AND e.reference_type = 'provisioning' AND e.entry_date BETWEEN %s AND %s AND {we}
        """, [PROVISION_EXPENSE, first, q.month_end, *wep])[0]  # nosec B608 -- allowlisted fragments, values bound
    zero = Decimal("0.00")
    movements = [
        {"group": "disbursed", "count": f.get("disbursed_loans", 0), "amount": f.get("disbursed") or zero},
        {"group": "collected_principal", "count": f.get("repayments", 0), "amount": f.get("collected_principal") or zero},
        {"group": "collected_interest", "count": 0, "amount": f.get("collected_interest") or zero},
        {"group": "collected_fees_penalties", "count": 0, "amount": f.get("collected_fees_penalties") or zero},
    ] + [{"group": k, "count": gone.get(s, {}).get("count", 0), "amount": gone.get(s, {}).get("amount", zero)}
         for k, s in (("written_off", "written_off"), ("rescheduled", "rescheduled"))] + [
        # the month's net provision charge booked by close of business (negative: released); docs/reports.md
        {"group": "provision_charged", "count": provision["count"], "amount": provision["amount"]}]
    return {"classification": classification, "movements": movements}


FACTS = {"par": par, "par_trend": par_trend, "aging": aging, "flows": flows, "demand_collection": demand_collection,
         "repayment_rate": repayment_rate, "risk_grades": risk_grades, "regulatory_return": regulatory_return}


def loan_list(q: ReportQuery, *, limit: int) -> tuple[list[dict], int]:
    """The loans of one status group (at most ``limit`` of them, by reference) and how many there are."""
    w, wp = _mfi(q)
    statuses = list(LOAN_LISTS[q.status])
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM loans_loan l WHERE l.status = ANY(%s) AND {w}", [statuses, *wp])  # nosec B608 -- allowlisted fragments, values bound
        total = cur.fetchone()[0]
    rows = _rows(f"""
        SELECT l.reference, TRIM(b.first_name || ' ' || b.last_name) AS borrower, m.code AS mfi, p.code AS product,
               COALESCE(NULLIF(u.username, ''), '—') AS officer, l.status, l.principal, l.disbursement_date,
               l.principal_outstanding AS outstanding, l.days_past_due, COALESCE(NULLIF(l.risk_grade, ''), '—') AS grade
        FROM loans_loan l {LOAN_JOINS}
        JOIN borrowers_borrower b ON b.id = l.borrower_id
        WHERE l.status = ANY(%s) AND {w}
        ORDER BY l.reference LIMIT %s""", [statuses, *wp, limit])  # nosec B608 -- allowlisted fragments, values bound
    return rows, total
