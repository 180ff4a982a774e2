"""Borrowers registered at this node, their MFI relationships, phone OTPs, KYC documents and consents.

The raw national ID lives only here (this node's PostgreSQL). Everything that leaves the node — the ring,
peer messages, task payloads, logs — carries ``borrower_key`` instead.

A *visiting* borrower (``home_district`` set) is registered at another district and signed in here over the
federation (``borrower_visitor_sign_in``): this node holds a copy of the profile the home node shared, never the
national ID (``national_id`` is NULL).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Channel(models.TextChoices):
    SELF_SERVICE = "self_service", "Self-service (web/API)"
    BRANCH = "branch", "At a branch, with staff"
    USSD = "ussd", "USSD / phone"
    HOME_DISTRICT = "home_district", "Given at the borrower's home district"


class Borrower(models.Model):
    national_id = models.CharField(max_length=32, unique=True, null=True, blank=True)  # NULL for visitors only
    borrower_key = models.CharField(max_length=80, unique=True)
    home_district = models.CharField(max_length=40, blank=True, default="")  # "" = registered at this node
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    phone = models.CharField(max_length=16)
    address = models.CharField(max_length=300)
    residence_district = models.CharField(max_length=40)
    employer = models.CharField(max_length=200, blank=True)
    employee_number = models.CharField(max_length=40, blank=True)
    monthly_income = models.DecimalField(max_digits=20, decimal_places=2)
    next_of_kin_name = models.CharField(max_length=200)
    next_of_kin_phone = models.CharField(max_length=16)
    next_of_kin_relationship = models.CharField(max_length=40)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="borrower"
    )
    registration_channel = models.CharField(max_length=20, choices=Channel.choices)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ring_claim_id = models.UUIDField()
    phone_verified_at = models.DateTimeField(null=True, blank=True)
    is_verified = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verification_method = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(home_district="") & models.Q(national_id__isnull=False))
                | (~models.Q(home_district="") & models.Q(national_id__isnull=True)),
                name="borrower_home_has_national_id_visitor_has_none",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} (#{self.pk})"

    @property
    def is_visitor(self) -> bool:
        return bool(self.home_district)


class MfiClient(models.Model):
    """A borrower is a client of an MFI: what lets that MFI's staff see the borrower."""

    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="mfi_links")
    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="clients")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["borrower", "mfi"], name="one_link_per_mfi")]


class PhoneOtp(models.Model):
    borrower = models.ForeignKey(Borrower, on_delete=models.CASCADE, related_name="otps")
    phone = models.CharField(max_length=16)
    code_hash = models.CharField(max_length=100)  # "<seed>$<hmac hex>"
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    consumed_at = models.DateTimeField(null=True, blank=True)
    superseded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]


class DocumentType(models.TextChoices):
    ID_COPY = "id_copy", "Copy of national ID"
    PAYSLIP = "payslip", "Payslip"
    PROOF_OF_ADDRESS = "proof_of_address", "Proof of address"


class KycDocument(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="documents")
    doc_type = models.CharField(max_length=20, choices=DocumentType.choices)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_name = models.CharField(max_length=64, unique=True)
    original_name = models.CharField(max_length=120, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    retain_until = models.DateField()

    class Meta:
        ordering = ["uploaded_at"]


class KycAccess(models.Model):
    """Every access to a KYC document: who, when, why."""

    document = models.ForeignKey(KycDocument, on_delete=models.PROTECT, related_name="accesses")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=20)  # upload | download
    reason = models.CharField(max_length=300)
    at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True)


class ConsentText(models.Model):
    version = models.PositiveIntegerField()
    language = models.CharField(max_length=5)  # en | st
    title = models.CharField(max_length=200)
    body = models.TextField()
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "language"], name="one_text_per_version_language")]
        ordering = ["-version", "language"]


class Consent(models.Model):
    """Consent to share credit history with, and be looked up by, Letsema member MFIs."""

    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="consents")
    version = models.PositiveIntegerField()
    language = models.CharField(max_length=5)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    given_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_channel = models.CharField(max_length=20, choices=Channel.choices, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-given_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["borrower"], condition=models.Q(withdrawn_at__isnull=True), name="one_active_consent"
            )
        ]
