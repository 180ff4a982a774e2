"""Borrower registration, phone OTP, KYC documents, verification and consent — real PostgreSQL and ring."""

from __future__ import annotations

import os
import re
import stat
from datetime import date, timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from node.audit.models import AuditEvent
from node.borrowers import directory
from node.borrowers.identity import borrower_key, normalise_national_id
from node.borrowers.models import Borrower, KycAccess, KycDocument, MfiClient, PhoneOtp
from node.mfis.models import Mfi
from node.notifications.sms import read_file_outbox
from node.users.models import Role, User
from tests.borrower_factory import PDF, PNG, new_national_id, payload

from tests.factories import PASSWORD, client_for
from tests.factories import make_user as user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _sms_file(tmp_path, settings):
    settings.SMS_BACKEND = "file"
    settings.SMS_FILE_PATH = tmp_path / "sms.jsonl"
    settings.KYC_STORAGE_DIR = tmp_path / "kyc"


@pytest.fixture
def mfi_a():
    return Mfi.objects.create(code="alpha-credit", name="Alpha Credit", home_district="maseru")


@pytest.fixture
def mfi_b():
    return Mfi.objects.create(code="beta-loans", name="Beta Loans", home_district="maseru")




def assert_error(r, status, code):
    assert r.status_code == status, (r.status_code, r.content)
    body = r.json()
    assert body["code"] == code, body
    return body


@pytest.fixture
def officer_a(mfi_a):
    return user(Role.LOAN_OFFICER, mfi_a)


def staff_register(officer, **overrides):
    return client_for(officer).post("/api/v1/borrowers/", payload(**overrides), format="json")


