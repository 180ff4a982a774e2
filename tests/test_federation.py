"""Federation between district nodes (docs/federation.md): signed requests between the real test-cluster nodes over
HTTP and every way a peer request is refused; the peer directory (configuration + ring, rotation); the fan-out
against a real peer, a dead address and a slow stub, with per-peer backoff."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.backoff import BackoffPolicy, PeerBackoff, RetryState, default_backoff
from federation.fanout import FanoutClient
from federation.keys import public_key_pem
from federation.peers import (
    SUSPENDED,
    Peer,
    PeerKey,
    RingEntry,
    get_directory,
    merge,
    own_entry,
    ring_entry_get,
    url_allowed,
)
from federation.signing import SignatureParams, content_digest, signature_base
from tests.borrower_factory import new_national_id, payload
from tests.conftest import wait_for
from tests.federation_helpers import (
    FaultProxy,
    RingDistrict,
    StubPeer,
    manage,
    signed_headers,
    staff_auth,
    unique_district,
)

pytestmark = pytest.mark.cluster
PING = "/_federation/v1/ping"
STATUS = "/_federation/v1/borrowers/status"


def _code(r: requests.Response) -> str:
    return r.json().get("code")


@pytest.fixture(scope="module")
def leribe(test_cluster) -> str:
    base = test_cluster.district("leribe").public_url
    # the node was just reloaded: wait until it answers a signed ping
    wait_for(lambda: requests.get(f"{base}{PING}", headers=signed_headers("GET", f"{base}{PING}"),
                                  timeout=10).status_code == 200, timeout=60, what="leribe to answer a signed ping")
    return base


def ping(base: str, **kw) -> requests.Response:
    return requests.get(f"{base}{PING}", headers=signed_headers("GET", f"{base}{PING}", **kw), timeout=10)


# --- signed requests between real nodes --------------------------------------------------------------
def test_signed_ping_between_two_real_nodes(leribe):
    r = ping(leribe)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["schema"] == 1 and body["district"] == "leribe" and body["origin"] == "maseru"
    assert abs(datetime.fromisoformat(body["time"]).timestamp() - time.time()) < 30


def test_node_pings_its_peers_with_the_command(test_cluster, leribe):
    """`manage.py federation_ping` runs as the maseru node (its config, its key) and signs to both real peers."""
    res = manage(test_cluster, "maseru", "federation_ping", "--timeout", "5")
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert out["partial"] is False and out["missing"] == {}
    assert {d: a["origin"] for d, a in out["answered"].items()} == {"leribe": "maseru", "mohales_hoek": "maseru"}


def test_signed_post_borrower_status_by_key(leribe):
    nid = new_national_id()
    r = requests.post(f"{leribe}/api/v1/borrowers/register",
                      json=payload(national_id=nid, password="Strong-Pass-2026!"), timeout=30)
    assert r.status_code == 201, r.text
    from node.borrowers.identity import borrower_key, normalise_national_id

    key = borrower_key(normalise_national_id(nid))
    for k, registered in ((key, True), ("v1:" + "0" * 64, False)):
        body = json.dumps({"schema": 1, "borrower_key": k}).encode()
        r = requests.post(f"{leribe}{STATUS}", data=body, timeout=10,
                          headers=signed_headers("POST", f"{leribe}{STATUS}", body))
        assert r.status_code == 200, r.text
        assert r.json() == {"schema": 1, "district": "leribe", "borrower_key": k, "registered": registered,
                            "verified": False}
        assert nid not in r.text


@pytest.mark.parametrize(("doc", "status", "code"), [
    ({"schema": 2, "borrower_key": "v1:" + "0" * 64}, 400, "federation_unsupported_schema"),
    ({"schema": 1, "borrower_key": "v1:" + "0" * 64, "national_id": "12345678901"}, 400, "federation_bad_payload"),
    ({"schema": 1, "borrower_key": "12345678901"}, 400, "federation_bad_payload"),
    ({"schema": 1}, 400, "federation_bad_payload"),
])
def test_borrower_status_payload_is_a_strict_versioned_schema(leribe, doc, status, code):
    body = json.dumps(doc).encode()
    r = requests.post(f"{leribe}{STATUS}", data=body, headers=signed_headers("POST", f"{leribe}{STATUS}", body),
                      timeout=10)
    assert (r.status_code, _code(r)) == (status, code), r.text


# --- every refusal: 401 with its stable code ------------------------------------------------------------
def _refused(r: requests.Response, code: str) -> None:
    assert r.status_code == 401, r.text
    assert _code(r) == code, r.text
    assert set(r.json()) == {"code", "message", "details"}


def test_unsigned_and_malformed_requests_are_refused(leribe):
    _refused(requests.get(f"{leribe}{PING}", timeout=10), "federation_signature_missing")
    h = signed_headers("GET", f"{leribe}{PING}")
    h["Signature-Input"] = h["Signature-Input"].replace('"letsema-destination"', "")
    _refused(requests.get(f"{leribe}{PING}", headers=h, timeout=10), "federation_signature_malformed")
    h = signed_headers("GET", f"{leribe}{PING}")
    h["Signature-Input"] = h["Signature-Input"].replace('alg="ed25519"', 'alg="hmac-sha256"')
    _refused(requests.get(f"{leribe}{PING}", headers=h, timeout=10), "federation_signature_malformed")


def test_unknown_key_id_and_unknown_origin(leribe):
    _refused(ping(leribe, key_id="ed25519:999"), "federation_unknown_key")
    _refused(ping(leribe, origin=unique_district(), key=Ed25519PrivateKey.generate()), "federation_unknown_key")


def test_bad_signature(leribe):
    # maseru's key id, someone else's key
    _refused(ping(leribe, key=Ed25519PrivateKey.generate()), "federation_bad_signature")
    # a covered component changed after signing: the path
    h = signed_headers("GET", f"{leribe}{PING}?x=1")
    _refused(requests.get(f"{leribe}{PING}?x=2", headers=h, timeout=10), "federation_bad_signature")


def test_tampered_body(leribe):
    body = json.dumps({"schema": 1, "borrower_key": "v1:" + "a" * 64}).encode()
    h = signed_headers("POST", f"{leribe}{STATUS}", body)
    tampered = body.replace(b"a" * 64, b"b" * 64)
    _refused(requests.post(f"{leribe}{STATUS}", data=tampered, headers=h, timeout=10), "federation_digest_mismatch")
    # a digest recomputed for the new body no longer matches the signature
    h["Content-Digest"] = content_digest(tampered)
    _refused(requests.post(f"{leribe}{STATUS}", data=tampered, headers=h, timeout=10), "federation_bad_signature")


def test_wrong_destination(leribe):
    _refused(ping(leribe, destination="mohales_hoek"), "federation_wrong_destination")


def test_created_outside_the_window(leribe):
    _refused(ping(leribe, created=int(time.time()) - 301 - 5), "federation_request_expired")
    _refused(ping(leribe, created=int(time.time()) + 6 * 60), "federation_request_in_future")
    assert ping(leribe, created=int(time.time()) - 200).status_code == 200  # inside the 300 s window
    assert ping(leribe, created=int(time.time()) + 10).status_code == 200  # inside the 30 s skew


def test_replayed_nonce_is_refused_and_logged(test_cluster, leribe):
    h = signed_headers("GET", f"{leribe}{PING}")
    assert requests.get(f"{leribe}{PING}", headers=h, timeout=10).status_code == 200
    _refused(requests.get(f"{leribe}{PING}", headers=h, timeout=10), "federation_replayed_nonce")
    nonce = h["Signature-Input"].split('nonce="')[1].split('"')[0]
    log = test_cluster.log_dir / "web-leribe.log"

    def logged():
        for line in log.read_text(errors="replace").splitlines()[-400:]:
            if nonce in line and "federation_replayed_nonce" in line:
                return json.loads(line)
        return None

    entry = wait_for(logged, timeout=10, what="the refusal's log line")
    assert entry["message"] == "federation request refused" and entry["origin"] == "maseru"
    assert entry["district"] == "leribe" and entry["level"] == "WARNING"


def _wait_known(base: str, district: str, key_id: str, key: Ed25519PrivateKey) -> requests.Response:
    """The node re-reads the ring on an unknown key at most every 2 s: ask until it knows the new district."""
    def attempt():
        r = ping(base, origin=district, key_id=key_id, key=key)
        return [r] if _code(r) != "federation_unknown_key" else None  # a list: a 401 Response is falsy

    return wait_for(attempt, timeout=20, interval=1.0, what=f"{district} in the node's peer directory")[0]


def test_keys_from_the_ring_with_validity_windows(leribe):
    old, current, future = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = {"ed25519:1": (old, -86400, -60), "ed25519:2": (current, -60, None), "ed25519:3": (future, 3600, None)}
    with RingDistrict(keys) as d:
        r = _wait_known(leribe, d.district, "ed25519:2", current)
        assert r.status_code == 200, r.text
        assert r.json()["origin"] == d.district
        _refused(ping(leribe, origin=d.district, key_id="ed25519:1", key=old), "federation_key_expired")
        _refused(ping(leribe, origin=d.district, key_id="ed25519:3", key=future), "federation_key_not_yet_valid")


def test_suspended_peer_is_refused(leribe):
    key = Ed25519PrivateKey.generate()
    with RingDistrict({"ed25519:1": (key, None, None)}, status=SUSPENDED) as d:
        r = _wait_known(leribe, d.district, "ed25519:1", key)
        _refused(r, "federation_peer_suspended")


def test_valid_inbound_request_resets_that_peers_backoff(settings, client):
    """In-process (this test process is the maseru node): a request signed by leribe clears leribe's backoff."""
    settings.LETSEMA_FEDERATION = {**settings.LETSEMA_FEDERATION,
                                   "redis_prefix": f"letsema:federation:test-{uuid.uuid4().hex[:8]}:"}
    b = default_backoff()
    b.record_failure("leribe", "test")
    assert b.state("leribe").down_at(time.time())
    url = f"http://testserver{PING}"
    r = client.get(PING, headers=signed_headers("GET", url, origin="leribe", destination="maseru"))
    assert r.status_code == 200, r.content
    assert r.json()["origin"] == "leribe"
    assert b.state("leribe") == RetryState()


