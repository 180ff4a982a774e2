"""Lines may be added to any entry inserted by the transaction's latest INSERT into entries (not only its last row).

Migration 0002 let a line reference only the entry this transaction inserted *last* (``letsema.ledger_open_entry``,
set by a row trigger), which forced one INSERT of lines per entry. ``journal_post_many`` inserts many entries in one
statement, then all their lines in one statement, so the rule becomes: a line may reference only an entry inserted
by the *latest INSERT statement* into ``ledger_journalentry`` of the same transaction. A statement-level trigger
(transition table) stores those ids in the transaction-local setting ``letsema.ledger_open_entries``
(``,12,13,14,``); the line trigger checks membership. For an INSERT of one entry this is exactly the old rule; a
committed (or earlier) entry still cannot be extended, and the deferred balance triggers are unchanged.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION ledger_journalentry_mark_open_set() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('letsema.ledger_open_entries',
                       coalesce((SELECT ',' || string_agg(id::text, ',') || ',' FROM inserted_entries), ''), true);
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_journalentry_open_set
    AFTER INSERT ON ledger_journalentry
    REFERENCING NEW TABLE AS inserted_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_journalentry_mark_open_set();

CREATE OR REPLACE FUNCTION ledger_journalline_require_open_entry() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF position(',' || NEW.entry_id::text || ','
                IN coalesce(current_setting('letsema.ledger_open_entries', true), '')) = 0 THEN
        RAISE EXCEPTION 'ledger entry % is closed: lines are inserted only with their entry, in its transaction',
            NEW.entry_id
            USING ERRCODE = 'check_violation',
                  HINT = 'Entries are never changed; post a new entry or a reversal.';
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS ledger_journalentry_open ON ledger_journalentry;
DROP FUNCTION IF EXISTS ledger_journalentry_mark_open();
"""

REVERSE = r"""
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

CREATE OR REPLACE FUNCTION ledger_journalline_require_open_entry() RETURNS trigger
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

DROP TRIGGER IF EXISTS ledger_journalentry_open_set ON ledger_journalentry;
DROP FUNCTION IF EXISTS ledger_journalentry_mark_open_set();
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_database_enforcement")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
