"""MFI tenancy: onboarding, staff management without escalation, and the IDOR sweep — another MFI's object
answers exactly like a missing one and nothing of it changes."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from node.audit.models import AuditEvent
from node.borrowers.models import Borrower, Consent, KycDocument, PhoneOtp
from node.mfis.models import Mfi
from node.users.models import Role, User
from tests.borrower_factory import PDF, payload

from tests.factories import PASSWORD, client_for
from tests.factories import make_user as user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _files(tmp_path, settings):
    settings.SMS_FILE_PATH = tmp_path / "sms.jsonl"
    settings.KYC_STORAGE_DIR = tmp_path / "kyc"




def assert_error(r, status, code):
    assert r.status_code == status, (r.status_code, r.content)
    assert r.json()["code"] == code, r.json()
    return r.json()


# --- onboarding ----------------------------------------------------------------------------------
ONBOARD = {
    "code": "tsepo-finance", "name": "Tsepo Finance", "registration_number": "CBL/MFI/0042",
    "interest_rate_cap": "48.5", "admin_username": "tsepo.admin", "admin_first_name": "Tsepo",
    "admin_last_name": "Mohapi", "admin_email": "admin@tsepo.example",
}


def test_letsema_admin_onboards_mfi_with_first_admin_in_one_step():
    c = client_for(user(Role.LETSEMA_ADMIN))
    r = c.post("/api/v1/mfis/", ONBOARD, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["interest_rate_cap"] == "48.5000" and body["home_district"] == "maseru"
    temp = body["admin"]["temporary_password"]
    assert temp and len(temp) >= 12
    mfi = Mfi.objects.get(code="tsepo-finance")
    admin = User.objects.get(username="tsepo.admin")
    assert admin.role == Role.MFI_ADMIN and admin.mfi == mfi and admin.check_password(temp)
    assert AuditEvent.objects.filter(action="mfi.onboard", target_id=str(mfi.pk)).exists()
    # one step means all or nothing: a taken admin username leaves no MFI behind
    r = c.post("/api/v1/mfis/", {**ONBOARD, "code": "other-mfi"}, format="json")
    assert_error(r, 409, "username_taken")
    assert not Mfi.objects.filter(code="other-mfi").exists()


def test_onboarding_errors():
    c = client_for(user(Role.LETSEMA_ADMIN))
    assert_error(c.post("/api/v1/mfis/", {**ONBOARD, "home_district": "leribe"}, format="json"), 400, "wrong_home_node")
    assert_error(c.post("/api/v1/mfis/", {**ONBOARD, "interest_rate_cap": 48.5}, format="json"), 400, "validation_error")
    assert_error(c.post("/api/v1/mfis/", {**ONBOARD, "interest_rate_cap": "0"}, format="json"), 400, "validation_error")
    assert_error(c.post("/api/v1/mfis/", {**ONBOARD, "admin_password": "password123"}, format="json"), 400, "validation_error")
    assert Mfi.objects.count() == 0 and not User.objects.filter(username="tsepo.admin").exists()


def test_onboard_mfi_command(capsys):
    call_command("onboard_mfi", "--code", "cmd-mfi", "--name", "Command MFI", "--registration-number", "R-1",
                 "--rate-cap", "60", "--admin-username", "cmd.admin", "--admin-first-name", "C",
                 "--admin-last-name", "Admin")
    out = capsys.readouterr().out
    assert "onboarded cmd-mfi" in out and "temporary password" in out
    assert Mfi.objects.get(code="cmd-mfi").interest_rate_cap == Decimal("60")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="mfi_exists"):
        call_command("onboard_mfi", "--code", "cmd-mfi", "--name", "X", "--registration-number", "R-2",
                     "--rate-cap", "60", "--admin-username", "x.admin", "--admin-first-name", "X",
                     "--admin-last-name", "Y")


# --- staff management ----------------------------------------------------------------------------
@pytest.fixture
def two_mfis():
    return (Mfi.objects.create(code="mfi-a", name="A", home_district="maseru"),
            Mfi.objects.create(code="mfi-b", name="B", home_district="maseru"))


def test_mfi_admin_manages_own_staff_only(two_mfis):
    a, b = two_mfis
    admin_a = user(Role.MFI_ADMIN, a)
    c = client_for(admin_a)
    r = c.post("/api/v1/staff/", {"username": "new.officer", "first_name": "N", "last_name": "O",
                                  "role": "loan_officer", "password": PASSWORD, "mfi": "mfi-b"}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["mfi"] == "mfi-a", "an MFI admin's staff always join the admin's own MFI"
    officer = User.objects.get(username="new.officer")
    assert c.patch(f"/api/v1/staff/{officer.pk}/", {"role": "analyst"}, format="json").json()["role"] == "analyst"
    assert c.patch(f"/api/v1/staff/{officer.pk}/", {"is_active": False}, format="json").json()["is_active"] is False
    assert {u["username"] for u in c.get("/api/v1/staff/").json()} == {admin_a.username, "new.officer"}


@pytest.mark.parametrize("role", ["letsema_admin", "operator"])
def test_mfi_admin_cannot_grant_network_roles(two_mfis, role):
    admin_a = user(Role.MFI_ADMIN, two_mfis[0])
    r = client_for(admin_a).post("/api/v1/staff/", {"username": "x.y", "first_name": "X", "last_name": "Y",
                                                      "role": role, "password": PASSWORD}, format="json")
    assert_error(r, 403, "role_not_assignable")
    officer = user(Role.LOAN_OFFICER, two_mfis[0])
    assert_error(client_for(admin_a).patch(f"/api/v1/staff/{officer.pk}/", {"role": role}, format="json"),
                 403, "role_not_assignable")
    assert User.objects.get(pk=officer.pk).role == Role.LOAN_OFFICER


def test_nobody_changes_their_own_role_or_status(two_mfis):
    for actor in (user(Role.MFI_ADMIN, two_mfis[0]), user(Role.LETSEMA_ADMIN)):
        for change in ({"role": "letsema_admin"}, {"role": "analyst"}, {"is_active": False}):
            r = client_for(actor).patch(f"/api/v1/staff/{actor.pk}/", change, format="json")
            assert_error(r, 403, "self_modification_forbidden")
        actor.refresh_from_db()
        assert actor.is_active


def test_other_roles_cannot_manage_staff(two_mfis):
    for role in (Role.LOAN_OFFICER, Role.ANALYST, Role.BORROWER, Role.OPERATOR):
        u = user(role, two_mfis[0] if role in (Role.LOAN_OFFICER, Role.ANALYST) else None)
        assert_error(client_for(u).get("/api/v1/staff/"), 403, "permission_denied")
        r = client_for(u).post("/api/v1/staff/", {"username": "sneaky", "first_name": "S", "last_name": "N",
                                                  "role": "letsema_admin", "password": PASSWORD}, format="json")
        assert_error(r, 403, "permission_denied")
    assert not User.objects.filter(username="sneaky").exists()


def test_me_cannot_change_role():
    u = user(Role.BORROWER)
    r = client_for(u).patch("/api/v1/me/", {"role": "letsema_admin"}, format="json")
    assert r.status_code == 405
    u.refresh_from_db()
    assert u.role == Role.BORROWER


# --- the IDOR sweep ------------------------------------------------------------------------------
MISSING_ID = 987654321


@pytest.fixture
def world(two_mfis):
    a, b = two_mfis
    officer_b = user(Role.LOAN_OFFICER, b)
    cb = client_for(officer_b)
    bid = cb.post("/api/v1/borrowers/", payload(), format="json").json()["id"]
    doc = cb.post(f"/api/v1/borrowers/{bid}/documents/",
                  {"doc_type": "id_copy", "file": SimpleUploadedFile("id.pdf", PDF)}, format="multipart").json()["id"]
    cb.post(f"/api/v1/borrowers/{bid}/consents/", {"version": 1, "language": "en"}, format="json")
    cb.post(f"/api/v1/borrowers/{bid}/phone/otp")
    officer_a = user(Role.LOAN_OFFICER, a)
    own_bid = client_for(officer_a).post("/api/v1/borrowers/", payload(), format="json").json()["id"]
    self_reg = payload(password=PASSWORD)
    APIClient().post("/api/v1/borrowers/register", self_reg, format="json")
    actors = {
        "loan_officer": officer_a,
        "mfi_admin": user(Role.MFI_ADMIN, a),
        "analyst": user(Role.ANALYST, a),
        "borrower": User.objects.get(username=self_reg["phone"]),
    }
    return {"borrower_b": bid, "doc_b": doc, "staff_b": officer_b.pk, "own_borrower_a": own_bid, "actors": actors}


def _requests(foreign: dict, own_borrower: int):
    """(method, path, body) for every object endpoint; the path is filled with foreign or missing ids."""
    b, d, s = foreign["borrower"], foreign["doc"], foreign["staff"]
    return [
        ("get", f"/api/v1/borrowers/{b}/", None),
        ("patch", f"/api/v1/borrowers/{b}/", {"address": "Hacked"}),
        ("delete", f"/api/v1/borrowers/{b}/", None),
        ("post", f"/api/v1/borrowers/{b}/phone/otp", None),
        ("post", f"/api/v1/borrowers/{b}/phone/verify", {"code": "123456"}),
        ("get", f"/api/v1/borrowers/{b}/documents/", None),
        ("post", f"/api/v1/borrowers/{b}/documents/", "FILE"),
        ("get", f"/api/v1/borrowers/{b}/documents/{d}/content?reason=curiosity", None),
        ("get", f"/api/v1/borrowers/{own_borrower}/documents/{d}/content?reason=curiosity", None),
        ("post", f"/api/v1/borrowers/{b}/verify", {"method": "id_document_in_branch"}),
        ("get", f"/api/v1/borrowers/{b}/consents/", None),
        ("post", f"/api/v1/borrowers/{b}/consents/", {"version": 1, "language": "en"}),
        ("post", f"/api/v1/borrowers/{b}/consents/withdraw", None),
        ("get", f"/api/v1/borrowers/{b}/network", None),
        ("get", f"/api/v1/staff/{s}/", None),
        ("patch", f"/api/v1/staff/{s}/", {"is_active": False}),
        ("delete", f"/api/v1/staff/{s}/", None),
    ]


def _send(c, method, path, body):
    if body == "FILE":
        return c.post(path, {"doc_type": "payslip", "file": SimpleUploadedFile("p.pdf", PDF)}, format="multipart")
    if body is None:
        return getattr(c, method)(path)
    return getattr(c, method)(path, body, format="json")


def _state(borrower_id):
    b = Borrower.objects.get(pk=borrower_id)
    return (
        {f.name: getattr(b, f.name) for f in Borrower._meta.concrete_fields},
        KycDocument.objects.filter(borrower=b).count(),
        list(Consent.objects.filter(borrower=b).values_list("withdrawn_at", flat=True)),
        list(PhoneOtp.objects.filter(borrower=b).values_list("attempts", "superseded")),
    )


@pytest.mark.parametrize("role", ["loan_officer", "mfi_admin", "analyst", "borrower"])
def test_idor_sweep(world, role):
    actor = world["actors"][role]
    c = client_for(actor)
    own = world["own_borrower_a"] if role != "borrower" else Borrower.objects.get(user=actor).pk
    before = _state(world["borrower_b"])
    staff_before = User.objects.filter(pk=world["staff_b"]).values("is_active", "role").get()
    denied_before = AuditEvent.objects.filter(action="access.denied", actor=actor).count()

    foreign = _requests({"borrower": world["borrower_b"], "doc": world["doc_b"], "staff": world["staff_b"]}, own)
    missing = _requests({"borrower": MISSING_ID, "doc": str(uuid.uuid4()), "staff": MISSING_ID}, own)
    checked = 0
    for (method, fpath, body), (_, mpath, _) in zip(foreign, missing, strict=True):
        rf, rm = _send(c, method, fpath, body), _send(c, method, mpath, body)
        assert rf.status_code == rm.status_code, (role, method, fpath, rf.status_code, rm.status_code, rf.content)
        assert rf.status_code in (403, 404, 405), (role, method, fpath, rf.status_code, rf.content)
        assert rf.json() == rm.json(), (role, method, fpath, rf.json(), rm.json())
        checked += 1
    assert checked == len(foreign)
    assert _state(world["borrower_b"]) == before, "MFI B's borrower changed"
    assert User.objects.filter(pk=world["staff_b"]).values("is_active", "role").get() == staff_before
    assert AuditEvent.objects.filter(action="access.denied", actor=actor).count() > denied_before
