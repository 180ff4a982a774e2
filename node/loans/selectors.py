from __future__ import annotations

from django.db.models import QuerySet

from node.audit.services import audit_access_denied
from node.core.errors import Forbidden, NotFound
from node.loans.models import Loan, LoanProduct
from node.users.models import MFI_STAFF_ROLES, Role, User


def loan_list_for(*, actor: User, related: bool = True) -> QuerySet[Loan]:
    """The loans ``actor`` may see (with their product, borrower and MFI unless ``related=False``)."""
    qs = Loan.objects.select_related("product", "borrower", "mfi") if related else Loan.objects.all()
    if actor.role == Role.BORROWER:
        return qs.filter(borrower__user=actor)
    if actor.role in MFI_STAFF_ROLES and actor.mfi_id is not None:
        return qs.filter(mfi_id=actor.mfi_id)
    return qs.none()


def access_loan_by_id(actor: User, loan_id, *, roles: frozenset[str] | None = None, related: bool = True) -> Loan:
    """The loan if ``actor`` may see it, else NotFound exactly as for a missing id (and an audit event).
    ``related=False``: the loan's own row only, for a write whose service locks and reloads the loan anyway (the
    joins cost a repayment more Python than any other statement of its request)."""
    try:
        pk = int(loan_id)
    except (TypeError, ValueError):
        raise NotFound("No such loan.") from None
    loan = loan_list_for(actor=actor, related=related).filter(pk=pk).first()
    if loan is None:
        if Loan.objects.filter(pk=pk).exists():
            audit_access_denied(actor=actor, target_type="loan", target_id=pk)
        raise NotFound("No such loan.")
    if roles is not None and actor.role not in roles:
        raise Forbidden("Your role may not do this.")
    return loan


def product_list(*, mfi_code: str | None = None, include_inactive: bool = False) -> QuerySet[LoanProduct]:
    qs = LoanProduct.objects.select_related("mfi").filter(mfi__is_active=True)
    if not include_inactive:
        qs = qs.filter(is_active=True)
    if mfi_code:
        qs = qs.filter(mfi__code=mfi_code)
    return qs


def product_get(product_id) -> LoanProduct:
    try:
        return LoanProduct.objects.select_related("mfi").get(pk=int(product_id), is_active=True)
    except (LoanProduct.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such product.") from None
