"""Every MFI that has a chart gets the standard account 4300 "Recoveries of loans written off" (new MFIs get it
from ``ledger_ensure_chart``)."""

from django.db import migrations


def add_recovery_account(apps, schema_editor):
    Account = apps.get_model("ledger", "Account")
    mfi_ids = set(Account.objects.values_list("mfi_id", flat=True).distinct())
    have = set(Account.objects.filter(code="4300").values_list("mfi_id", flat=True))
    Account.objects.bulk_create([Account(mfi_id=m, code="4300", name="Recoveries of loans written off", type="INCOME",
                                         is_contra=False) for m in sorted(mfi_ids - have)])


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_open_entries_per_statement")]
    operations = [migrations.RunPython(add_recovery_account, migrations.RunPython.noop)]
