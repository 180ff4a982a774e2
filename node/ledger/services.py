"""Writes to the general ledger. :func:`journal_post` and its set-based sibling :func:`journal_post_many` (many
entries of one MFI in a fixed number of statements, same checks, same idempotency; not for reversals) are the ONLY
code that creates journal lines.

Posting
-------
``journal_post`` validates in Python first (clear error codes for callers), then inserts the entry and its
lines in one transaction together with an audit event. The database checks the same rules again (migration
0002): line amounts by CHECK constraints, and "at least two lines, debits = credits, all on the entry's own
MFI's accounts" by deferred constraint triggers. Those triggers would only fire at COMMIT; ``journal_post``
fires them at the end of the posting (``SET CONSTRAINTS ... IMMEDIATE``, then back to ``DEFERRED``), so a
broken entry fails inside the service, within its savepoint, rather than at the caller's COMMIT.

Error codes (``ApplicationError.code``): ``empty_entry`` (fewer than two lines), ``invalid_amount`` (not a
Decimal, more than two decimal places, negative, both or neither side set, too large), ``unbalanced_entry``,
``unknown_account`` (no such code for this MFI), ``inactive_account``, ``validation_error`` (text fields,
date), ``idempotency_key_reused`` (409), ``already_reversed`` (409), ``reversal_not_reversible`` (409),
``reversal_mismatch``, ``invalid_reversal_date``.

Idempotency
-----------
A ``source_key`` (e.g. ``"loan:42:disburse"``; unique across the node, so callers namespace their keys) makes a
posting replayable: posting again with the same key returns the first entry and writes nothing (no lines, no
audit event), provided the request is the same posting — same MFI, business date, reference and the same
multiset of (account, debit, credit). Descriptions and memos are free text and are not compared. Anything else
raises ``Conflict("idempotency_key_reused")``. Two concurrent posts with one key are serialised by the unique
index: the loser waits, then is answered like a replay.

Reversals
---------
Entries are never edited; a correction is a reversal: a new entry with every line's debit and credit swapped,
linked by ``reverses`` (a OneToOne, so an entry is reversed at most once — a second attempt raises
``already_reversed``). Decision: a reversal itself cannot be reversed (``reversal_not_reversible``). To restore
the original effect, post a new, correct entry. This keeps "is this entry in effect?" a one-step question
(it has no reversal) instead of the parity of a chain, and the database refuses it too. A reversal is dated
on or after the entry it reverses (default: today's business date, or the original's date if that is later),
so a closed period is never changed retroactively.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from node.audit.services import AuditSpec, audit_record, audit_record_many
from node.core.bulk import insert_columns
from node.core.errors import Conflict, Forbidden, ValidationFailed
from node.core.money import to_money
from node.ledger.chart import STANDARD_CHART, STANDARD_CODES
from node.ledger.models import Account, AccountType, JournalEntry, JournalLine
from node.users.models import MFI_STAFF_ROLES

if TYPE_CHECKING:
    from node.mfis.models import Mfi
    from node.users.models import User

#: Largest amount a DecimalField(20, 2) holds, plus one cent.
_AMOUNT_LIMIT = Decimal(10) ** 18
_ZERO = Decimal("0.00")
#: Deferred constraint triggers of migration 0002 (fired at the end of every posting).
_BALANCE_TRIGGERS = "ledger_journalentry_balanced, ledger_journalline_balanced"


@dataclass(frozen=True)
class PostingLine:
    """One leg of a posting: set exactly one of ``debit``/``credit`` (a ``Decimal`` with at most 2 places)."""

    account_code: str
    debit: Decimal = field(default=Decimal("0"))
    credit: Decimal = field(default=Decimal("0"))
    memo: str = ""


@dataclass(frozen=True)
class _Leg:
    account_code: str
    debit: Decimal
    credit: Decimal
    memo: str


# --- chart of accounts -----------------------------------------------------------------------------------------

@transaction.atomic
def ledger_ensure_chart(*, mfi: Mfi, actor: User | None = None) -> dict[str, Account]:
    """Create the missing standard accounts of ``mfi`` (idempotent, safe to run concurrently) and return them
    by code. An existing account with a standard code but another type is a ``chart_conflict``."""
    existing = {a.code: a for a in Account.objects.filter(mfi=mfi, code__in=STANDARD_CODES)}
    missing = [spec for spec in STANDARD_CHART if spec.code not in existing]
    if missing:
        Account.objects.bulk_create(
            [Account(mfi=mfi, code=s.code, name=s.name, type=s.type, is_contra=s.is_contra) for s in missing],
            ignore_conflicts=True,  # a concurrent call created some: fine, both end with the same chart
        )
        existing = {a.code: a for a in Account.objects.filter(mfi=mfi, code__in=STANDARD_CODES)}
        audit_record(actor=actor, action="ledger.chart_ensure", target_type="mfi", target_id=mfi.pk, mfi=mfi,
                     after={"created": [s.code for s in missing]})
    for spec in STANDARD_CHART:
        account = existing[spec.code]
        if account.type != spec.type or account.is_contra != spec.is_contra:
            raise Conflict(
                f"Account {spec.code} exists with another type; the standard chart needs {spec.type}.",
                code="chart_conflict", details={"account_code": spec.code},
            )
    return {spec.code: existing[spec.code] for spec in STANDARD_CHART}


@transaction.atomic
def ledger_account_create(
    *, mfi: Mfi, code: str, name: str, type: str, is_contra: bool = False, actor: User | None = None
) -> Account:
    """Add an MFI-specific account (a code outside the standard chart)."""
    errors: dict[str, list[str]] = {}
    if not (isinstance(code, str) and code.isascii() and code.isdigit() and 3 <= len(code) <= 10):
        errors["code"] = ["3 to 10 digits"]
    if type not in AccountType.values:
        errors["type"] = [f"one of {', '.join(AccountType.values)}"]
    if not name or len(name) > 120:
        errors["name"] = ["1 to 120 characters"]
    if errors:
        raise ValidationFailed("The account has invalid fields.", details={"fields": errors})
    if Account.objects.filter(mfi=mfi, code=code).exists():
        raise Conflict(f"Account {code} already exists.", code="account_exists", details={"account_code": code})
    account = Account.objects.create(mfi=mfi, code=code, name=name, type=type, is_contra=is_contra)
    audit_record(actor=actor, action="ledger.account_create", target_type="ledger_account", target_id=account.pk,
                 mfi=mfi, after={"code": code, "name": name, "type": type, "is_contra": is_contra})
    return account


@transaction.atomic
def ledger_account_set_active(*, account: Account, is_active: bool, actor: User | None = None) -> Account:
    """(De)activate an account: an inactive account takes no new postings; its history stays."""
    before = account.is_active
    if before != is_active:
        account.is_active = is_active
        account.save(update_fields=["is_active"])
        audit_record(actor=actor, action="ledger.account_set_active", target_type="ledger_account",
                     target_id=account.pk, mfi=account.mfi, before={"is_active": before},
                     after={"is_active": is_active})
    return account


# --- posting ---------------------------------------------------------------------------------------------------

@transaction.atomic
def journal_post(
    *,
    mfi: Mfi,
    entry_date: dt.date,
    lines: list[PostingLine],
    description: str,
    reference_type: str = "",
    reference_id: str | int = "",
    actor: User | None = None,
    source_key: str | None = None,
    reverses: JournalEntry | None = None,
) -> JournalEntry:
    """Post one balanced entry (see the module docstring). ``reverses`` is for :func:`journal_reverse`: the
    lines must then mirror the reversed entry's lines exactly."""
    legs = _validate_legs(lines)
    reference_id = "" if reference_id is None else str(reference_id)
    _validate_header(entry_date=entry_date, description=description, reference_type=reference_type,
                     reference_id=reference_id, source_key=source_key)
    if actor is not None and getattr(actor, "role", None) in MFI_STAFF_ROLES and actor.mfi_id != mfi.pk:
        raise Forbidden("Staff post only to their own MFI's ledger.")
    fingerprint = _fingerprint(mfi.pk, entry_date, reference_type, reference_id,
                               None if reverses is None else reverses.pk,
                               [(leg.account_code, leg.debit, leg.credit) for leg in legs])

    if source_key is not None:
        replayed = _replay(source_key, fingerprint)
        if replayed is not None:
            return replayed

    accounts = _accounts_for(mfi, {leg.account_code for leg in legs})
    if reverses is not None:
        _check_reversal(mfi, reverses, legs, entry_date)

    entry = JournalEntry(
        mfi=mfi, entry_date=entry_date, description=description, reference_type=reference_type,
        reference_id=reference_id, source_key=source_key, reverses=reverses,
        created_by=actor if getattr(actor, "pk", None) is not None else None,
        currency=settings.DISTRICT.currency, posted_at=timezone.now(),
    )
    if source_key is None and reverses is None:
        entry.save(force_insert=True)
    else:
        try:
            with transaction.atomic():  # savepoint: a unique violation must not abort the caller's transaction
                entry.save(force_insert=True)
        except IntegrityError:
            if source_key is not None:
                replayed = _replay(source_key, fingerprint)  # a concurrent post with our key committed first
                if replayed is not None:
                    return replayed
            if reverses is not None and JournalEntry.objects.filter(reverses_id=reverses.pk).exists():
                raise _already_reversed(reverses) from None
            raise

    JournalLine.objects.bulk_create([
        JournalLine(entry=entry, account=accounts[leg.account_code], debit=leg.debit, credit=leg.credit,
                    memo=leg.memo)
        for leg in legs
    ])
    with connection.cursor() as cursor:
        # Run the database's own balance check now (deferred triggers), then defer it again.
        cursor.execute(f"SET CONSTRAINTS {_BALANCE_TRIGGERS} IMMEDIATE; SET CONSTRAINTS {_BALANCE_TRIGGERS} DEFERRED")

    audit_record(
        actor=actor, action="ledger.entry_reverse" if reverses is not None else "ledger.entry_post",
        target_type="journal_entry", target_id=entry.pk, mfi=mfi,
        after={
            "entry_date": entry_date.isoformat(), "description": description, "reference_type": reference_type,
            "reference_id": reference_id, "source_key": source_key, "currency": entry.currency,
            "reverses": None if reverses is None else reverses.pk,
            "lines": [{"account": leg.account_code, "debit": str(leg.debit), "credit": str(leg.credit)}
                      for leg in legs],
        },
    )
    return entry


