"""District configuration: every bad field stops the node with one clear line naming file and field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.district import DEFAULT_CONFIG_DIR, DistrictConfigError, all_codes, load_file

REPO = Path(__file__).resolve().parent.parent
GOOD = (DEFAULT_CONFIG_DIR / "maseru.toml").read_text()


def test_shipped_configs_are_valid():
    codes = all_codes(DEFAULT_CONFIG_DIR)
    assert len(codes) >= 3
    for code in codes:
        cfg = load_file(DEFAULT_CONFIG_DIR / f"{code}.toml")
        assert cfg.code == code
        assert cfg.mfis, f"{code} hosts no MFI"
    ports = [load_file(DEFAULT_CONFIG_DIR / f"{c}.toml").port for c in codes]
    assert len(set(ports)) == len(ports), "two districts share a node port"


BAD = [
    # (description, transform of the good text, expected field, expected words)
    ("unknown key", lambda t: t.replace('country = "LS"', 'country = "LS"\ncolour = "blue"'), "district.colour", "unknown key"),
    ("unknown section", lambda t: t + '\n[extras]\nx = 1\n', "extras", "unknown key"),
    ("missing key", lambda t: t.replace('name = "letsema_maseru"\n', ""), "postgres.name", "missing required key"),
    ("missing section", lambda t: t.replace("[redis]", "").replace('url = "redis://127.0.0.1:6390/1"', ""), "redis", "missing required section"),
    ("wrong type", lambda t: t.replace("port = 5501", 'port = "5501"'), "postgres.port", "expected integer, got string"),
    ("bool for int", lambda t: t.replace("port = 8101", "port = true"), "node.port", "expected integer, got boolean"),
    ("list of strings", lambda t: t.replace('contact_points = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]', "contact_points = [1, 2]"), "cassandra.contact_points", "expected list of strings"),
    ("port range", lambda t: t.replace("port = 8101", "port = 70000"), "node.port", "outside 1..65535"),
    ("currency", lambda t: t.replace('currency = "LSL"', 'currency = "USD"'), "district.currency", "is not one of"),
    ("timezone", lambda t: t.replace('timezone = "Africa/Maseru"', 'timezone = "Mars/Olympus"'), "district.timezone", "unknown time zone"),
    ("code mismatch", lambda t: t.replace('code = "maseru"', 'code = "leribe"'), "district.code", "does not match the file name"),
    ("replication factor", lambda t: t.replace("replication_factor = 3", "replication_factor = 0"), "cassandra.replication_factor", "between 1 and 5"),
    ("redis url", lambda t: t.replace('url = "redis://127.0.0.1:6390/1"', 'url = "http://x"'), "redis.url", "redis://"),
    ("mfi wrong type", lambda t: t.replace('code = "lesotho-pioneer"', "code = 7"), "mfis[0].code", "expected string, got integer"),
    ("duplicate mfi", lambda t: t.replace('code = "maluti-credit"', 'code = "lesotho-pioneer"'), "mfis[1].code", "duplicate MFI code"),
    ("syntax", lambda t: t.replace('name = "Maseru"', "name = Maseru"), "(syntax)", "invalid TOML"),
    ("key id", lambda t: t.replace('key_id = "ed25519:1"', 'key_id = "rsa:1"'), "node.key_id", "ed25519"),
]


@pytest.mark.parametrize("desc,transform,field,words", BAD, ids=[b[0] for b in BAD])
def test_bad_field_is_named(tmp_path, desc, transform, field, words):
    text = transform(GOOD)
    assert text != GOOD, f"transform for {desc!r} did not change anything"
    path = tmp_path / "maseru.toml"
    path.write_text(text)
    with pytest.raises(DistrictConfigError) as err:
        load_file(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}: "), message
    assert words in message


def test_missing_file(tmp_path):
    with pytest.raises(DistrictConfigError) as err:
        load_file(tmp_path / "nowhere.toml")
    assert str(err.value) == f"{tmp_path / 'nowhere.toml'}: (file): file not found"


def _run_node(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETSEMA_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "check"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_node_stops_with_one_line_on_bad_config(tmp_path):
    (tmp_path / "maseru.toml").write_text(GOOD.replace("port = 5501", 'port = "fifty"'))
    res = _run_node({"LETSEMA_DISTRICT": "maseru", "LETSEMA_DISTRICT_CONFIG_DIR": str(tmp_path)})
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert lines[0] == (
        f"letsema: configuration error: {tmp_path / 'maseru.toml'}: postgres.port: expected integer, got string"
    )


def test_node_stops_with_one_line_on_missing_file(tmp_path):
    res = _run_node({"LETSEMA_DISTRICT": "quthing", "LETSEMA_DISTRICT_CONFIG_DIR": str(tmp_path)})
    assert res.returncode == 2
    assert res.stderr.strip() == f"letsema: configuration error: {tmp_path / 'quthing.toml'}: (file): file not found"


def test_node_stops_when_district_not_set():
    res = _run_node({})
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "letsema: configuration error: LETSEMA_DISTRICT: (environment): not set; name a file in district_configs/"
    ]


def test_node_stops_when_a_secret_is_missing(tmp_path):
    res = _run_node({"LETSEMA_DISTRICT": "maseru", "LETSEMA_SECRETS_DIR": str(tmp_path)})
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "secret 'django_secret_key' is missing" in res.stderr
    assert "Traceback" not in res.stderr


def test_environment_overrides_are_validated(tmp_path, monkeypatch):
    path = tmp_path / "maseru.toml"
    path.write_text(GOOD)
    monkeypatch.setenv("LETSEMA_CONFIG__postgres__host", "pg-maseru")
    monkeypatch.setenv("LETSEMA_CONFIG__cassandra__contact_points", '["cassandra1", "cassandra2"]')
    monkeypatch.setenv("LETSEMA_CONFIG__node__port", "8000")
    cfg = load_file(path)
    assert (cfg.pg_host, cfg.cassandra_contact_points, cfg.port) == ("pg-maseru", ("cassandra1", "cassandra2"), 8000)
    monkeypatch.setenv("LETSEMA_CONFIG__node__port", "eighty")
    with pytest.raises(DistrictConfigError, match=r"node\.port: expected integer, got string"):
        load_file(path)
    monkeypatch.delenv("LETSEMA_CONFIG__node__port")
    monkeypatch.setenv("LETSEMA_CONFIG__node__colour", "blue")
    with pytest.raises(DistrictConfigError, match=r"node\.colour: unknown key"):
        load_file(path)


def test_reset_of_the_demo_keeps_the_test_clusters_data(tmp_path):
    """``./letsema reset`` wipes the demo's var/ but not var/test inside it (the test cluster, the benches' books)."""
    from cluster.commands import wipe
    from cluster.profiles import DEMO, PROFILES, TEST

    assert {q.var_dir for q in PROFILES.values() if DEMO.var_dir in q.var_dir.parents} == {TEST.var_dir}
    assert {q.var_dir for q in PROFILES.values() if TEST.var_dir in q.var_dir.parents} == set()
    (tmp_path / "pg" / "maseru").mkdir(parents=True)
    (tmp_path / "test" / "pg").mkdir(parents=True)
    (tmp_path / "cluster.lock").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "test")
    assert wipe(tmp_path, keep={tmp_path / "test"}) == ["test"]
    assert [c.name for c in tmp_path.iterdir()] == ["test"] and (tmp_path / "test" / "pg").is_dir()
    assert wipe(tmp_path / "test", keep=set()) == [] and not any((tmp_path / "test").iterdir())


def test_paxos_variant_file(tmp_path):
    """A ring without the file (created before v2) keeps v1; a bad value stops the start with the file named."""
    from types import SimpleNamespace

    from cluster.cassandra import paxos_variant
    from cluster.procs import StepFailed

    p = SimpleNamespace(var_dir=tmp_path)
    assert paxos_variant(p) == "v1"
    (tmp_path / "cassandra").mkdir()
    (tmp_path / "cassandra" / "paxos_variant").write_text("v2\n")
    assert paxos_variant(p) == "v2"
    (tmp_path / "cassandra" / "paxos_variant").write_text("v3\n")
    with pytest.raises(StepFailed, match="paxos_variant.*v3"):
        paxos_variant(p)


_HTTPS_PROBE = """
import django
django.setup()
from django.test import Client
c = Client()
plain = c.get("/api/schema/")
health = c.get("/healthz")
proxied = c.get("/api/schema/", HTTP_X_FORWARDED_PROTO="https")
print("PROBE", plain.status_code, plain.get("Location"), health.status_code, proxied.status_code,
      proxied.get("Strict-Transport-Security"))
