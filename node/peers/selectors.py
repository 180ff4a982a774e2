"""Reads for the federation endpoints: by borrower key only (never a national ID)."""

from __future__ import annotations

from django.conf import settings

from node.borrowers.models import Borrower
from node.peers.schemas import BorrowerStatus


def borrower_status_get(*, borrower_key: str) -> BorrowerStatus:
    row = Borrower.objects.filter(borrower_key=borrower_key).values_list("is_verified", flat=True).first()
    return BorrowerStatus(district=settings.DISTRICT.code, borrower_key=borrower_key, registered=row is not None,
                          verified=bool(row))