# --- peer directory ----------------------------------------------------------------------------------
def test_publish_command_writes_this_nodes_entry(test_cluster):
    res = manage(test_cluster, "leribe", "federation_publish")
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    pinned = (test_cluster.keys_dir / "leribe.pub").read_text()
    assert out["district"] == "leribe" and out["status"] == "active"
    assert out["public_url"] == test_cluster.district("leribe").public_url
    assert out["keys"]["ed25519:1"]["public_key_pem"].strip() == pinned.strip()
    assert out["keys"]["ed25519:1"]["not_after"] is None
    entry = ring_entry_get("leribe")
    assert entry is not None and set(entry.keys) == {"ed25519:1"}
    again = manage(test_cluster, "leribe", "federation_publish", "--show")
    assert again.returncode == 0 and json.loads(again.stdout)["keys"] == out["keys"]


def test_rotation_keeps_the_old_key_until_its_not_after():
    now = datetime(2026, 11, 1, tzinfo=UTC)
    k1, k2 = (public_key_pem(Ed25519PrivateKey.generate()) for _ in range(2))
    first = own_entry(None, district="maseru", public_url="https://maseru.example", key_id="ed25519:1", pem=k1,
                      now=now, grace=timedelta(days=7), skew=timedelta(seconds=30))
    assert first.keys["ed25519:1"].not_before == now - timedelta(seconds=30) and first.keys["ed25519:1"].not_after is None
    later = now + timedelta(days=100)
    rotated = own_entry(first, district="maseru", public_url="https://maseru.example", key_id="ed25519:2", pem=k2,
                        now=later, grace=timedelta(days=7))
    assert rotated.keys["ed25519:1"].not_after == later + timedelta(days=7)
    assert rotated.keys["ed25519:1"].validity_at(later + timedelta(days=6)) == "valid"
    assert rotated.keys["ed25519:1"].validity_at(later + timedelta(days=7)) == "expired"
    assert rotated.keys["ed25519:2"].not_after is None
    # publishing again does not move the retired key's not_after
    again = own_entry(rotated, district="maseru", public_url="https://maseru.example", key_id="ed25519:2", pem=k2,
                      now=later + timedelta(days=1), grace=timedelta(days=7))
    assert again.keys["ed25519:1"].not_after == later + timedelta(days=7)


