"""What other apps may hear about from repayments without repayments knowing them (payroll keeps its rows linked).

``repayment_replayed``: sent inside the reversal's transaction for each later repayment that reprocessing posted
again (``old`` reversed, ``new`` its replay, same amount, date, channel and reference). A receiver that keeps a
link to ``old`` moves it to ``new``; raising rolls the whole reversal back."""

from django.dispatch import Signal

repayment_replayed = Signal()