@dataclass(frozen=True)
class PostingEntry:
    """One entry for :func:`journal_post_many`: the arguments of :func:`journal_post` that vary per entry."""

    entry_date: dt.date
    lines: list[PostingLine]
    description: str
    reference_type: str = ""
    reference_id: str | int = ""
    source_key: str | None = None


def journal_post_many(
    *,
    mfi: Mfi,
    entries: list[PostingEntry],
    actor: User | None = None,
    audit_into: list[AuditSpec] | None = None,
) -> list[JournalEntry]:
    """Post many balanced entries of one MFI at once: the set-based sibling of :func:`journal_post` (not for
    reversals), with the same rules and error codes, raised for the first entry that breaks one (nothing is then
    written). Returns the entries in the order given.

    Same checks: every entry's lines and header are validated in Python as :func:`journal_post` does, and the
    database's deferred balance triggers are fired once for all of them before returning. Same idempotency: an entry
    whose ``source_key`` is already posted is answered by that entry if it is the same posting (nothing written for
    it) and refused with ``idempotency_key_reused`` otherwise; a key given twice in one call must be the same
    posting and is posted once. Statements: the accounts, one INSERT of the entries (``ON CONFLICT (source_key) DO
    NOTHING``: an already-posted or concurrently posted key is found there, then checked as a replay), one INSERT
    of all their lines, the trigger check, and the audit events (``ledger.entry_post``, one per new entry) in one
    :func:`node.audit.services.audit_record_many` — unless ``audit_into`` is given: then they are appended to it and
    the caller must write them, in this transaction, together with its own (one chain lock for both)."""
    if not isinstance(entries, (list, tuple)):
        raise TypeError("journal_post_many takes a list of PostingEntry")
    if not entries:
        return []
    if actor is not None and getattr(actor, "role", None) in MFI_STAFF_ROLES and actor.mfi_id != mfi.pk:
        raise Forbidden("Staff post only to their own MFI's ledger.")
    checked: list[tuple[PostingEntry, str, list[_Leg], dict[str, Any]]] = []
    first_of_key: dict[str, int] = {}
    for spec in entries:
        if not isinstance(spec, PostingEntry):
            raise TypeError("journal_post_many takes a list of PostingEntry")
        legs = _validate_legs(spec.lines)
        reference_id = "" if spec.reference_id is None else str(spec.reference_id)
        _validate_header(entry_date=spec.entry_date, description=spec.description,
                         reference_type=spec.reference_type, reference_id=reference_id, source_key=spec.source_key)
        fingerprint = _fingerprint(mfi.pk, spec.entry_date, spec.reference_type, reference_id, None,
                                   [(leg.account_code, leg.debit, leg.credit) for leg in legs])
        if spec.source_key is not None:
            if spec.source_key in first_of_key:
                earlier = checked[first_of_key[spec.source_key]][3]
                differing = sorted(k for k in fingerprint if fingerprint[k] != earlier[k])
                if differing:
                    raise Conflict("This idempotency key was already used for a different posting.",
                                   code="idempotency_key_reused",
                                   details={"source_key": spec.source_key, "differs_in": differing})
            else:
                first_of_key[spec.source_key] = len(checked)
        checked.append((spec, reference_id, legs, fingerprint))
    accounts = _accounts_for(mfi, {leg.account_code for _, _, legs, _ in checked for leg in legs})

    created_by = actor if getattr(actor, "pk", None) is not None else None
    now, currency = timezone.now(), settings.DISTRICT.currency
    # one row per distinct source key (and every keyless entry), in the order given
    fresh = [i for i, (spec, _, _, _) in enumerate(checked)
             if spec.source_key is None or first_of_key[spec.source_key] == i]
    rows = [JournalEntry(mfi=mfi, entry_date=checked[i][0].entry_date, description=checked[i][0].description,
                         reference_type=checked[i][0].reference_type, reference_id=checked[i][1],
                         source_key=checked[i][0].source_key, created_by=created_by, currency=currency, posted_at=now)
            for i in fresh]
    with transaction.atomic(savepoint=False):
        inserted = _insert_entries(rows)  # the rows that went in (pk set); the others' keys were taken
        posted: dict[int, JournalEntry] = {}
        for i, row in zip(fresh, rows, strict=True):
            if row.pk is not None and id(row) in inserted:
                posted[i] = row
        taken = [checked[i][0].source_key for i in fresh if i not in posted]
        replayed = _replay_many(taken, {k: checked[first_of_key[k]][3] for k in taken}) if taken else {}

        new = [(i, posted[i]) for i in fresh if i in posted]
        if new:
            legs = [(entry.pk, leg) for i, entry in new for leg in checked[i][2]]
            insert_columns(JournalLine, {"entry": [e for e, _ in legs],
                                         "account": [accounts[leg.account_code].pk for _, leg in legs],
                                         "debit": [leg.debit for _, leg in legs],
                                         "credit": [leg.credit for _, leg in legs],
                                         "memo": [leg.memo for _, leg in legs]})
            with connection.cursor() as cursor:
                # The database's own balance check for every new entry now (deferred triggers), then defer again.
                cursor.execute(f"SET CONSTRAINTS {_BALANCE_TRIGGERS} IMMEDIATE; "
                               f"SET CONSTRAINTS {_BALANCE_TRIGGERS} DEFERRED")
            events = [AuditSpec(
                action="ledger.entry_post", target_type="journal_entry", target_id=entry.pk, mfi_id=mfi.pk,
                after={
                    "entry_date": entry.entry_date.isoformat(), "description": entry.description,
                    "reference_type": entry.reference_type, "reference_id": entry.reference_id,
                    "source_key": entry.source_key, "currency": entry.currency, "reverses": None,
                    "lines": [{"account": leg.account_code, "debit": str(leg.debit), "credit": str(leg.credit)}
                              for leg in checked[i][2]],
                }) for i, entry in new]
            if audit_into is not None:
                audit_into.extend(events)
            else:
                audit_record_many(actor=actor, events=events)

    out = []
    for i, (spec, _, _, _) in enumerate(checked):
        j = i if spec.source_key is None else first_of_key[spec.source_key]
        out.append(posted[j] if j in posted else replayed[spec.source_key])
    return out