def test_configuration_wins_for_the_districts_it_names():
    pinned, other, added = (public_key_pem(Ed25519PrivateKey.generate()) for _ in range(3))
    t = datetime(2026, 12, 1, tzinfo=UTC)
    configured = {"maseru": Peer("maseru", "http://127.0.0.1:8101", {"ed25519:1": PeerKey("ed25519:1", pinned)})}
    ring = {
        "maseru": RingEntry("maseru", "https://evil.example", {
            "ed25519:1": PeerKey("ed25519:1", pinned, None, t, "ring"),  # same key: the window narrows it
            "ed25519:2": PeerKey("ed25519:2", added, t, None, "ring"),  # a new key id: added
        }, "active"),
        "berea": RingEntry("berea", "https://berea.example", {"ed25519:1": PeerKey("ed25519:1", other)}, "active"),
    }
    merged = merge(configured, ring)
    m = merged["maseru"]
    assert m.public_url == "http://127.0.0.1:8101"
    assert m.keys["ed25519:1"].not_after == t and m.keys["ed25519:1"].public_key_pem == pinned
    assert m.keys["ed25519:2"].public_key_pem == added
    assert merged["berea"].public_url == "https://berea.example" and merged["berea"].source == "ring"
    # a different PEM under the pinned key id is ignored
    ring["maseru"] = RingEntry("maseru", "", {"ed25519:1": PeerKey("ed25519:1", other, None, None, "ring")}, SUSPENDED)
    m = merge(configured, ring)["maseru"]
    assert m.keys["ed25519:1"].public_key_pem == pinned and m.keys["ed25519:1"].not_after is None
    assert not m.active  # the ring may suspend a configured district


