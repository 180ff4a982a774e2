"""``manage.py trial_balance [--mfi CODE] [--as-of YYYY-MM-DD]``: print each MFI's trial balance.

Exit status 0 when every printed trial balance is balanced; 1 (``trial balance UNBALANCED for: ...``) otherwise.
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from node.ledger.models import NormalBalance
from node.ledger.selectors import trial_balance
from node.mfis.models import Mfi


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of: not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = "Print the trial balance of every MFI (or one); exit status 1 if any is unbalanced."

    def add_arguments(self, parser):
        parser.add_argument("--mfi", help="MFI code (default: every MFI of this node)")
        parser.add_argument("--as-of", help="business date YYYY-MM-DD (default: today)")

    def handle(self, *args, **options):
        as_of = _date(options["as_of"]) if options["as_of"] else timezone.localdate()
        mfis = Mfi.objects.order_by("code")
        if options["mfi"]:
            mfis = mfis.filter(code=options["mfi"])
            if not mfis.exists():
                raise CommandError(f"no such MFI: {options['mfi']}")
        unbalanced = []
        for mfi in mfis:
            tb = trial_balance(mfi=mfi, as_of=as_of)
            self._print(mfi, tb)
            if not tb.balanced:
                unbalanced.append(mfi.code)
        if unbalanced:
            raise CommandError(f"trial balance UNBALANCED for: {', '.join(unbalanced)}", returncode=1)

    def _print(self, mfi, tb):
        w = self.stdout.write
        w(f"{mfi.code} — {mfi.name} — trial balance as of {tb.as_of.isoformat()} ({tb.currency})")
        if not tb.rows:
            w("  (no accounts)")
        else:
            w(f"  {'code':<6} {'account':<40} {'debit':>18} {'credit':>18} {'balance (normal side)':>21}")
            for r in tb.rows:
                side = "Dr" if r.normal_balance == NormalBalance.DEBIT else "Cr"
                w(f"  {r.code:<6} {r.name[:40]:<40} {r.debit:>18,.2f} {r.credit:>18,.2f} {r.balance:>18,.2f} {side}")
            w(f"  {'':<6} {'TOTAL':<40} {tb.total_debit:>18,.2f} {tb.total_credit:>18,.2f}")
        w(f"  {'BALANCED' if tb.balanced else f'UNBALANCED (difference {tb.difference:,.2f})'}")
        w("")