def _insert_entries(rows: list[JournalEntry]) -> set[int]:
    """One INSERT of ``rows``; a row whose ``source_key`` exists already (or is being posted by a concurrent
    transaction, which this statement then waits for) is skipped. Returns ``id()`` of the rows inserted, whose
    ``pk`` is set. The triggers (open entries, deferred balance checks) fire as for any insert."""
    fields = ["mfi_id", "entry_date", "posted_at", "description", "reference_type", "reference_id", "source_key",
              "created_by_id", "currency"]
    table = JournalEntry._meta.db_table
    columns = ", ".join(f'"{f}"' for f in fields)
    types = ["bigint", "date", "timestamptz", "text", "text", "text", "text", "bigint", "text"]
    arrays = ", ".join(f"%s::{t}[]" for t in types)
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{table}" ({columns}) SELECT * FROM unnest({arrays}) '
            f'ON CONFLICT (source_key) DO NOTHING RETURNING id, source_key',  # nosec B608 -- model names, values bound
            [[getattr(r, f) for r in rows] for f in fields],
        )
        returned = cursor.fetchall()
    keyless = [r for r in rows if r.source_key is None]
    by_key = {r.source_key: r for r in rows if r.source_key is not None}
    inserted: set[int] = set()
    # RETURNING gives the inserted rows in insertion order, i.e. the order of the unnest (a plain INSERT ... SELECT
    # of a set-returning function in FROM keeps it); keyless rows are matched by that order
    keyless_iter = iter(keyless)
    for pk, key in returned:
        row = by_key[key] if key is not None else next(keyless_iter)
        row.pk = pk
        inserted.add(id(row))
    return inserted


