"""Make ``audit_auditevent`` append-only in the database itself.

A row-level BEFORE UPDATE OR DELETE trigger and a statement-level BEFORE TRUNCATE trigger raise
``audit_auditevent is append-only``, whatever the client: the ORM, raw SQL, ``manage.py dbshell`` or a
``flush``. The node's database role *owns* this table (it runs the migrations), and an owner is never
stopped by GRANTs, so it is the trigger — not the ``REVOKE ... FROM PUBLIC`` below, which only keeps other
roles out — that enforces the rule for the application.

Limits: the table owner can still ``ALTER TABLE ... DISABLE TRIGGER`` and a superuser can also
``SET session_replication_role = replica`` (the local cluster's node role is the initdb superuser). Such
tampering is not prevented but detected: the hash chain (``manage.py audit_verify``) reports the first
altered row or the gap a deleted row leaves. A production deployment should run the node under a
non-owner role with only INSERT/SELECT on this table.

Consequence for tests: Django's ``flush`` (used after ``transaction=True`` tests) TRUNCATEs every table and
is refused while this table exists; see tests/test_audit.py for how the suite avoids it.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION audit_auditevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_auditevent is append-only: % refused', TG_OP
        USING HINT = 'Audit events are never changed or removed; record a new event instead.';
END;
$$;

CREATE TRIGGER audit_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_append_only();

CREATE TRIGGER audit_auditevent_no_truncate
    BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_auditevent_append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_auditevent FROM PUBLIC;
"""

REVERSE = r"""
DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_auditevent_no_update_delete ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_auditevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
