"""A borrower registered at one district signs in and applies at another (node/peers/services.py), on the real
test-cluster nodes over HTTP: the visiting node asks the home node over the signed channel, never sees more than the
shared profile, and the borrower's credit history is the same wherever they sign in."""

from __future__ import annotations

import pytest
import requests

from tests.borrower_factory import new_national_id, payload
from tests.conftest import wait_for
from tests.federation_helpers import manage, staff_auth
from tests.loan_fixtures import PRODUCT

pytestmark = pytest.mark.cluster
PASSWORD = "Strong-Pass-2026!"


def _home_borrower(base: str) -> tuple[str, dict, dict]:
    """Register at ``base`` (self-service), sign in there, give consent. Returns national ID, auth header, body."""
    nid = new_national_id()
    data = payload(national_id=nid, password=PASSWORD)
    r = requests.post(f"{base}/api/v1/borrowers/register", json=data, timeout=30)
    assert r.status_code == 201, r.text
    tok = requests.post(f"{base}/api/v1/auth/token/", json={"username": data["phone"], "password": PASSWORD}, timeout=30)
    assert tok.status_code == 200, tok.text
    auth = {"Authorization": f"Bearer {tok.json()['access']}"}
    c = requests.post(f"{base}/api/v1/borrowers/{r.json()['id']}/consents/", json={"version": 1, "language": "en"},
                      headers=auth, timeout=30)
    assert c.status_code == 201, c.text
    return nid, auth, r.json()