def _replay_many(keys: list[str], fingerprints: dict[str, dict[str, Any]]) -> dict[str, JournalEntry]:
    """The entries already posted under ``keys``, each checked to be the same posting (see :func:`_replay`)."""
    existing = {e.source_key: e for e in JournalEntry.objects.filter(source_key__in=keys)}
    lines: dict[int, list] = {}
    for entry_id, code, debit, credit in JournalLine.objects.filter(entry_id__in=[e.pk for e in existing.values()]
                                                                    ).values_list("entry_id", "account__code",
                                                                                  "debit", "credit"):
        lines.setdefault(entry_id, []).append((code, debit, credit))
    out = {}
    for key in keys:
        entry = existing.get(key)
        if entry is None:  # cannot happen: the INSERT skipped it because the key exists (committed)
            raise RuntimeError(f"source key {key!r} was taken but its entry is not visible")
        stored = _fingerprint(entry.mfi_id, entry.entry_date, entry.reference_type, entry.reference_id,
                              entry.reverses_id, lines.get(entry.pk, []))
        differing = sorted(k for k in fingerprints[key] if fingerprints[key][k] != stored[k])
        if differing:
            raise Conflict(
                "This idempotency key was already used for a different posting.", code="idempotency_key_reused",
                details={"source_key": key, "entry_id": entry.pk, "differs_in": differing},
            )
        out[key] = entry
    return out


