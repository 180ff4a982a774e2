"""Receipt numbers from one sequence per MFI instead of a counter row (a row bumped by UPDATE stays locked until
commit, so every posting of an MFI waited for the previous one to commit). Each counter becomes a sequence that
continues after its last number; the table goes."""

from django.db import migrations


def counters_to_sequences(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT mfi_id, last_number FROM repayments_receiptcounter")
        for mfi_id, last in cursor.fetchall():
            seq = f"repayments_receipt_mfi_{int(mfi_id)}"
            cursor.execute(f'CREATE SEQUENCE IF NOT EXISTS "{seq}" AS bigint MINVALUE 1')
            if last:
                cursor.execute("SELECT setval(%s, %s, true)", [seq, last])


def sequences_to_counters(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_class c WHERE c.relkind = 'S' "
                       "AND c.relname ~ '^repayments_receipt_mfi_[0-9]+$'")
        for (seq,) in cursor.fetchall():
            cursor.execute(f'SELECT last_value, is_called FROM "{seq}"')
            last, called = cursor.fetchone()
            cursor.execute("INSERT INTO repayments_receiptcounter (mfi_id, last_number) VALUES (%s, %s)",
                           [int(seq.rsplit("_", 1)[1]), last if called else 0])
            cursor.execute(f'DROP SEQUENCE "{seq}"')


class Migration(migrations.Migration):

    dependencies = [
        ("repayments", "0002_overpayment_refund_and_payoff_waiver"),
    ]

    operations = [
        migrations.RunPython(counters_to_sequences, sequences_to_counters),
        migrations.DeleteModel(name="ReceiptCounter"),
    ]
