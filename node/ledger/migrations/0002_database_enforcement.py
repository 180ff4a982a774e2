"""The ledger's rules, enforced by PostgreSQL itself (whatever the client: ORM, raw SQL, dbshell).

1. Balanced entries — deferred constraint triggers. ``ledger_check_entry(entry_id)`` raises (SQLSTATE 23514,
   check_violation, so clients see an IntegrityError) unless the entry has at least two lines, the sum of its
   debits equals the sum of its credits, every line is on an account of the entry's own MFI, and — for a
   reversal — the reversed entry is of the same MFI and is not itself a reversal. It runs from two
   ``DEFERRABLE INITIALLY DEFERRED`` constraint triggers, i.e. at COMMIT (or at ``SET CONSTRAINTS ...
   IMMEDIATE``, which ``journal_post`` issues at the end of each posting):
   * ``ledger_journalline_balanced`` AFTER INSERT OR UPDATE OR DELETE ON lines, FOR EACH ROW — for the affected
     entry (both old and new on an update that moves a line);
   * ``ledger_journalentry_balanced`` AFTER INSERT ON entries, FOR EACH ROW — so an entry inserted with no lines
     at all is refused too (no line trigger would ever fire for it).
   Deferring is what lets an entry's lines be inserted in several statements; the check sees the final state.
   A line can only be added to the entry most recently inserted by the same transaction
   (``ledger_journalline_open_entry``, via the transaction-local setting ``letsema.ledger_open_entry``), so a
   committed entry cannot be extended later with a new balanced pair of lines.

2. Append-only — BEFORE UPDATE OR DELETE row triggers on entries and lines raise
   ``<table> is append-only: <op> refused`` (SQLSTATE P0001, an InternalError), in the style of audit 0002;
   BEFORE TRUNCATE statement triggers run ``letsema_truncate_guard()`` (audit 0003), which refuses TRUNCATE
   except for the test suite's flush. Accounts may be renamed and (de)activated but never change MFI, code,
   type or contra flag (which would rewrite the meaning of their history); deleting a used account is already
   refused by the foreign keys of its lines.

Limits (as for the audit table): the node's role owns these tables, so an owner/superuser can still
``DISABLE TRIGGER``; the REVOKE only keeps other roles out. Cost: the balance check runs once per inserted line
and once per entry, each an index scan over that entry's lines — negligible for entries of a few lines.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION ledger_check_entry(p_entry_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_mfi bigint;
    v_reverses bigint;
    v_lines integer;
    v_debit numeric;
    v_credit numeric;
    v_foreign integer;
    v_reversed_mfi bigint;
    v_reversed_reverses bigint;
BEGIN
    SELECT mfi_id, reverses_id INTO v_mfi, v_reverses FROM ledger_journalentry WHERE id = p_entry_id;
    IF NOT FOUND THEN
        RETURN;  -- no such entry: the lines' foreign key reports it
    END IF;
    SELECT count(*), coalesce(sum(l.debit), 0), coalesce(sum(l.credit), 0),
           count(*) FILTER (WHERE a.mfi_id <> v_mfi)
      INTO v_lines, v_debit, v_credit, v_foreign
      FROM ledger_journalline l JOIN ledger_account a ON a.id = l.account_id
     WHERE l.entry_id = p_entry_id;
    IF v_lines < 2 THEN
        RAISE EXCEPTION 'ledger entry % has % line(s); an entry needs at least 2', p_entry_id, v_lines
            USING ERRCODE = 'check_violation';
    END IF;
    IF v_debit <> v_credit THEN
        RAISE EXCEPTION 'ledger entry % is unbalanced: debits % <> credits %', p_entry_id, v_debit, v_credit
            USING ERRCODE = 'check_violation';
    END IF;
    IF v_foreign > 0 THEN
        RAISE EXCEPTION 'ledger entry % has % line(s) on another MFI''s accounts', p_entry_id, v_foreign
            USING ERRCODE = 'check_violation';
    END IF;
    IF v_reverses IS NOT NULL THEN
        SELECT mfi_id, reverses_id INTO v_reversed_mfi, v_reversed_reverses
          FROM ledger_journalentry WHERE id = v_reverses;
        IF v_reversed_mfi <> v_mfi THEN
            RAISE EXCEPTION 'ledger entry % reverses entry % of another MFI', p_entry_id, v_reverses
                USING ERRCODE = 'check_violation';
        END IF;
        IF v_reversed_reverses IS NOT NULL THEN
            RAISE EXCEPTION 'ledger entry % reverses entry %, which is itself a reversal', p_entry_id, v_reverses
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
END;
$$;

CREATE FUNCTION ledger_journalline_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM ledger_check_entry(NEW.entry_id);
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.entry_id <> NEW.entry_id) THEN
        PERFORM ledger_check_entry(OLD.entry_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION ledger_journalentry_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_check_entry(NEW.id);
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_journalline_balanced
    AFTER INSERT OR UPDATE OR DELETE ON ledger_journalline
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_journalline_check_balanced();

CREATE CONSTRAINT TRIGGER ledger_journalentry_balanced
    AFTER INSERT ON ledger_journalentry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_journalentry_check_balanced();

-- Lines only for the entry this transaction inserted last.
CREATE FUNCTION ledger_journalentry_mark_open() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('letsema.ledger_open_entry', NEW.id::text, true);
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_journalentry_open
    AFTER INSERT ON ledger_journalentry
    FOR EACH ROW EXECUTE FUNCTION ledger_journalentry_mark_open();

CREATE FUNCTION ledger_journalline_require_open_entry() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.entry_id::text IS DISTINCT FROM nullif(current_setting('letsema.ledger_open_entry', true), '') THEN
        RAISE EXCEPTION 'ledger entry % is closed: lines are inserted only with their entry, in its transaction',
            NEW.entry_id
            USING ERRCODE = 'check_violation',
                  HINT = 'Entries are never changed; post a new entry or a reversal.';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_journalline_open_entry
    BEFORE INSERT ON ledger_journalline
    FOR EACH ROW EXECUTE FUNCTION ledger_journalline_require_open_entry();

-- Append-only.
CREATE FUNCTION ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING HINT = 'Ledger entries are never changed or removed; post a reversal instead.';
END;
$$;

CREATE TRIGGER ledger_journalentry_no_update_delete
    BEFORE UPDATE OR DELETE ON ledger_journalentry
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE TRIGGER ledger_journalline_no_update_delete
    BEFORE UPDATE OR DELETE ON ledger_journalline
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE TRIGGER ledger_journalentry_no_truncate
    BEFORE TRUNCATE ON ledger_journalentry
    FOR EACH STATEMENT EXECUTE FUNCTION letsema_truncate_guard();

CREATE TRIGGER ledger_journalline_no_truncate
    BEFORE TRUNCATE ON ledger_journalline
    FOR EACH STATEMENT EXECUTE FUNCTION letsema_truncate_guard();

REVOKE UPDATE, DELETE, TRUNCATE ON ledger_journalentry, ledger_journalline FROM PUBLIC;

-- Accounts: identity fixed once created.
CREATE FUNCTION ledger_account_identity_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.mfi_id <> OLD.mfi_id OR NEW.code <> OLD.code OR NEW.type <> OLD.type
       OR NEW.is_contra <> OLD.is_contra THEN
        RAISE EXCEPTION 'ledger account % (%): mfi, code, type and contra flag never change', OLD.id, OLD.code
            USING HINT = 'Deactivate the account and create a new one.';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_account_identity_fixed
    BEFORE UPDATE ON ledger_account
    FOR EACH ROW EXECUTE FUNCTION ledger_account_identity_fixed();
"""

