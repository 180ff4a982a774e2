"""Each loan's outstanding principal, kept by the database itself: a column the ORM does not map (so no ``save()``
can write a stale value back) and statement-level triggers on installments that add every change of
``principal - principal_paid`` to the loan, whatever wrote it (services, set-based posting, close of business,
raw SQL). Reports read it instead of summing every installment (docs/reports.md), through a covering index on
active loans."""

from django.db import migrations

SQL = """
ALTER TABLE loans_loan ADD COLUMN principal_outstanding numeric(20, 2) NOT NULL DEFAULT 0;

CREATE FUNCTION loans_principal_outstanding_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE loans_loan l SET principal_outstanding = l.principal_outstanding + d.delta
        FROM (SELECT loan_id, SUM(principal - principal_paid) AS delta FROM new_rows GROUP BY loan_id) d
        WHERE l.id = d.loan_id AND d.delta <> 0;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE loans_loan l SET principal_outstanding = l.principal_outstanding - d.delta
        FROM (SELECT loan_id, SUM(principal - principal_paid) AS delta FROM old_rows GROUP BY loan_id) d
        WHERE l.id = d.loan_id AND d.delta <> 0;
    ELSE
        UPDATE loans_loan l SET principal_outstanding = l.principal_outstanding + d.delta
        FROM (SELECT loan_id, SUM(x) AS delta FROM (
                  SELECT loan_id, principal - principal_paid AS x FROM new_rows
                  UNION ALL SELECT loan_id, principal_paid - principal FROM old_rows) c
              GROUP BY loan_id) d
        WHERE l.id = d.loan_id AND d.delta <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER installment_outstanding_insert AFTER INSERT ON loans_loaninstallment
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION loans_principal_outstanding_sync();
CREATE TRIGGER installment_outstanding_update AFTER UPDATE ON loans_loaninstallment
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION loans_principal_outstanding_sync();
CREATE TRIGGER installment_outstanding_delete AFTER DELETE ON loans_loaninstallment
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION loans_principal_outstanding_sync();

UPDATE loans_loan l SET principal_outstanding = s.out
FROM (SELECT loan_id, SUM(principal - principal_paid) AS out FROM loans_loaninstallment GROUP BY loan_id) s
WHERE l.id = s.loan_id AND s.out <> 0;

CREATE INDEX loan_active_portfolio ON loans_loan (mfi_id, product_id, approved_by_id)
    INCLUDE (days_past_due, principal_outstanding, delinquency_bucket, risk_grade) WHERE status = 'active';
"""

REVERSE = """
DROP INDEX IF EXISTS loan_active_portfolio;
DROP TRIGGER IF EXISTS installment_outstanding_insert ON loans_loaninstallment;
DROP TRIGGER IF EXISTS installment_outstanding_update ON loans_loaninstallment;
DROP TRIGGER IF EXISTS installment_outstanding_delete ON loans_loaninstallment;
DROP FUNCTION IF EXISTS loans_principal_outstanding_sync();
ALTER TABLE loans_loan DROP COLUMN IF EXISTS principal_outstanding;
"""


class Migration(migrations.Migration):
    dependencies = [("loans", "0005_risk_grade")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
