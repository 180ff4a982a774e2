"""Running reports: check the parameters against the catalogue's allowlists, run the section queries on this node
(or ask every district for theirs and sum them), then compute derived columns and totals.

Who sees what: analysts and MFI admins run reports on their own MFI; Letsema admins on any MFI of this node, on
the whole node, or network-wide (``scope=network``: every active district runs the same report on its own books
over a signed request; only summed figures travel, never a borrower)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils import timezone

from node.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from node.reports import queries
from node.reports.catalog import (
    INT, LOAN_LIST_COLUMNS, LOAN_LISTS, MONEY, NETWORK_DIMENSIONS, PERIODS, REPORTS, ReportSpec, Section,
)
from node.reports.queries import ReportQuery
from node.users.models import Role

REPORT_ROLES = (Role.ANALYST, Role.MFI_ADMIN, Role.LETSEMA_ADMIN)
FACTS_PATH = "/_federation/v1/reports"
SCHEMA = "letsema.report-facts.v1"
MAX_PERIODS = 400
LIST_LIMIT = 100_000  # rows a loan list returns (exports); the page shows the first PAGE_LIMIT
PAGE_LIMIT = 200
_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass
class ReportResult:
    spec: ReportSpec
    query: ReportQuery
    as_of: str
    sections: list[dict]
    notes: list[str] = field(default_factory=list)
    partial: bool = False
    missing: dict = field(default_factory=dict)
    districts: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "report": self.spec.name, "title": str(self.spec.title), "scope": self.query.scope,
            "params": self.query.to_json(), "as_of": self.as_of, "district": settings.DISTRICT.code,
            "districts": self.districts, "partial": self.partial, "missing": self.missing,
            "notes": [str(n) for n in self.notes], "generated_at": timezone.now().isoformat(timespec="seconds"),
            "sections": [{**s, "title": str(s["title"]),
                          "columns": [{"key": c["key"], "label": str(c["label"]), "kind": c["kind"]}
                                      for c in s["columns"]],
                          "rows": [_jsonable(r) for r in s["rows"]],
                          "total": _jsonable(s["total"]) if s["total"] else None} for s in self.sections],
        }


def _jsonable(row: dict) -> dict:
    return {k: (str(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, date) else v)
            for k, v in row.items()}


# --- parameters ------------------------------------------------------------------------------------
def reports_for(actor) -> list[ReportSpec]:
    return list(REPORTS.values()) if actor is not None and actor.role in REPORT_ROLES else []


def _bad(field_name: str, message: str):
    return ValidationFailed(message, code="invalid_report_parameter", details={"fields": {field_name: [message]}})


def _date(data: dict, key: str, default: date) -> date:
    raw = (data.get(key) or "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _bad(key, f"{key!r} must be a date (YYYY-MM-DD).") from None


def report_query(*, actor, name: str, data: dict) -> ReportQuery:
    """Validate a report request (query parameters or a peer's JSON) into a ``ReportQuery``. ``actor`` None is a
    signed peer asking for its network report: any MFI, this node's books. Unknown parameters are refused."""
    from node.cob.models import MonthEndPortfolio
    from node.cob.services import business_date_get
    from node.mfis.models import Mfi

    spec = REPORTS.get(name)
    if spec is None:
        raise NotFound(f"There is no report {name!r}.", code="unknown_report", details={"reports": sorted(REPORTS)})
    if actor is not None and actor.role not in REPORT_ROLES:
        raise Forbidden("Your role may not run reports.")
    data = {k: v for k, v in data.items() if k not in ("export", "csrfmiddlewaretoken")}
    allowed = {"scope", "mfi", *spec.params}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _bad(unknown[0], f"Unknown parameter(s) for this report: {', '.join(unknown)}; it takes "
                               f"{', '.join(sorted(allowed))}.")
    scope = (data.get("scope") or "node").strip()
    if scope not in ("node", "network") or (scope == "network" and actor is None):
        raise _bad("scope", "scope must be 'node' or 'network'.")
    if scope == "network":
        if actor.role != Role.LETSEMA_ADMIN:
            raise Forbidden("Only Letsema administrators may run network-wide reports.")
        if not spec.network:
            raise _bad("scope", "This report lists a node's own loans; it cannot be run network-wide.")
    # the MFI: staff see their own; Letsema admins (and peers) any, or all
    code = (data.get("mfi") or "").strip()
    mfi = None
    if actor is not None and actor.role != Role.LETSEMA_ADMIN:
        if code and code != actor.mfi.code:
            raise Forbidden("You may run reports on your own MFI only.")
        mfi = actor.mfi
    elif code:
        mfi = Mfi.objects.filter(code=code).first()
        if mfi is None and scope == "node" and actor is not None:
            raise _bad("mfi", f"There is no MFI {code!r} on this node.")
    kw: dict = {"name": name, "scope": scope, "mfi_id": mfi.pk if mfi else (-1 if code else None),
                "mfi_code": mfi.code if mfi else (code or None)}
    if "by" in spec.params:
        dims = NETWORK_DIMENSIONS if scope == "network" else spec.dimensions
        by = (data.get("by") or "").strip() or dims[0]
        if by not in dims:
            raise _bad("by", f"'by' must be one of {', '.join(dims)}.")
        kw["by"] = by
    today = business_date_get()
    if "period" in spec.params:
        period = (data.get("period") or "month").strip()
        if period not in PERIODS:
            raise _bad("period", f"'period' must be one of {', '.join(PERIODS)}.")
        first = today.replace(day=1)
        default_from = (first - timedelta(days=150)).replace(day=1)
        dfrom, dto = _date(data, "from", default_from), _date(data, "to", today)
        if dto < dfrom:
            raise _bad("to", "'to' must not be before 'from'.")
        span = (dto - dfrom).days
        if len(_periods(period, dfrom, dto)) > MAX_PERIODS or span > 3660:
            raise _bad("period", f"Too many periods ({period} over {span + 1} days); choose a longer period or a "
                                 f"shorter range (at most {MAX_PERIODS} periods, 10 years).")
        kw.update(period=period, date_from=dfrom, date_to=dto)
    if "month" in spec.params:
        raw = (data.get("month") or "").strip()
        if raw:
            m = _MONTH_RE.match(raw)
            if not m:
                raise _bad("month", "'month' must be a month: YYYY-MM.")
            y, mo = int(m.group(1)), int(m.group(2))
            end = date(y + mo // 12, mo % 12 + 1, 1) - timedelta(days=1)
        else:
            end = (MonthEndPortfolio.objects.order_by("-month_end").values_list("month_end", flat=True).first()
                   or today.replace(day=1) - timedelta(days=1))
        kw["month_end"] = end
    if "as_of" in spec.params and (data.get("as_of") or "").strip():
        kw["as_of"] = _date(data, "as_of", today)
    if "status" in spec.params:
        status = (data.get("status") or "active").strip()
        if status not in LOAN_LISTS:
            raise _bad("status", f"'status' must be one of {', '.join(LOAN_LISTS)}.")
        kw["status"] = status
    return ReportQuery(**kw)


def _periods(period: str, dfrom: date, dto: date) -> list[date]:
    """The start of every period from ``dfrom``'s to ``dto``'s (date_trunc's: weeks start on Monday)."""
    def trunc(d: date) -> date:
        if period == "month":
            return d.replace(day=1)
        if period == "week":
            return d - timedelta(days=d.weekday())
        return d
    out, d = [], trunc(dfrom)
    while d <= dto:
        out.append(d)
        if len(out) > MAX_PERIODS:
            break
        d = (date(d.year + d.month // 12, d.month % 12 + 1, 1) if period == "month"
             else d + timedelta(days=7 if period == "week" else 1))
    return out


# --- running --------------------------------------------------------------------------------------
def report_facts(q: ReportQuery) -> dict:
    """This node's measures for ``q`` (what a peer sends for a network report)."""
    if q.mfi_id == -1:  # an MFI that is not on this node: nothing here
        return {s.key: [] for s in REPORTS[q.name].sections}
    return queries.FACTS[q.name](q)


def _as_of(q: ReportQuery) -> str:
    from node.cob.services import closed_through

    spec = REPORTS[q.name]
    if q.as_of is not None:
        return q.as_of.isoformat()
    if spec.as_of == "period":
        return f"{q.date_from.isoformat()} – {q.date_to.isoformat()}"
    if spec.as_of == "month":
        return q.month_end.isoformat()
    through = closed_through()
    return through.isoformat() if through else "no close of business yet"


def report_run(*, actor, q: ReportQuery) -> ReportResult:
    """Run the report: this node's books, or (``scope=network``) every district's, summed."""
    spec = REPORTS[q.name]
    if spec.name == "loans":
        return _loan_list(q)
    notes: list = []
    if q.scope == "network":
        facts, answered, missing = _network_facts(q)
    else:
        facts, answered, missing = report_facts(q), [settings.DISTRICT.code], {}
    if spec.name == "regulatory_return":
        notes += _month_notes(q)
    if q.as_of is not None:
        notes += _day_notes(q)
    if missing:
        notes.append("Partial: these districts did not answer and are left out: "
                     + ", ".join(f"{d} ({why})" for d, why in sorted(missing.items())))
    sections = [_finish(s, facts.get(s.key, []), q) for s in spec.sections]
    return ReportResult(spec, q, _as_of(q), sections, notes, bool(missing), missing, answered)


def _day_notes(q: ReportQuery) -> list[str]:
    """A report as of an earlier day reads what close of business kept for it: refused (node) or noted (network)
    when this node kept nothing for that day — not closed yet, or closed as part of a catch-up that kept only its
    last day, or closed before the daily snapshot existed."""
    from node.cob.services import day_kept

    if day_kept(q.as_of):
        return []
    if q.scope == "network":
        return [f"This node kept no close of business for {q.as_of.isoformat()}; districts that did are included."]
    raise Conflict(f"Close of business kept no portfolio for {q.as_of.isoformat()} on this node: the day is not "
                   "closed yet, or was closed together with later days, or before daily figures were kept.",
                   code="day_not_kept", details={"as_of": q.as_of.isoformat()})


def _month_notes(q: ReportQuery) -> list[str]:
    from node.cob.models import MonthEndPortfolio

    row = MonthEndPortfolio.objects.filter(month_end=q.month_end).values_list("as_of", flat=True).first()
    if row is None:
        if q.scope == "network":
            return [f"This node has not closed {q.month_end:%Y-%m}; districts that have are included."]
        raise Conflict(f"Close of business has not closed the end of {q.month_end:%Y-%m} on this node yet; the "
                       f"return can be made once it has.", code="month_not_closed",
                       details={"month": q.month_end.strftime("%Y-%m")})
    if row != q.month_end:
        return [f"Close of business ran over the month end in one run: classified as of {row.isoformat()}."]
    return []


def _empty_row(s: Section, group) -> dict:
    return {"group": group, **{c.key: (0 if c.kind == INT else Decimal("0.00")) for c in s.measures}}


def _finish(s: Section, rows: list[dict], q: ReportQuery) -> dict:
    by_group: dict = {}
    for r in rows:
        row = by_group.setdefault(r["group"], _empty_row(s, r["group"]))
        for c in s.measures:
            row[c.key] += (int(r.get(c.key) or 0) if c.kind == INT else Decimal(str(r.get(c.key) or 0)))
    if s.order:
        order = s.order()
        for g in order:
            by_group.setdefault(g, _empty_row(s, g))
        rank = {g: i for i, g in enumerate(order)}
        groups = sorted(by_group, key=lambda g: (rank.get(g, len(rank)), str(g)))
    elif s.by_period:
        for p in _periods(q.period, q.date_from, q.date_to):
            by_group.setdefault(p, _empty_row(s, p))
        groups = sorted(by_group)
    else:
        groups = sorted(by_group, key=str)
    out = [by_group[g] for g in groups]
    total = _empty_row(s, "Total")
    for r in out:
        for c in s.measures:
            total[c.key] += r[c.key]
    for d in s.derived:
        for r in out:
            r[d.key] = d.fn(r, total)
    for d in s.derived:
        total[d.key] = (d.fn(total, total) if d.total == "recompute"
                        else sum((r[d.key] or 0 for r in out), Decimal("0.00")) if d.total == "sum" else None)
    columns = ([{"key": "group", "label": s.group_label, "kind": "date" if s.by_period else "text"}]
               + [{"key": c.key, "label": c.label, "kind": c.kind} for c in s.measures]
               + [{"key": d.key, "label": d.label, "kind": d.kind} for d in s.derived])
    return {"key": s.key, "title": s.title, "columns": columns, "rows": out, "total": total, "chart": s.chart}


def _loan_list(q: ReportQuery) -> ReportResult:
    rows, total = queries.loan_list(q, limit=LIST_LIMIT)
    notes = [] if total <= LIST_LIMIT else [f"{total} loans; the first {LIST_LIMIT} by reference are listed."]
    section = {"key": "loans", "title": f"Loans: {q.status}", "chart": None, "total": None, "count": total,
               "columns": [{"key": c.key, "label": c.label, "kind": c.kind} for c in LOAN_LIST_COLUMNS], "rows": rows}
    return ReportResult(REPORTS["loans"], q, _as_of(q), [section], notes, districts=[settings.DISTRICT.code])


# --- network --------------------------------------------------------------------------------------
def facts_json(q: ReportQuery) -> dict:
    """This node's answer to a peer's ``POST /_federation/v1/reports``."""
    facts = report_facts(q)
    if q.name == "regulatory_return":
        from node.cob.models import MonthEndPortfolio

        if not MonthEndPortfolio.objects.filter(month_end=q.month_end).exists():
            facts = {**facts, "classification": []}
    return {"schema": SCHEMA, "district": settings.DISTRICT.code, "report": q.name,
            "facts": {k: [_jsonable(r) for r in rows] for k, rows in facts.items()}}


def _parser(q: ReportQuery):
    spec = REPORTS[q.name]

    def parse(district: str, data) -> dict:
        from federation.fanout import BadResponse

        if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("district") != district \
                or data.get("report") != q.name or not isinstance(data.get("facts"), dict):
            raise BadResponse("not a report-facts answer for this report from this district")
        out = {}
        for s in spec.sections:
            rows = data["facts"].get(s.key)
            if not isinstance(rows, list):
                raise BadResponse(f"section {s.key!r} missing")
            parsed = []
            for r in rows:
                if not isinstance(r, dict) or set(r) - {"group", *s.measure_keys} or "group" not in r:
                    raise BadResponse(f"bad row in {s.key!r}")
                try:
                    row = {"group": date.fromisoformat(r["group"]) if s.by_period
                           else str(r["group"])}
                    for c in s.measures:
                        v = r.get(c.key, 0)
                        row[c.key] = int(v) if c.kind == INT else Decimal(str(v))
                        if c.kind == MONEY and not Decimal(row[c.key]).is_finite():
                            raise InvalidOperation
                except (TypeError, ValueError, InvalidOperation):
                    raise BadResponse(f"bad value in {s.key!r}") from None
                parsed.append(row)
            out[s.key] = parsed
        return out

    return parse


def _network_facts(q: ReportQuery) -> tuple[dict, list[str], dict]:
    from federation.fanout import fanout

    own = report_facts(q)
    result = fanout("POST", FACTS_PATH, {"report": q.name, "params": q.to_json()}, parse=_parser(q),
                    timeout=float(getattr(settings, "LETSEMA_REPORTS_TIMEOUT", 10.0)))
    merged: dict = {k: list(v) for k, v in own.items()}
    for facts in result.answered.values():
        for k, rows in facts.items():
            merged.setdefault(k, []).extend(rows)
    return merged, sorted([settings.DISTRICT.code, *result.answered]), dict(sorted(result.missing.items()))


def report_query_from_peer(payload) -> ReportQuery:
    if not isinstance(payload, dict) or not isinstance(payload.get("report"), str) \
            or not isinstance(payload.get("params", {}), dict):
        raise ValidationFailed("Expected {\"report\": name, \"params\": {...}}.", code="invalid_report_parameter")
    params = {k: str(v) for k, v in payload.get("params", {}).items()}
    if payload["report"] not in REPORTS or not REPORTS[payload["report"]].network:
        raise NotFound("Not a network report.", code="unknown_report")
    return report_query(actor=None, name=payload["report"], data=params)


def stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M")
