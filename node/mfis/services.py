from django.db import transaction

from node.core.errors import Conflict
from node.mfis.models import Mfi
from node.users.models import User


@transaction.atomic
def mfi_create(*, actor: User, code: str, name: str, home_district: str) -> Mfi:
    if Mfi.objects.filter(code=code).exists():
        raise Conflict(f"An MFI with code {code!r} already exists.", code="mfi_exists", details={"code": code})
    mfi = Mfi.objects.create(code=code, name=name, home_district=home_district)
    return mfi