def test_plain_http_only_for_local_addresses():
    assert url_allowed("https://leribe.letsema.example")
    assert url_allowed("http://127.0.0.1:8102") and url_allowed("http://127.0.0.13:9")
    assert not url_allowed("http://leribe.letsema.example")
    assert not url_allowed("http://10.0.0.5:8102") and not url_allowed("http://127.0.0.1.evil.example")
    assert not url_allowed("ftp://127.0.0.1")


def test_directory_merges_the_configured_districts(test_cluster):
    d = get_directory()
    assert {"maseru", "leribe", "mohales_hoek"} <= set(d.peers)
    assert {"leribe", "mohales_hoek"} <= {p.district for p in d.fanout_peers("maseru")}
    assert "maseru" not in {p.district for p in d.fanout_peers("maseru")}
    assert d.get("leribe").public_url == test_cluster.district("leribe").public_url


# --- the canonical form --------------------------------------------------------------------------------
def test_signature_base_is_the_documented_string():
    params = SignatureParams(created=1767225600, keyid="ed25519:1", nonce="AAAAAAAAAAAAAAAAAAAAAA")
    base = signature_base(method="POST", path="/_federation/v1/borrowers/status", query="",
                          digest=content_digest(b'{"borrower_key":"v1:00","schema":1}'), origin="maseru",
                          destination="leribe", params=params)
    assert base.decode() == "\n".join([
        '"@method": POST',
        '"@path": /_federation/v1/borrowers/status',
        '"@query": ?',
        '"content-digest": sha-256=:' + content_digest(b'{"borrower_key":"v1:00","schema":1}')[9:],
        '"letsema-origin": maseru',
        '"letsema-destination": leribe',
        ('"@signature-params": ("@method" "@path" "@query" "content-digest" "letsema-origin" "letsema-destination")'
         ';created=1767225600;keyid="ed25519:1";nonce="AAAAAAAAAAAAAAAAAAAAAA";alg="ed25519";tag="letsema-federation-v1"'),
    ])