def _visit(base: str, nid: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(f"{base}/api/v1/auth/visitor/token", json={"national_id": nid, "password": password},
                         timeout=30)


def _apply_at_maseru(test_cluster, maseru: str, visitor: dict, principal: str) -> tuple[dict, requests.Response]:
    """A new Maseru MFI with a product, and the visitor's application to it: (the MFI admin's header, the answer)."""
    admin = staff_auth(test_cluster, "maseru")
    product = requests.post(f"{maseru}/api/v1/products/", json=PRODUCT, headers=admin, timeout=30)
    assert product.status_code == 201, product.text
    applied = requests.post(f"{maseru}/api/v1/loans/", headers=visitor, timeout=30, json={
        "product": product.json()["id"], "principal": principal, "number_of_repayments": 6,
        "expected_disbursement_date": "2026-12-15", "purpose": "school fees"})
    assert applied.status_code == 201, applied.text
    return admin, applied


def test_borrower_of_leribe_signs_in_and_applies_at_maseru(test_cluster, node_url):
    leribe, maseru = node_url("leribe"), node_url("maseru")
    nid, home_auth, registered = _home_borrower(leribe)

    wrong = _visit(maseru, nid, "not-the-password")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_credentials"), wrong.text
    r = _visit(maseru, nid)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["role"] == "borrower" and body["district"] == "maseru" and body["home_district"] == "leribe"
    visitor = {"Authorization": f"Bearer {body['access']}"}
    me = requests.get(f"{maseru}/api/v1/me/", headers=visitor, timeout=30)
    assert me.status_code == 200 and me.json()["role"] == "borrower", me.text

    # an MFI of Maseru with a product; the visitor applies to it like a local borrower
    admin, applied = _apply_at_maseru(test_cluster, maseru, visitor, "4000.00")

    # the same history at home and at the visited node (loan events reach the ring through Maseru's outbox)
    def history(base, auth):
        h = requests.get(f"{base}/api/v1/me/credit-history", headers=auth, timeout=30)
        assert h.status_code == 200, h.text
        lines = [x for x in h.json()["loans"] if x["district"] == "maseru"]
        return h.json() if lines else None

    at_home = wait_for(lambda: history(leribe, home_auth), timeout=60, interval=1, what="the application in the ring")
    at_maseru = history(maseru, visitor)
    assert at_home["loans"] == at_maseru["loans"]
    assert at_home["borrower_key"] == at_maseru["borrower_key"]
    [line] = at_home["loans"]
    assert line["district"] == "maseru" and line["principal"] == "4000.00"
    assert at_maseru["home_district"] == "leribe" and at_home["home_district"] is None

    # Maseru holds the shared profile and a consent copied from home, never the national ID
    out = manage(test_cluster, "maseru", "shell", "-c", (
        "from node.borrowers.models import Borrower; "
        f"b = Borrower.objects.get(borrower_key='{at_home['borrower_key']}'); "
        "print(repr(b.national_id), b.home_district, b.first_name, b.consents.filter(withdrawn_at=None).count())"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1].split() == ["None", "leribe", registered["first_name"], "1"]
    assert nid not in out.stdout

    # the network still says the borrower is registered at Leribe only (Maseru's copy is a visitor's)
    where = requests.get(f"{maseru}/api/v1/network/borrowers/{at_home['borrower_key']}/where", headers=admin,
                         timeout=30)
    assert where.status_code == 200, where.text
    assert where.json()["answered"]["maseru"]["registered"] is False
    assert "maseru" not in where.json()["registered_in"]

    # signing in again refreshes the same visitor record (no second borrower)
    again = _visit(maseru, nid)
    assert again.status_code == 200
    count = manage(test_cluster, "maseru", "shell", "-c", (
        "from node.borrowers.models import Borrower; "
        f"print(Borrower.objects.filter(borrower_key='{at_home['borrower_key']}').count())"))
    assert count.stdout.strip().splitlines()[-1] == "1"


def test_home_node_locks_federated_sign_in_after_repeated_failures(node_url):
    leribe, mohales = node_url("leribe"), node_url("mohales_hoek")
    nid, _, _ = _home_borrower(leribe)
    for _ in range(5):
        r = _visit(mohales, nid, "guess-guess-guess")
        assert (r.status_code, r.json()["code"]) == (401, "invalid_credentials"), r.text
    locked = _visit(mohales, nid)  # now even the right password is not checked
    assert (locked.status_code, locked.json()["code"]) == (401, "invalid_credentials"), locked.text
    # the borrower's own node still lets them in directly (the lock is on federated sign-ins only)
    assert _visit(leribe, nid).status_code == 200


def test_unknown_national_id_and_bad_input(node_url):
    maseru = node_url("maseru")
    r = _visit(maseru, new_national_id())
    assert (r.status_code, r.json()["code"]) == (401, "invalid_credentials")
    bad = requests.post(f"{maseru}/api/v1/auth/visitor/token", json={"national_id": "x"}, timeout=30)
    assert (bad.status_code, bad.json()["code"]) == (400, "validation_error"), bad.text


def test_a_dispute_filed_at_home_reaches_the_lender_in_another_district(test_cluster, node_url):
    """A borrower of Leribe disputes, at Leribe, a loan of a Maseru MFI: the dispute is opened on Maseru's node over
    the signed channel, Maseru's staff answer it there, and Leribe's history shows the flag and then the answer."""
    leribe, maseru = node_url("leribe"), node_url("maseru")
    nid, home_auth, _ = _home_borrower(leribe)
    visitor = {"Authorization": f"Bearer {_visit(maseru, nid).json()['access']}"}
    admin, applied = _apply_at_maseru(test_cluster, maseru, visitor, "3000.00")
    loan_key = f"maseru/{applied.json()['reference']}"

    def history(want):
        h = requests.get(f"{leribe}/api/v1/me/credit-history", headers=home_auth, timeout=30)
        assert h.status_code == 200, h.text
        return h.json() if want(h.json()) else None

    wait_for(lambda: history(lambda b: [x for x in b["loans"] if x["loan_key"] == loan_key]), 60, interval=1,
             what="the Maseru application in the borrower's history")
    disputes = f"{leribe}/api/v1/me/credit-history/disputes"
    filed = requests.post(disputes, headers=home_auth, timeout=30,
                          json={"loan_key": loan_key, "reason": "wrong_amount", "details": "I asked for 2,000."})
    assert filed.status_code == 201, filed.text
    assert filed.json()["lender_district"] == "maseru" and filed.json()["status"] == "open"
    dispute_id = filed.json()["dispute_id"]
    # the lender's refusal travels back with its own code
    again = requests.post(disputes, headers=home_auth, timeout=30, json={"loan_key": loan_key, "reason": "other",
                                                                         "details": "again"})
    assert (again.status_code, again.json()["code"]) == (409, "dispute_already_open"), again.text

    [listed] = requests.get(f"{maseru}/api/v1/credit/disputes", headers=admin, timeout=30).json()
    assert (listed["dispute_id"], listed["filed_at_district"], listed["details"]) == (
        dispute_id, "leribe", "I asked for 2,000.")
    flagged = wait_for(lambda: history(lambda b: b["summary"]["disputed_loans"] == 1), 60, interval=1,
                       what="the dispute in the ring")
    assert next(x for x in flagged["loans"] if x["loan_key"] == loan_key)["under_dispute"] is True

    answer = requests.post(f"{maseru}/api/v1/credit/disputes/{dispute_id}/resolve", headers=admin, timeout=30,
                           json={"outcome": "corrected", "note": "The application was keyed wrong; corrected."})
    assert answer.status_code == 200, answer.text
    done = wait_for(lambda: history(lambda b: [d["status"] for d in b["disputes"]] == ["corrected"]), 60,
                    interval=1, what="the lender's answer in the ring")
    assert done["summary"]["disputed_loans"] == 0
