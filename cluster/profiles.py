"""Cluster profiles: where a local cluster keeps its files and which ports and addresses it uses.

``DEMO`` is what ``./letsema up`` runs: it uses ``district_configs/`` as shipped. ``TEST`` is what the test
suite starts: the same districts shifted to other ports and ring addresses (written to
``var/test/district_configs``), so tests never touch a running demo cluster.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from config.district import DEFAULT_CONFIG_DIR, REPO_ROOT, DistrictConfig, all_codes, load_file
from config.secrets import generate_secrets


@dataclass(frozen=True)
class Profile:
    name: str
    var_dir: Path
    port_offset: int  # added to node, PostgreSQL and Redis ports
    ring_ip_base: int  # ring node i listens on 127.0.0.(ring_ip_base + i - 1)
    jmx_base: int
    node_env: tuple[tuple[str, str], ...] = ()  # extra environment for this profile's node processes
    # run a streaming-replication standby per district (``up --standby`` turns it on for one run; a district whose
    # standby already exists always gets it started, so its synchronous primary never waits for a missing standby)
    standby: bool = False

    # --- layout -----------------------------------------------------------------------------
    @property
    def config_dir(self) -> Path:
        return DEFAULT_CONFIG_DIR if self.port_offset == 0 else self.var_dir / "district_configs"

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    def secrets_dir(self, code: str) -> Path:
        return self.var_dir / "secrets" / code

    @property
    def keys_dir(self) -> Path:
        return self.var_dir / "keys"

    @property
    def redis_port(self) -> int:
        return 6390 + self.port_offset

    def ring_ip(self, i: int) -> str:
        return f"127.0.0.{self.ring_ip_base + i - 1}"

    def jmx_port(self, i: int) -> int:
        return self.jmx_base + 100 * (i - 1)

    @property
    def all_configured_districts(self) -> list[str]:
        """The shipped districts plus any added to this cluster live (``cluster/districts.py``)."""
        codes = set(all_codes(DEFAULT_CONFIG_DIR))
        if self.port_offset != 0 and self.config_dir.is_dir():
            codes |= set(all_codes(self.config_dir))
        return sorted(codes)

    @property
    def districts(self) -> list[str]:
        """The districts this cluster runs: every configured one but those removed with ``remove-district``."""
        return [c for c in self.all_configured_districts if not self.removed_marker(c).exists()]

    def removed_marker(self, code: str) -> Path:
        return self.var_dir / "removed" / code

    @property
    def primary_district(self) -> str:
        return self.districts[0]

    def district(self, code: str) -> DistrictConfig:
        return load_file(self.config_dir / f"{code}.toml")

    # --- generated files --------------------------------------------------------------------
    def prepare_configs(self) -> None:
        """Validate the shipped configs; for a shifted profile write the shifted copies. Idempotent."""
        for code in all_codes(DEFAULT_CONFIG_DIR):  # districts added live are written shifted already
            # the shipped file as written: one process's LETSEMA_CONFIG__ overrides must not leak into files that
            # every process of the cluster reads
            src = load_file(DEFAULT_CONFIG_DIR / f"{code}.toml", env_overrides=False)
            if self.port_offset == 0:
                continue
            self.config_dir.mkdir(parents=True, exist_ok=True)
            text = render_toml(self._shift(src))
            target = self.config_dir / f"{code}.toml"
            if not target.exists() or target.read_text() != text:
                target.write_text(text)

    def prepare_secrets(self) -> None:
        """Generate per-district secrets; the network pepper is one value shared by every district."""
        pepper_file = self.var_dir / "secrets" / "network_pepper"
        pepper_file.parent.mkdir(parents=True, exist_ok=True)
        if not pepper_file.exists():
            pepper_file.write_text("1:" + secrets.token_urlsafe(48) + "\n")
            os.chmod(pepper_file, 0o600)
        pepper = pepper_file.read_text().strip()
        for code in self.districts:
            generate_secrets(self.secrets_dir(code), shared={"network_pepper": pepper})

    def _shift(self, d: DistrictConfig) -> dict:
        off = self.port_offset
        url_port = d.port + off
        return {
            "district": {
                "code": d.code,
                "name": d.name,
                "country": d.country,
                "currency": d.currency,
                "timezone": d.timezone,
                "public_url": d.public_url.rsplit(":", 1)[0] + f":{url_port}",
            },
            "node": {
                "bind": d.bind_host,
                "port": d.port + off,
                "public_key_file": str(self.keys_dir / f"{d.code}.pub"),
                "key_id": d.key_id,
            },
            "postgres": {"host": d.pg_host, "port": d.pg_port + off, "name": d.pg_name, "user": d.pg_user,
                         **({"standby_port": d.pg_standby_port + off} if d.pg_standby_port is not None else {}),
                         **({"standby_host": d.pg_standby_host} if d.pg_standby_host is not None else {})},
            "cassandra": {
                "contact_points": [self.ring_ip(i) for i in (1, 2, 3)],
                "port": d.cassandra_port,
                "keyspace": d.cassandra_keyspace,
                "replication_factor": d.cassandra_replication_factor,
                "local_dc": d.cassandra_local_dc,
            },
            "redis": {"url": _shift_redis(d.redis_url, self.redis_port)},
            "mfis": [{"code": m.code, "name": m.name} for m in d.mfis],
        }

    def env_for(self, code: str) -> dict[str, str]:
        """Environment for a node process (gunicorn, celery, manage.py) of district ``code``."""
        env = dict(os.environ)
        env.update(
            {
                "LETSEMA_DISTRICT": code,
                "LETSEMA_DISTRICT_CONFIG_DIR": str(self.config_dir),
                "LETSEMA_SECRETS_DIR": str(self.secrets_dir(code)),
                "LETSEMA_STATIC_ROOT": str(self.var_dir / "static"),
                "LETSEMA_VAR_DIR": str(self.var_dir),
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "PYTHONPATH": str(REPO_ROOT),
            }
        )
        env.update(dict(self.node_env))
        return env


def _shift_redis(url: str, port: int) -> str:
    # redis://host:port/db -> same host and db, profile's port
    head, _, db = url.rpartition("/")
    scheme_host = head.rsplit(":", 1)[0]
    return f"{scheme_host}:{port}/{db}"


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def render_toml(data: dict) -> str:
    """A minimal TOML writer for the district schema (tables of scalars/lists, one array of tables)."""
    out = ["# Generated by the cluster launcher from district_configs/. Do not edit.", ""]
    for section, table in data.items():
        if isinstance(table, list):
            for item in table:
                out.append(f"[[{section}]]")
                out += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
                out.append("")
        else:
            out.append(f"[{section}]")
            out += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
            out.append("")
    return "\n".join(out)


DEMO = Profile(name="demo", var_dir=REPO_ROOT / "var", port_offset=0, ring_ip_base=1, jmx_base=7199)
# test nodes refresh their peer directory every 3 s (30 s in the demo), so tests of a district joining, being suspended
# or leaving wait seconds, not half-minutes
# LETSEMA_TEST_SLOT=N (default 0) moves the test cluster N steps further (ports +200 N, ring 127.0.0.(11+10 N)..,
# JMX +300 N), so a second checkout can run its suite on the same machine while another one's cluster is up.
_SLOT = int(os.environ.get("LETSEMA_TEST_SLOT", "0"))
TEST = Profile(name="test", var_dir=REPO_ROOT / "var" / "test", port_offset=100 + 200 * _SLOT,
               ring_ip_base=11 + 10 * _SLOT, jmx_base=7499 + 300 * _SLOT,
               node_env=(("LETSEMA_FEDERATION_DIRECTORY_TTL", "3"),))
PROFILES = {"demo": DEMO, "test": TEST}