# --- fan-out and backoff -------------------------------------------------------------------------------
def _client(timeout: float, initial: float = 1.0) -> FanoutClient:
    backoff = PeerBackoff(BackoffPolicy(initial=initial, multiplier=2.0, maximum=30.0),
                          namespace=f"test-{uuid.uuid4().hex[:8]}")
    return FanoutClient(backoff=backoff, timeout=timeout)


def _wait_until(t: float) -> None:
    while time.time() < t:
        time.sleep(min(0.1, max(0.0, t - time.time())))


def test_fanout_real_peer_dead_address_and_slow_stub(leribe):
    real = get_directory().get("leribe")
    dead = Peer(unique_district("dead"), "http://127.0.0.1:1")
    timeout = 1.5
    with StubPeer(unique_district("slow"), mode="slow", delay=2.0) as slow:
        stub = Peer(slow.district, slow.url)
        fc = _client(timeout, initial=3.0)  # down for 2.4-4.2 s: longer than this first call lasts
        t0 = time.monotonic()
        r = fc.request("GET", PING, peers=[real, dead, stub])
        elapsed = time.monotonic() - t0
        assert elapsed < timeout + 0.4, elapsed  # never waits for the slow peer
        assert r.partial is True
        assert set(r.answered) == {"leribe"} and r.answered["leribe"]["origin"] == "maseru"
        assert r.missing == {dead.district: "unreachable", stub.district: "timeout"}
        assert slow.hit_count == 1 and "Signature" in slow.hits[0]["headers"]
        assert slow.hits[0]["headers"]["Letsema-Destination"] == stub.district
        down_dead, down_slow = fc.backoff.state(dead.district), fc.backoff.state(stub.district)
        assert down_dead.failures == 1 and down_slow.failures == 1

        # at once again: both are down and skipped without a request; the call is quick
        t0 = time.monotonic()
        r2 = fc.request("GET", PING, peers=[real, dead, stub])
        assert time.monotonic() - t0 < 0.8
        assert r2.missing == {dead.district: "backoff", stub.district: "backoff"} and "leribe" in r2.answered
        assert slow.hit_count == 1

        # after their retry times: one probe each; the dead one fails again (longer backoff), the stub now answers
        slow.mode = "ok"
        _wait_until(max(down_dead.retry_at, down_slow.retry_at) + 0.05)
        r3 = fc.request("GET", PING, peers=[real, dead, stub])
        assert r3.missing == {dead.district: "unreachable"}
        assert set(r3.answered) == {"leribe", stub.district}
        assert fc.backoff.state(stub.district) == RetryState()  # success resets
        again = fc.backoff.state(dead.district)
        assert again.failures == 2 and again.retry_at - time.time() > 4.0  # 6 s x jitter 0.8-1.4
        fc.backoff.forget([dead.district, stub.district, "leribe"])