"""


def test_https_mode_passes_the_deployment_check_and_redirects_plain_http():
    """Production runs behind a TLS proxy with LETSEMA_HTTPS=1 (reliability notes S11): Django's deployment check
    finds nothing to warn about; plain HTTP is redirected, but /healthz (the load balancer's probe)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "LETSEMA_HTTPS": "1"}
    env.pop("LETSEMA_DEBUG", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the browser tests' setting (tests/web/conftest.py), not a node's
    check = [sys.executable, str(REPO / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"]
    res = subprocess.run(check, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "no issues" in res.stdout, res.stdout + res.stderr
    # the same check fails without it (plain HTTP: the local cluster's mode), so the check above can fail
    off = {k: v for k, v in env.items() if k != "LETSEMA_HTTPS"}
    res = subprocess.run(check, env=off, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "security.W008" in res.stdout + res.stderr
    res = subprocess.run([sys.executable, "-c", _HTTPS_PROBE], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    probe = next(line for line in res.stdout.splitlines() if line.startswith("PROBE ")).split(maxsplit=5)
    _, status, where, health_status, proxied_status, hsts = probe
    assert status == "301" and where == "https://testserver/api/schema/"
    assert health_status != "301"  # 200 or 503, whatever the services are: not sent away
    assert proxied_status == "200"
    assert hsts == "max-age=31536000; includeSubDomains; preload"