def journal_reverse(
    *,
    entry: JournalEntry,
    actor: User | None,
    reason: str,
    entry_date: dt.date | None = None,
    source_key: str | None = None,
) -> JournalEntry:
    """Post the reversal of ``entry`` (debits and credits swapped) through :func:`journal_post`."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise ValidationFailed("A reversal needs a reason (at most 200 characters).",
                               details={"fields": {"reason": ["1 to 200 characters"]}})
    if entry_date is None:
        entry_date = max(timezone.localdate(), entry.entry_date)
    mirrored = [
        PostingLine(account_code=code, debit=credit, credit=debit, memo=memo)
        for code, debit, credit, memo in entry.lines.order_by("id").values_list(
            "account__code", "debit", "credit", "memo")
    ]
    return journal_post(
        mfi=entry.mfi, entry_date=entry_date, lines=mirrored, description=f"Reversal of entry #{entry.pk}: {reason}",
        reference_type=entry.reference_type, reference_id=entry.reference_id, actor=actor,
        source_key=source_key, reverses=entry,
    )


# --- validation helpers ----------------------------------------------------------------------------------------

def _invalid_amount(index: int, side: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"Line {index}: {reason}.", code="invalid_amount",
                            details={"line": index, "side": side, "reason": reason})


def _amount(value: Any, index: int, side: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise _invalid_amount(index, side, f"the {side} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise _invalid_amount(index, side, f"the {side} must be a finite number")
    money = to_money(value)
    if money != value:
        raise _invalid_amount(index, side, f"the {side} has more than 2 decimal places")
    if money < 0:
        raise _invalid_amount(index, side, f"the {side} must not be negative")
    if money >= _AMOUNT_LIMIT:
        raise _invalid_amount(index, side, f"the {side} is too large")
    return money


def _validate_legs(lines: list[PostingLine]) -> list[_Leg]:
    if not isinstance(lines, (list, tuple)) or len(lines) < 2:
        raise ValidationFailed("An entry needs at least two lines.", code="empty_entry",
                               details={"lines": len(lines) if isinstance(lines, (list, tuple)) else 0})
    legs = []
    for index, line in enumerate(lines):
        if not isinstance(line, PostingLine):
            raise ValidationFailed(f"Line {index} is not a PostingLine.", details={"line": index})
        debit, credit = _amount(line.debit, index, "debit"), _amount(line.credit, index, "credit")
        if (debit > 0) == (credit > 0):
            raise _invalid_amount(index, "both" if debit > 0 else "neither",
                                  "exactly one of debit and credit must be greater than zero")
        if not isinstance(line.account_code, str) or not line.account_code:
            raise ValidationFailed(f"Line {index} has no account code.", code="unknown_account",
                                   details={"line": index, "account_codes": [line.account_code]})
        if not isinstance(line.memo, str) or len(line.memo) > 255:
            raise ValidationFailed(f"Line {index}: the memo must be text of at most 255 characters.",
                                   details={"fields": {"memo": ["at most 255 characters"]}, "line": index})
        legs.append(_Leg(line.account_code, debit, credit, line.memo))
    total_debit = sum((leg.debit for leg in legs), _ZERO)
    total_credit = sum((leg.credit for leg in legs), _ZERO)
    if total_debit != total_credit:
        raise ValidationFailed(
            f"Debits ({total_debit}) and credits ({total_credit}) differ.", code="unbalanced_entry",
            details={"debit": str(total_debit), "credit": str(total_credit)},
        )
    return legs


def _validate_header(*, entry_date, description, reference_type, reference_id, source_key) -> None:
    errors: dict[str, list[str]] = {}
    if isinstance(entry_date, dt.datetime) or not isinstance(entry_date, dt.date):
        errors["entry_date"] = ["a date (the business date), not a datetime"]
    for name, value, limit, required in (
        ("description", description, 255, True),
        ("reference_type", reference_type, 40, False),
        ("reference_id", reference_id, 64, False),
    ):
        if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
            errors[name] = [f"{'1' if required else '0'} to {limit} characters"]
    if source_key is not None and (not isinstance(source_key, str) or not source_key or len(source_key) > 200):
        errors["source_key"] = ["None, or 1 to 200 characters"]
    if errors:
        raise ValidationFailed("The entry has invalid fields.", details={"fields": errors})


def _fingerprint(mfi_id, entry_date, reference_type, reference_id, reverses_id, legs) -> dict[str, Any]:
    return {
        "mfi": mfi_id, "entry_date": entry_date, "reference_type": reference_type, "reference_id": reference_id,
        "reverses": reverses_id,
        "lines": Counter((code, to_money(debit), to_money(credit)) for code, debit, credit in legs),
    }


def _replay(source_key: str, fingerprint: dict[str, Any]) -> JournalEntry | None:
    """The entry already posted under ``source_key`` if it is the same posting; None if there is none."""
    existing = JournalEntry.objects.filter(source_key=source_key).first()
    if existing is None:
        return None
    stored = _fingerprint(
        existing.mfi_id, existing.entry_date, existing.reference_type, existing.reference_id, existing.reverses_id,
        list(existing.lines.values_list("account__code", "debit", "credit")),
    )
    differing = sorted(k for k in fingerprint if fingerprint[k] != stored[k])
    if differing:
        raise Conflict(
            "This idempotency key was already used for a different posting.", code="idempotency_key_reused",
            details={"source_key": source_key, "entry_id": existing.pk, "differs_in": differing},
        )
    return existing


def _accounts_for(mfi: Mfi, codes: set[str]) -> dict[str, Account]:
    accounts = {a.code: a for a in Account.objects.filter(mfi=mfi, code__in=codes)}
    unknown = sorted(codes - set(accounts))
    if unknown:
        raise ValidationFailed(f"No such account for this MFI: {', '.join(unknown)}.", code="unknown_account",
                               details={"account_codes": unknown})
    inactive = sorted(code for code, a in accounts.items() if not a.is_active)
    if inactive:
        raise ValidationFailed(f"Inactive account: {', '.join(inactive)}.", code="inactive_account",
                               details={"account_codes": inactive})
    return accounts


def _already_reversed(entry: JournalEntry) -> Conflict:
    reversal_id = JournalEntry.objects.filter(reverses_id=entry.pk).values_list("pk", flat=True).first()
    return Conflict(f"Entry #{entry.pk} has already been reversed.", code="already_reversed",
                    details={"entry_id": entry.pk, "reversed_by": reversal_id})


def _check_reversal(mfi: Mfi, reverses: JournalEntry, legs: list[_Leg], entry_date: dt.date) -> None:
    # Lock the reversed entry: concurrent reversals of one entry queue here, and the loser sees the winner's.
    original = JournalEntry.objects.select_for_update().filter(pk=reverses.pk, mfi=mfi).first()
    if original is None:
        raise ValidationFailed("The reversed entry belongs to another MFI.", code="reversal_mismatch",
                               details={"entry_id": reverses.pk})
    if original.reverses_id is not None:
        raise Conflict(f"Entry #{original.pk} is itself a reversal and cannot be reversed; post a new entry.",
                       code="reversal_not_reversible", details={"entry_id": original.pk})
    if JournalEntry.objects.filter(reverses_id=original.pk).exists():
        raise _already_reversed(original)
    if entry_date < original.entry_date:
        raise ValidationFailed("A reversal cannot be dated before the entry it reverses.",
                               code="invalid_reversal_date",
                               details={"entry_date": entry_date.isoformat(),
                                        "reversed_entry_date": original.entry_date.isoformat()})
    mirrored = Counter((code, credit, debit) for code, debit, credit in
                       original.lines.values_list("account__code", "debit", "credit"))
    if mirrored != Counter((leg.account_code, leg.debit, leg.credit) for leg in legs):
        raise ValidationFailed("A reversal must swap the debits and credits of every line of the entry.",
                               code="reversal_mismatch", details={"entry_id": original.pk})