REVERSE = r"""
DROP TRIGGER IF EXISTS ledger_account_identity_fixed ON ledger_account;
DROP FUNCTION IF EXISTS ledger_account_identity_fixed();
DROP TRIGGER IF EXISTS ledger_journalline_no_truncate ON ledger_journalline;
DROP TRIGGER IF EXISTS ledger_journalentry_no_truncate ON ledger_journalentry;
DROP TRIGGER IF EXISTS ledger_journalline_no_update_delete ON ledger_journalline;
DROP TRIGGER IF EXISTS ledger_journalentry_no_update_delete ON ledger_journalentry;
DROP FUNCTION IF EXISTS ledger_append_only();
DROP TRIGGER IF EXISTS ledger_journalline_open_entry ON ledger_journalline;
DROP FUNCTION IF EXISTS ledger_journalline_require_open_entry();
DROP TRIGGER IF EXISTS ledger_journalentry_open ON ledger_journalentry;
DROP FUNCTION IF EXISTS ledger_journalentry_mark_open();
DROP TRIGGER IF EXISTS ledger_journalentry_balanced ON ledger_journalentry;
DROP TRIGGER IF EXISTS ledger_journalline_balanced ON ledger_journalline;
DROP FUNCTION IF EXISTS ledger_journalentry_check_balanced();
DROP FUNCTION IF EXISTS ledger_journalline_check_balanced();
DROP FUNCTION IF EXISTS ledger_check_entry(bigint);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0001_initial"),
        ("audit", "0003_truncate_guard_for_test_flush"),
    ]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
