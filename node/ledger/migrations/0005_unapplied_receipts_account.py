"""Every MFI that has a chart gets the standard account 2150 "Unapplied receipts (suspense)": money received that no
loan could take (a mobile-money payment confirmed after its loan closed), owed back to the payer until refunded
(new MFIs get it from ``ledger_ensure_chart``)."""

from django.db import migrations


def add_unapplied_receipts_account(apps, schema_editor):
    Account = apps.get_model("ledger", "Account")
    mfi_ids = set(Account.objects.values_list("mfi_id", flat=True).distinct())
    have = set(Account.objects.filter(code="2150").values_list("mfi_id", flat=True))
    Account.objects.bulk_create([Account(mfi_id=m, code="2150", name="Unapplied receipts (suspense)",
                                         type="LIABILITY", is_contra=False) for m in sorted(mfi_ids - have)])


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_recovery_income_account")]
    operations = [migrations.RunPython(add_unapplied_receipts_account, migrations.RunPython.noop)]
