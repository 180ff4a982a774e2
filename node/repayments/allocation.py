"""Allocating a repayment over a loan's schedule: a pure function (no database), ``Decimal`` only.

Two strategies, chosen per product (:class:`node.repayments.models.ProductRepaymentConfig`), both walking the
installments oldest first (by installment number) and filling one installment completely before the next:

* ``penalties_fees_interest_principal`` (default, Apache Fineract's default "penalties, fees, interest,
  principal order"): per installment its penalties, then fees, then interest, then principal;
* ``principal_interest_penalties_fees`` (like Fineract's "mifos-standard" strategy): per installment its
  principal, then interest, then penalties, then fees.

Whatever remains once every installment of the whole schedule is fully paid is the overpayment.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

PENALTIES_FEES_INTEREST_PRINCIPAL = "penalties_fees_interest_principal"
PRINCIPAL_INTEREST_PENALTIES_FEES = "principal_interest_penalties_fees"
DEFAULT_STRATEGY = PENALTIES_FEES_INTEREST_PRINCIPAL

COMPONENTS = ("principal", "interest", "fees", "penalties")
ORDER: dict[str, tuple[str, ...]] = {
    PENALTIES_FEES_INTEREST_PRINCIPAL: ("penalties", "fees", "interest", "principal"),
    PRINCIPAL_INTEREST_PENALTIES_FEES: ("principal", "interest", "penalties", "fees"),
}
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Due:
    """What is still unpaid on one installment, by component (never negative)."""

    key: int  # the caller's handle (installment number or id)
    principal: Decimal
    interest: Decimal
    fees: Decimal
    penalties: Decimal

    def get(self, component: str) -> Decimal:
        return getattr(self, component)

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees + self.penalties


@dataclass(frozen=True)
class Portion:
    """What a repayment pays on one installment, by component."""

    key: int
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fees: Decimal = ZERO
    penalties: Decimal = ZERO

    def get(self, component: str) -> Decimal:
        return getattr(self, component)

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees + self.penalties


@dataclass(frozen=True)
class Allocation:
    portions: tuple[Portion, ...]  # only installments that receive something, in schedule order
    overpayment: Decimal

    def component(self, name: str) -> Decimal:
        return sum((p.get(name) for p in self.portions), ZERO)


def allocate(amount: Decimal, dues: list[Due], strategy: str = DEFAULT_STRATEGY) -> Allocation:
    """Spread ``amount`` (> 0) over ``dues`` (already in schedule order) with ``strategy``."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise ValueError("amount must be a positive, finite Decimal")
    if strategy not in ORDER:
        raise ValueError(f"unknown allocation strategy {strategy!r}")
    left = amount
    portions: list[Portion] = []
    for due in dues:
        if left <= 0:
            break
        paid: dict[str, Decimal] = {}
        for component in ORDER[strategy]:
            owed = due.get(component)
            if owed < 0:
                raise ValueError(f"installment {due.key}: negative {component} due")
            take = min(owed, left)
            if take > 0:
                paid[component] = take
                left -= take
        if paid:
            portions.append(Portion(key=due.key, **paid))
    return Allocation(portions=tuple(portions), overpayment=left)