def test_a_far_peer_gets_its_own_deadline_and_the_near_ones_keep_theirs():
    """``peer_timeouts`` gives a named (far) peer a longer deadline: two stubs that both answer after 0.6 s — the far
    one is waited for up to 1.2 s and answers, the near one is cut at the default 0.3 s; the call lasts as long as
    the far peer's answer, not its deadline. The deadlines come from LETSEMA_FEDERATION_PEER_TIMEOUTS."""
    from federation.conf import parse_peer_timeouts

    with StubPeer(unique_district("far"), mode="slow", delay=0.6) as far, \
            StubPeer(unique_district("near"), mode="slow", delay=0.6) as near:
        backoff = PeerBackoff(BackoffPolicy(initial=5.0, multiplier=2.0, maximum=30.0),
                              namespace=f"test-{uuid.uuid4().hex[:8]}")
        fc = FanoutClient(backoff=backoff, timeout=0.3, peer_timeouts={far.district: 1.2})
        assert (fc.timeout_for(far.district), fc.timeout_for(near.district)) == (1.2, 0.3)
        t0 = time.monotonic()
        r = fc.request("GET", PING, peers=[Peer(far.district, far.url), Peer(near.district, near.url)])
        elapsed = time.monotonic() - t0
        assert set(r.answered) == {far.district} and r.missing == {near.district: "timeout"}
        assert 0.6 <= elapsed < 1.0, elapsed  # the far answer, not the far deadline (1.2 s)
        assert backoff.state(near.district).failures == 1 and backoff.state(far.district) == RetryState()
        # an explicit deadline for the call overrides every peer's
        backoff.forget([near.district])
        t0 = time.monotonic()
        r = fc.request("GET", PING, peers=[Peer(far.district, far.url)], timeout=0.3)
        assert r.missing == {far.district: "timeout"} and time.monotonic() - t0 < 0.3 + 0.2
        backoff.forget([far.district, near.district])
    assert parse_peer_timeouts("leribe=0.6, mohales_hoek=0.45,") == {"leribe": 0.6, "mohales_hoek": 0.45}
    assert parse_peer_timeouts("") == {}
    for bad in ("leribe", "leribe=fast", "leribe=0", "leribe=11", "=0.5", "le-ribe=0.5"):
        with pytest.raises(ValueError, match="LETSEMA_FEDERATION_PEER_TIMEOUTS"):
            parse_peer_timeouts(bad)