# --- registration --------------------------------------------------------------------------------
def test_self_registration_creates_account_profile_and_directory_entry():
    data = payload(national_id="0123 456-7890", password=PASSWORD)
    r = APIClient().post("/api/v1/borrowers/register", data, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["username"] == data["phone"]
    assert body["national_id_masked"] == "********890"
    assert "national_id" not in body
    assert body["monthly_income"] == "8500.00"
    assert body["home_district"] == "maseru" and body["registration_channel"] == "self_service"
    b = Borrower.objects.get(pk=body["id"])
    assert b.national_id == "01234567890"
    assert b.borrower_key == borrower_key("01234567890") and b.borrower_key.startswith("v1:")
    entry = directory.directory_get([b.borrower_key])
    assert entry.home_district == "maseru" and entry.claim_id == b.ring_claim_id and entry.verified is False
    assert AuditEvent.objects.filter(action="borrower.register", target_id=str(b.pk)).exists()
    audit = AuditEvent.objects.get(action="borrower.register", target_id=str(b.pk))
    assert "01234567890" not in str(audit.after)

    # the borrower logs in with phone + password and sees their profile
    tok = APIClient().post("/api/v1/auth/token/", {"username": data["phone"], "password": PASSWORD}, format="json")
    assert tok.status_code == 200 and tok.json()["role"] == "borrower"
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {tok.json()['access']}")
    me = c.get("/api/v1/borrowers/me")
    assert me.status_code == 200 and me.json()["id"] == b.pk
    assert c.get(f"/api/v1/borrowers/{b.pk}/").status_code == 200


INVALID = [
    ("national_id", {"national_id": "12AB"}, "national_id"),
    ("national_id too short", {"national_id": "12345"}, "national_id"),
    ("under 18", {"date_of_birth": (date.today() - timedelta(days=17 * 365)).isoformat()}, "date_of_birth"),
    ("future dob", {"date_of_birth": (date.today() + timedelta(days=3)).isoformat()}, "date_of_birth"),
    ("bad date", {"date_of_birth": "12/04/1990"}, "date_of_birth"),
    ("phone", {"phone": "12345"}, "phone"),
    ("foreign phone", {"phone": "+27821234567"}, "phone"),
    ("district", {"residence_district": "Gotham"}, "residence_district"),
    ("float income", {"monthly_income": 8500.5}, "monthly_income"),
    ("negative income", {"monthly_income": "-1.00"}, "monthly_income"),
    ("income 3 places", {"monthly_income": "10.001"}, "monthly_income"),
    ("next of kin phone", {"next_of_kin": {"name": "X", "phone": "nope", "relationship": "brother"}}, "next_of_kin"),
    ("next of kin missing", {"next_of_kin": {"name": "X"}}, "next_of_kin"),
    ("unknown field", {"favourite_colour": "blue"}, "favourite_colour"),
    ("weak password", {"password": "password12"}, "password"),
    ("missing name", {"first_name": ""}, "first_name"),
]


@pytest.mark.parametrize("desc,override,field", INVALID, ids=[i[0] for i in INVALID])
def test_registration_validation_errors_name_the_field_and_write_nothing(desc, override, field):
    data = payload(password=PASSWORD)
    data.update(override)
    r = APIClient().post("/api/v1/borrowers/register", data, format="json")
    body = assert_error(r, 400, "validation_error")
    assert field in body["details"]["fields"], body
    assert Borrower.objects.count() == 0 and User.objects.count() == 0
    nid = data["national_id"]
    try:
        key = borrower_key(normalise_national_id(nid))
    except ValueError:
        return
    assert directory.directory_get([key]) is None, "a refused registration left a ring claim"


def test_missing_fields_are_all_listed():
    r = APIClient().post("/api/v1/borrowers/register", {}, format="json")
    body = assert_error(r, 400, "validation_error")
    assert {"national_id", "first_name", "last_name", "date_of_birth", "phone", "address", "residence_district",
            "monthly_income", "next_of_kin", "password"} <= set(body["details"]["fields"])


def test_duplicate_national_id_at_this_node_is_refused_whatever_the_formatting(officer_a):
    nid = new_national_id()
    assert staff_register(officer_a, national_id=nid).status_code == 201
    spaced = f"{nid[:3]} {nid[3:7]}-{nid[7:]}"
    assert_error(staff_register(officer_a, national_id=spaced), 409, "borrower_exists")
    r = APIClient().post("/api/v1/borrowers/register", payload(national_id=nid, password=PASSWORD), format="json")
    assert_error(r, 409, "borrower_exists")
    assert Borrower.objects.count() == 1


def test_national_id_registered_at_another_district_is_refused(officer_a):
    import uuid

    nid = new_national_id()
    claim = directory.directory_claim(borrower_key(nid), "leribe", uuid.uuid4())
    assert claim.applied
    body = assert_error(staff_register(officer_a, national_id=nid), 409, "borrower_registered_elsewhere")
    assert body["details"] == {"home_district": "leribe"}
    assert Borrower.objects.count() == 0


def test_orphaned_claim_of_this_district_is_taken_over(officer_a):
    import uuid

    nid = new_national_id()
    orphan = uuid.uuid4()
    assert directory.directory_claim(borrower_key(nid), "maseru", orphan).applied
    r = staff_register(officer_a, national_id=nid)
    assert r.status_code == 201, r.content
    b = Borrower.objects.get(pk=r.json()["id"])
    assert directory.directory_get([b.borrower_key]).claim_id == b.ring_claim_id != orphan


def test_staff_assisted_registration_links_to_the_officers_mfi(officer_a, mfi_a, mfi_b):
    r = staff_register(officer_a)
    assert r.status_code == 201
    b = Borrower.objects.get(pk=r.json()["id"])
    assert b.registration_channel == "branch" and b.registered_by == officer_a and b.user is None
    assert list(MfiClient.objects.filter(borrower=b).values_list("mfi__code", flat=True)) == ["alpha-credit"]
    officer_b = user(Role.LOAN_OFFICER, mfi_b)
    assert client_for(officer_b).get(f"/api/v1/borrowers/{b.pk}/").status_code == 404
    # the borrower walks into MFI B with their ID card
    r = client_for(officer_b).post("/api/v1/borrowers/link", {"national_id": b.national_id}, format="json")
    assert r.status_code == 200
    assert client_for(officer_b).get(f"/api/v1/borrowers/{b.pk}/").status_code == 200
    assert [x["id"] for x in client_for(officer_b).get("/api/v1/borrowers/").json()] == [b.pk]
    unknown = client_for(officer_b).post("/api/v1/borrowers/link", {"national_id": new_national_id()}, format="json")
    assert_error(unknown, 404, "not_found")


def test_the_borrower_list_comes_a_page_at_a_time(officer_a, mfi_a):
    ids = [staff_register(officer_a).json()["id"] for _ in range(5)]
    c = client_for(officer_a)
    r = c.get("/api/v1/borrowers/?limit=2")
    assert r.status_code == 200 and [x["id"] for x in r.json()] == ids[:2]
    assert r["X-Total-Count"] == "5"
    assert r["Link"] == '<http://testserver/api/v1/borrowers/?limit=2&offset=2>; rel="next"'
    r = c.get("/api/v1/borrowers/?limit=2&offset=2")
    assert [x["id"] for x in r.json()] == ids[2:4]
    assert 'offset=4>; rel="next"' in r["Link"] and 'offset=0>; rel="prev"' in r["Link"]
    r = c.get("/api/v1/borrowers/?limit=2&offset=4")
    assert [x["id"] for x in r.json()] == ids[4:] and r["Link"].endswith('offset=2>; rel="prev"')
    assert "rel=\"next\"" not in r["Link"]
    r = c.get("/api/v1/borrowers/")  # default: 100 a page
    assert [x["id"] for x in r.json()] == ids and r["X-Total-Count"] == "5" and not r.has_header("Link")
    for bad in ("limit=0", "limit=501", "limit=ten", "offset=-1", "offset=1.5"):
        body = assert_error(c.get(f"/api/v1/borrowers/?{bad}"), 400, "validation_error")
        assert set(body["details"]["fields"]) == {bad.split("=")[0]}


def test_the_loan_list_refuses_an_unknown_status_or_page(officer_a):
    c = client_for(officer_a)
    body = assert_error(c.get("/api/v1/loans/?status=happy"), 400, "validation_error")
    assert "active" in body["details"]["fields"]["status"]
    assert_error(c.get("/api/v1/loans/?limit=1000"), 400, "validation_error")
    r = c.get("/api/v1/loans/?status=active&limit=10")
    assert r.status_code == 200 and r.json() == [] and r["X-Total-Count"] == "0"


def test_only_officers_register_at_the_branch(mfi_a):
    for role in (Role.ANALYST, Role.BORROWER, Role.OPERATOR):
        u = user(role, mfi_a if role == Role.ANALYST else None)
        assert_error(client_for(u).post("/api/v1/borrowers/", payload(), format="json"), 403, "permission_denied")
    assert Borrower.objects.count() == 0


def test_update_contact_details_resets_phone_verification(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    Borrower.objects.filter(pk=b.pk).update(phone_verified_at=timezone.now())
    c = client_for(officer_a)
    r = c.patch(f"/api/v1/borrowers/{b.pk}/", {"phone": "58001122", "monthly_income": "9100.50"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["phone"] == "+26658001122" and r.json()["phone_verified"] is False
    assert r.json()["monthly_income"] == "9100.50"
    assert_error(c.patch(f"/api/v1/borrowers/{b.pk}/", {"national_id": "1"}, format="json"), 400, "validation_error")
    ev = AuditEvent.objects.filter(action="borrower.update", target_id=str(b.pk)).get()
    assert ev.before["monthly_income"] == "8500.00" and ev.after["monthly_income"] == "9100.50"


# --- phone OTP -----------------------------------------------------------------------------------
def _last_code():
    return read_file_outbox()[-1]["message"].split("code is ")[1][:6]


def test_otp_send_and_verify(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    c = client_for(officer_a)
    r = c.post(f"/api/v1/borrowers/{b.pk}/phone/otp")
    assert r.status_code == 202, r.content
    assert r.json()["sent_to"].endswith(b.phone[-3:]) and "*" in r.json()["sent_to"]
    sms = read_file_outbox()[-1]
    assert sms["to"] == b.phone
    code = _last_code()
    wrong = "000000" if code != "000000" else "111111"
    body = assert_error(c.post(f"/api/v1/borrowers/{b.pk}/phone/verify", {"code": wrong}, format="json"), 400, "otp_invalid")
    assert body["details"] == {"attempts_remaining": 4}
    r = c.post(f"/api/v1/borrowers/{b.pk}/phone/verify", {"code": code}, format="json")
    assert r.status_code == 200 and r.json()["phone_verified"] is True
    assert_error(c.post(f"/api/v1/borrowers/{b.pk}/phone/otp"), 409, "phone_already_verified")
    assert not any(code in str(e.after) for e in AuditEvent.objects.all()), "OTP code leaked into the audit trail"


def test_otp_expiry(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    c = client_for(officer_a)
    c.post(f"/api/v1/borrowers/{b.pk}/phone/otp")
    code = _last_code()
    PhoneOtp.objects.filter(borrower=b).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(c.post(f"/api/v1/borrowers/{b.pk}/phone/verify", {"code": code}, format="json"), 400, "otp_expired")
    assert Borrower.objects.get(pk=b.pk).phone_verified_at is None


def test_otp_attempt_limit(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    c = client_for(officer_a)
    c.post(f"/api/v1/borrowers/{b.pk}/phone/otp")
    code = _last_code()
    wrong = "000000" if code != "000000" else "111111"
    for remaining in (4, 3, 2, 1, 0):
        body = assert_error(c.post(f"/api/v1/borrowers/{b.pk}/phone/verify", {"code": wrong}, format="json"), 400, "otp_invalid")
        assert body["details"]["attempts_remaining"] == remaining
    # even the right code is refused now
    assert_error(c.post(f"/api/v1/borrowers/{b.pk}/phone/verify", {"code": code}, format="json"), 429, "otp_attempts_exceeded")


def test_otp_resend_limits(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    c = client_for(officer_a)
    assert c.post(f"/api/v1/borrowers/{b.pk}/phone/otp").status_code == 202
    r = c.post(f"/api/v1/borrowers/{b.pk}/phone/otp")
    body = assert_error(r, 429, "otp_resend_too_soon")
    assert 0 < body["details"]["retry_after_seconds"] <= 60
    assert r["Retry-After"] == str(body["details"]["retry_after_seconds"])
    for _ in range(4):
        PhoneOtp.objects.filter(borrower=b).update(created_at=timezone.now() - timedelta(minutes=5))
        assert c.post(f"/api/v1/borrowers/{b.pk}/phone/otp").status_code == 202
    PhoneOtp.objects.filter(borrower=b).update(created_at=timezone.now() - timedelta(minutes=5))
    assert_error(c.post(f"/api/v1/borrowers/{b.pk}/phone/otp"), 429, "otp_send_limit")
    # only the newest code is valid
    assert PhoneOtp.objects.filter(borrower=b, superseded=False).count() == 1


# --- KYC documents -------------------------------------------------------------------------------
def _upload(c, bid, content, name="id.pdf", doc_type="id_copy"):
    return c.post(f"/api/v1/borrowers/{bid}/documents/", {"doc_type": doc_type, "file": SimpleUploadedFile(name, content)},
                  format="multipart")


def test_kyc_upload_store_and_logged_download(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    c = client_for(officer_a)
    r = _upload(c, b.pk, PDF)
    assert r.status_code == 201, r.content
    doc = KycDocument.objects.get(pk=r.json()["id"])
    path = settings.KYC_STORAGE_DIR / doc.storage_name
    assert path.is_file() and path.read_bytes() == PDF
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert doc.storage_name != "id.pdf" and doc.content_type == "application/pdf"
    assert not str(path).startswith(str(settings.STATIC_ROOT))
    assert doc.retain_until >= date.today() + timedelta(days=7 * 365 - 1)

    assert_error(c.get(f"/api/v1/borrowers/{b.pk}/documents/{doc.pk}/content"), 400, "validation_error")
    r = c.get(f"/api/v1/borrowers/{b.pk}/documents/{doc.pk}/content", {"reason": "loan application review"})
    assert r.status_code == 200
    assert b"".join(r.streaming_content) == PDF
    accesses = list(KycAccess.objects.filter(document=doc).order_by("at").values_list("action", "reason", "actor_id"))
    assert accesses == [("upload", "upload", officer_a.pk), ("download", "loan application review", officer_a.pk)]


def test_png_named_pdf_is_typed_by_content(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    r = _upload(client_for(officer_a), b.pk, PNG, name="payslip.pdf", doc_type="payslip")
    assert r.status_code == 201 and r.json()["content_type"] == "image/png"


@pytest.mark.parametrize("content,name", [
    (b"<html><script>alert(1)</script></html>", "id.pdf"),
    (b"MZ\x90\x00 executable", "id.jpg"),
    (b"#!/bin/sh\nrm -rf /\n", "id.png"),
])
def test_forged_extension_is_refused(officer_a, content, name):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    assert_error(_upload(client_for(officer_a), b.pk, content, name=name), 400, "unsupported_file_type")
    assert KycDocument.objects.count() == 0
    assert not settings.KYC_STORAGE_DIR.exists() or not any(settings.KYC_STORAGE_DIR.iterdir())


def test_oversized_file_is_refused(officer_a, settings):
    settings.KYC_MAX_BYTES = 1024
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    body = assert_error(_upload(client_for(officer_a), b.pk, PDF + b"0" * 2048), 413, "file_too_large")
    assert body["details"]["max_bytes"] == 1024
    assert KycDocument.objects.count() == 0


@pytest.mark.parametrize("name", ["../../settings.py", "..%2F..%2Fx.pdf", "/etc/passwd", "a.pdf\x00.py",
                                  "..\\..\\boot.ini"])
def test_hostile_file_names_never_place_or_name_the_stored_file(officer_a, name):
    """Reliability notes S7: whatever the name, the file is stored under a random name inside KYC_STORAGE_DIR, typed
    by its bytes, and served back only as an attachment that browsers must not sniff."""
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    c = client_for(officer_a)
    r = _upload(c, b.pk, PDF, name=name)
    assert r.status_code == 201, r.content
    doc = KycDocument.objects.get(pk=r.json()["id"])
    assert re.fullmatch(r"[0-9a-f]{32}\.pdf", doc.storage_name) and doc.content_type == "application/pdf"
    root = os.path.realpath(settings.KYC_STORAGE_DIR)
    stored = [os.path.realpath(p) for p in settings.KYC_STORAGE_DIR.rglob("*") if p.is_file()]
    assert stored == [os.path.join(root, doc.storage_name)]
    assert "/" not in doc.original_name and "\\" not in doc.original_name and "\x00" not in doc.original_name
    got = c.get(f"/api/v1/borrowers/{b.pk}/documents/{doc.pk}/content", {"reason": "review"})
    assert got.status_code == 200
    assert got["Content-Disposition"] == f'attachment; filename="id_copy-{doc.pk}.pdf"'
    assert got["X-Content-Type-Options"] == "nosniff" and got["Content-Type"] == "application/pdf"


def test_a_pdf_html_polyglot_is_kept_as_a_pdf_and_never_served_inline(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    c = client_for(officer_a)
    polyglot = b"%PDF-1.4\n<html><body><script>alert(document.cookie)</script></body></html>\n%%EOF\n"
    r = _upload(c, b.pk, polyglot, name="statement.html")
    assert r.status_code == 201 and r.json()["content_type"] == "application/pdf"
    got = c.get(f"/api/v1/borrowers/{b.pk}/documents/{r.json()['id']}/content", {"reason": "review"})
    assert got["Content-Type"] == "application/pdf" and got["Content-Disposition"].startswith("attachment;")
    assert got["X-Content-Type-Options"] == "nosniff"


def test_path_traversal_name_is_neutralised(officer_a, tmp_path):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    r = _upload(client_for(officer_a), b.pk, PDF, name="../../../../tmp/evil.pdf")
    assert r.status_code == 201
    doc = KycDocument.objects.get(pk=r.json()["id"])
    assert doc.original_name in ("evil.pdf", "")
    assert "/" not in doc.storage_name and ".." not in doc.storage_name
    assert [p.name for p in settings.KYC_STORAGE_DIR.iterdir()] == [doc.storage_name]
    assert not os.path.exists("/tmp/evil.pdf")


def test_unknown_document_type(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    assert_error(_upload(client_for(officer_a), b.pk, PDF, doc_type="selfie"), 400, "validation_error")


# --- verification and consent -------------------------------------------------------------------
def test_verification_needs_phone_and_id_copy(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    c = client_for(officer_a)
    body = assert_error(c.post(f"/api/v1/borrowers/{b.pk}/verify", {"method": "id_document_in_branch"}, format="json"),
                        409, "verification_requirements_unmet")
    assert body["details"]["missing"] == ["phone_verification", "id_copy_document"]
    c.post(f"/api/v1/borrowers/{b.pk}/phone/otp")
    c.post(f"/api/v1/borrowers/{b.pk}/phone/verify", {"code": _last_code()}, format="json")
    _upload(c, b.pk, PDF)
    r = c.post(f"/api/v1/borrowers/{b.pk}/verify", {"method": "id_document_in_branch"}, format="json")
    assert r.status_code == 200 and r.json()["is_verified"] is True
    b.refresh_from_db()
    assert b.verified_by == officer_a and b.verification_method == "id_document_in_branch"
    entry = directory.directory_get([b.borrower_key])
    assert entry.verified is True and entry.verification_method == "id_document_in_branch"


def test_consent_gates_the_network_lookup(officer_a):
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    c = client_for(officer_a)
    body = assert_error(c.get(f"/api/v1/borrowers/{b.pk}/network"), 403, "consent_required")
    assert body["details"] == {"purpose": "network_lookup"}
    refused = AuditEvent.objects.filter(action="consent.lookup_refused", target_id=str(b.pk))
    assert refused.count() == 1 and refused.get().actor == officer_a

    text = APIClient().get("/api/v1/consent-texts/current", {"language": "st"}).json()
    assert text["language"] == "st" and text["version"] >= 1 and text["body"]
    r = c.post(f"/api/v1/borrowers/{b.pk}/consents/", {"version": text["version"], "language": "st"}, format="json")
    assert r.status_code == 201 and r.json()["channel"] == "branch"
    r = c.get(f"/api/v1/borrowers/{b.pk}/network")
    assert r.status_code == 200, r.content
    assert r.json()["home_district"] == "maseru" and r.json()["verified"] is False
    assert AuditEvent.objects.filter(action="network.lookup", target_id=str(b.pk)).count() == 1

    assert c.post(f"/api/v1/borrowers/{b.pk}/consents/withdraw").status_code == 200
    assert_error(c.get(f"/api/v1/borrowers/{b.pk}/network"), 403, "consent_required")
    history = c.get(f"/api/v1/borrowers/{b.pk}/consents/").json()
    assert len(history) == 1 and history[0]["withdrawn_at"] is not None
    assert_error(c.post(f"/api/v1/borrowers/{b.pk}/consents/withdraw"), 409, "no_active_consent")


def test_consent_texts_exist_in_english_and_sesotho():
    for lang in ("en", "st"):
        r = APIClient().get("/api/v1/consent-texts/current", {"language": lang})
        assert r.status_code == 200 and r.json()["language"] == lang
    assert_error(APIClient().get("/api/v1/consent-texts/current", {"language": "fr"}), 400, "validation_error")


def test_outdated_consent_version_is_refused(officer_a):
    from node.borrowers.models import ConsentText

    ConsentText.objects.create(version=99, language="en", title="v99", body="Newer text")
    b = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    r = client_for(officer_a).post(f"/api/v1/borrowers/{b.pk}/consents/", {"version": 1, "language": "en"}, format="json")
    body = assert_error(r, 409, "consent_version_outdated")
    assert body["details"] == {"current_version": 99}


def test_borrower_gives_consent_self_service():
    data = payload(password=PASSWORD)
    bid = APIClient().post("/api/v1/borrowers/register", data, format="json").json()["id"]
    me = User.objects.get(username=data["phone"])
    r = client_for(me).post(f"/api/v1/borrowers/{bid}/consents/", {"version": 1, "language": "en"}, format="json")
    assert r.status_code == 201 and r.json()["channel"] == "self_service"


def test_lookups_work_across_a_pepper_rotation(officer_a, settings):
    import uuid

    registered = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    assert registered.borrower_key.startswith("v1:")
    elsewhere = new_national_id()
    assert directory.directory_claim(borrower_key(elsewhere), "leribe", uuid.uuid4()).applied  # a v1 key

    settings.NETWORK_PEPPERS = {**settings.NETWORK_PEPPERS, 2: b"rotated-pepper-value-0123456789"}
    # new registrations get v2 keys ...
    fresh = Borrower.objects.get(pk=staff_register(officer_a).json()["id"])
    assert fresh.borrower_key.startswith("v2:")
    assert directory.directory_get([fresh.borrower_key]).home_district == "maseru"
    # ... and a person registered elsewhere under v1 is still found and refused
    body = assert_error(staff_register(officer_a, national_id=elsewhere), 409, "borrower_registered_elsewhere")
    assert body["details"] == {"home_district": "leribe"}
    # a v1 borrower's network look-up still works
    c = client_for(officer_a)
    c.post(f"/api/v1/borrowers/{registered.pk}/consents/", {"version": 1, "language": "en"}, format="json")
    r = c.get(f"/api/v1/borrowers/{registered.pk}/network")
    assert r.status_code == 200 and r.json()["home_district"] == "maseru"


def test_pepper_secret_format():
    from config.secrets import parse_peppers

    assert parse_peppers("plain-single-secret-value") == {1: b"plain-single-secret-value"}
    assert parse_peppers("1:aaaaaaaaaaaaaaaaaaaa\n2:bbbbbbbbbbbbbbbbbbbb\n") == {
        1: b"aaaaaaaaaaaaaaaaaaaa", 2: b"bbbbbbbbbbbbbbbbbbbb"}
    for bad in ("1:short\n2:x", "a:bbbbbbbbbbbbbbbbbbbbbbbb\nb:c", "0:aaaaaaaaaaaaaaaaaaaaa\n1:x"):
        with pytest.raises(ValueError, match="network_pepper"):
            parse_peppers(bad)


def test_directory_claim_resolves_an_unknown_lwt_outcome_by_reading_back(monkeypatch):
    """A Paxos timeout leaves the outcome unknown: the claim reads back at SERIAL instead of failing."""
    import uuid

    from replication.ring import RingUnavailable

    key = borrower_key(new_national_id())
    mine = uuid.uuid4()
    real = directory._execute
    calls = {"insert": 0}

    def flaky(query, params, *, read=False):
        if query.startswith("INSERT") and calls["insert"] == 0:
            calls["insert"] += 1
            real(query, params, read=read)  # the write lands ...
            raise RingUnavailable("WriteTimeout: CAS")  # ... but the client never hears so
        return real(query, params, read=read)

    monkeypatch.setattr(directory, "_execute", flaky)
    result = directory.directory_claim(key, "maseru", mine)
    assert result.applied is True
    other = directory.directory_claim(key, "leribe", uuid.uuid4())
    assert other.applied is False and other.existing.home_district == "maseru"
