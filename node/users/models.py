from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    BORROWER = "borrower", "Borrower"
    LOAN_OFFICER = "loan_officer", "Loan officer"
    MFI_ADMIN = "mfi_admin", "MFI administrator"
    ANALYST = "analyst", "Analyst"
    LETSEMA_ADMIN = "letsema_admin", "Letsema administrator"
    OPERATOR = "operator", "Operator"


#: Roles that work for one MFI and must have one.
MFI_STAFF_ROLES = frozenset({Role.LOAN_OFFICER, Role.MFI_ADMIN, Role.ANALYST})


class User(AbstractUser):
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.BORROWER, db_index=True)
    mfi = models.ForeignKey("mfis.Mfi", null=True, blank=True, on_delete=models.PROTECT, related_name="staff")

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="mfi_staff_have_mfi",
                condition=~models.Q(role__in=["loan_officer", "mfi_admin", "analyst"]) | models.Q(mfi__isnull=False),
            ),
        ]