def test_failures_of_calls_already_in_flight_count_once_and_each_failed_probe_doubles_the_wait():
    """Sixteen calls in flight to a peer that stops answering fail together: one outage, one failure (5 s), not
    sixteen (the cap at once: a far peer that only needed new connections was kept away for minutes,
    bench/federation_p1.py). Shared through Redis with a controllable clock, as two processes would see it."""
    import threading

    now = [1_000_000.0]
    policy = BackoffPolicy(initial=5.0, multiplier=2.0, maximum=300.0, jitter=(1.0, 1.0))
    ns = f"test-{uuid.uuid4().hex[:8]}"
    a, b = (PeerBackoff(policy, namespace=ns, clock=lambda: now[0]) for _ in range(2))  # two processes
    barrier = threading.Barrier(16)

    def fail(backoff):
        barrier.wait()
        backoff.record_failure("leribe", "timeout")

    threads = [threading.Thread(target=fail, args=(a if i % 2 else b,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    st = a.state("leribe")
    assert (st.failures, st.retry_at) == (1, now[0] + 5.0)
    now[0] += 3.0  # still down: a late failure of the same outage changes nothing
    assert b.record_failure("leribe", "timeout").failures == 1 and a.state("leribe").retry_at == 1_000_005.0
    now[0] += 2.5  # the retry time has passed: the probe fails, the wait doubles
    assert a.admit("leribe", a.state("leribe"), lease=1.0)
    assert a.record_failure("leribe", "timeout").failures == 2 and b.state("leribe").retry_at == now[0] + 10.0
    a.forget(["leribe"])


def test_fault_proxy_in_front_of_a_real_peer(leribe):
    """The real leribe node behind a TCP fault proxy: passing, slow, resetting, then refusing connections. Each bad
    mode costs the caller at most its timeout, names the district, and marks it down; passing again resets it."""
    real = get_directory().get("leribe")
    host, port = real.public_url.removeprefix("http://").split(":")
    with FaultProxy((host, int(port))) as proxy:
        via = Peer("leribe", proxy.url, real.keys)  # signed for leribe: the real node verifies what passes through
        fc = _client(0.8, initial=0.5)
        ok = fc.request("GET", PING, peers=[via])
        assert not ok.partial and ok.answered["leribe"]["district"] == "leribe", ok.missing

        for mode, reason in (("delay", "timeout"), ("reset", "unreachable")):
            proxy.mode = mode
            fc.backoff.forget(["leribe"])
            t0 = time.monotonic()
            r = fc.request("GET", PING, peers=[via])
            assert time.monotonic() - t0 < 0.8 + 0.4
            assert r.partial and r.missing == {"leribe": reason} and not r.answered
            assert fc.backoff.state("leribe").failures == 1
            skipped = fc.request("GET", PING, peers=[via])  # down now: skipped without a connection
            assert skipped.missing == {"leribe": "backoff"}

        # flaky: it comes back; after the retry time one probe passes and resets the state
        proxy.mode = "pass"
        _wait_until(fc.backoff.state("leribe").retry_at + 0.05)
        back = fc.request("GET", PING, peers=[via])
        assert "leribe" in back.answered and fc.backoff.state("leribe") == RetryState()

        proxy.refuse()
        r = fc.request("GET", PING, peers=[via])
        assert r.missing == {"leribe": "unreachable"}
        fc.backoff.forget(["leribe"])


def test_a_peer_connection_is_reused_by_whichever_thread_of_the_pool_calls_next(leribe):
    """The fan-out's threads share one connection pool per peer: 30 look-ups over the two real peers (each behind a
    proxy that counts connections) open one connection to each, not one per thread that happened to call it. A
    peer 150 ms away cannot afford a new connection inside the 0.3 s deadline (bench/federation_wan.py: with a pool
    per thread a third of the look-ups missed it)."""
    directory = get_directory()
    proxies, peers = [], []
    try:
        for code in ("leribe", "mohales_hoek"):
            real = directory.get(code)
            host, port = real.public_url.removeprefix("http://").split(":")
            proxy = FaultProxy((host, int(port))).__enter__()
            proxies.append(proxy)
            peers.append(Peer(code, proxy.url, real.keys))
        fc = _client(5.0)
        for _ in range(30):
            r = fc.request("GET", PING, peers=peers)
            assert not r.partial, r.missing
        assert [p.connections for p in proxies] == [1, 1]
    finally:
        for proxy in proxies:
            proxy.__exit__(None, None, None)


def test_a_far_peer_whose_new_connection_misses_the_deadline_is_reached_by_the_next_probe(leribe):
    """leribe 0.5 s away (a latency proxy), a 0.75 s deadline: a new connection needs two round trips (1 s) and
    misses it, but the request finishes in its pool thread and the connection is kept, so the probe after the retry
    time answers on it (0.5 s) and clears the backoff. (Before, the thread gave up at the deadline with the caller:
    every probe opened a new connection and missed again — a far peer was never reached: bench/federation_wan.py.)
    The caller never waits past its deadline."""
    real = get_directory().get("leribe")
    host, port = real.public_url.removeprefix("http://").split(":")
    with FaultProxy((host, int(port)), mode="latency", rtt=0.5) as proxy:
        via = Peer("leribe", proxy.url, real.keys)
        fc = _client(0.75, initial=0.5)
        t0 = time.monotonic()
        first = fc.request("GET", PING, peers=[via])
        assert time.monotonic() - t0 < 0.75 + 0.2
        assert first.missing == {"leribe": "timeout"} and fc.backoff.state("leribe").failures == 1
        _wait_until(max(fc.backoff.state("leribe").retry_at, time.time() + 1.5))  # the thread has finished by then
        probe = fc.request("GET", PING, peers=[via])
        assert probe.answered["leribe"]["district"] == "leribe", probe.missing
        assert fc.backoff.state("leribe") == RetryState() and proxy.connections == 1


def test_fanout_4xx_does_not_mark_a_peer_down():
    with StubPeer(unique_district("nf"), mode="404") as nf:
        fc = _client(1.0)
        peer = Peer(nf.district, nf.url)
        for n in (1, 2):
            r = fc.request("GET", PING, peers=[peer])
            assert r.partial and r.missing == {nf.district: "http_404"}
            assert nf.hit_count == n  # asked again: not skipped
            assert fc.backoff.state(nf.district) == RetryState()


def test_fanout_401_and_429_mark_a_peer_down():
    with StubPeer(unique_district("unauth"), mode="401") as unauth, \
            StubPeer(unique_district("busy"), mode="429", retry_after=20) as busy:
        fc = _client(1.0)
        peers = [Peer(unauth.district, unauth.url), Peer(busy.district, busy.url)]
        r = fc.request("GET", PING, peers=peers)
        assert r.missing == {unauth.district: "http_401", busy.district: "http_429"}
        assert fc.backoff.state(unauth.district).failures == 1
        assert fc.backoff.state(busy.district).retry_at - time.time() > 19  # Retry-After honoured
        r = fc.request("GET", PING, peers=peers)
        assert r.missing == {unauth.district: "backoff", busy.district: "backoff"}
        assert unauth.hit_count == 1 and busy.hit_count == 1
        fc.backoff.forget([unauth.district, busy.district])


def test_fanout_refuses_plain_http_to_remote_hosts():
    fc = _client(0.5)
    r = fc.request("GET", PING, peers=[Peer("remote_plain", "http://leribe.letsema.example")])
    assert r.missing == {"remote_plain": "insecure_url"}


def test_backoff_policy_is_exponential_jittered_and_capped():
    p = BackoffPolicy(initial=5.0, multiplier=2.0, maximum=300.0, jitter=(0.8, 1.4))
    for n, base in ((1, 5.0), (2, 10.0), (3, 20.0), (5, 80.0)):
        samples = [p.interval(n) for _ in range(200)]
        assert base * 0.8 <= min(samples) and max(samples) <= base * 1.4
        assert max(samples) - min(samples) > 0  # jittered
    assert max(p.interval(20) for _ in range(50)) <= 300.0


# --- the staff look-up, end to end on the real nodes ---------------------------------------------------
def test_where_is_a_borrower_fans_out_from_a_real_node(test_cluster, leribe, node_url):
    nid = new_national_id()
    r = requests.post(f"{leribe}/api/v1/borrowers/register",
                      json=payload(national_id=nid, password="Strong-Pass-2026!"), timeout=30)
    assert r.status_code == 201, r.text
    from node.borrowers.identity import borrower_key, normalise_national_id

    key = borrower_key(normalise_national_id(nid))
    base = node_url("maseru")
    auth = staff_auth(test_cluster, "maseru")

    def where():
        resp = requests.get(f"{base}/api/v1/network/borrowers/{key}/where", headers=auth, timeout=20)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        return body if not body["partial"] else None

    body = wait_for(where, timeout=30, interval=1.0, what="an answer from every peer")
    assert body["registered_in"] == ["leribe"] and body["missing"] == {}
    assert body["answered"] == {"leribe": {"registered": True, "verified": False},
                                "maseru": {"registered": False, "verified": False},
                                "mohales_hoek": {"registered": False, "verified": False}}
    assert nid not in json.dumps(body)
    bad = requests.get(f"{base}/api/v1/network/borrowers/{nid}/where", headers=auth, timeout=20)
    assert (bad.status_code, _code(bad)) == (400, "validation_error")
    anon = requests.get(f"{base}/api/v1/network/borrowers/{key}/where", timeout=20)
    assert anon.status_code == 401
