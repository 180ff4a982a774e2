"""Load and validate one district's configuration (``district_configs/<code>.toml``).

``LETSEMA_DISTRICT=<code>`` selects the file; ``LETSEMA_DISTRICT_CONFIG_DIR`` may point at another
directory (the test cluster writes its own). Validation is strict: a missing file, a TOML syntax error,
an unknown key, a missing key or a wrong type raises :class:`DistrictConfigError`, whose message is one
line naming the file and the field. ``config.settings`` turns that into a clean exit, never a traceback.

Districts differ only by this file: no code branches on a district code.
Secrets never live here; see :mod:`config.secrets`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = REPO_ROOT / "district_configs"

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MFI_CODE_RE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
CURRENCIES = {"LSL": 2, "ZMW": 2, "ZAR": 2}


class DistrictConfigError(Exception):
    """A configuration problem, reported as one line: ``<file>: <field>: <problem>``."""

    def __init__(self, path: Path | str, field_name: str, problem: str):
        self.path = str(path)
        self.field = field_name
        self.problem = problem
        super().__init__(f"{self.path}: {field_name}: {problem}")


@dataclass(frozen=True)
class MfiConfig:
    code: str
    name: str


@dataclass(frozen=True)
class DistrictConfig:
    path: Path
    code: str
    name: str
    country: str
    currency: str
    timezone: str
    public_url: str
    bind_host: str
    port: int
    public_key_file: Path
    key_id: str
    pg_host: str
    pg_port: int
    pg_name: str
    pg_user: str
    cassandra_contact_points: tuple[str, ...]
    cassandra_port: int
    cassandra_keyspace: str
    cassandra_replication_factor: int
    cassandra_local_dc: str
    redis_url: str
    mfis: tuple[MfiConfig, ...] = field(default_factory=tuple)
    # optional streaming-replication standby (``./letsema up --standby``); the node lists both hosts and connects
    # to whichever accepts writes (libpq target_session_attrs=read-write), so a failover needs no config edit
    pg_standby_host: str | None = None
    pg_standby_port: int | None = None

    @property
    def pg_hosts(self) -> list[tuple[str, int]]:
        """The district's PostgreSQL instances, configured primary first, then the standby if there is one."""
        hosts = [(self.pg_host, self.pg_port)]
        if self.pg_standby_port is not None:
            hosts.append((self.pg_standby_host or self.pg_host, self.pg_standby_port))
        return hosts


# --- the schema: section -> key -> (type, required) --------------------------------------------
_STR, _INT, _STRLIST = "string", "integer", "list of strings"

SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "district": {
        "code": (_STR, True),
        "name": (_STR, True),
        "country": (_STR, True),
        "currency": (_STR, True),
        "timezone": (_STR, True),
        "public_url": (_STR, True),
    },
    "node": {
        "bind": (_STR, True),
        "port": (_INT, True),
        "public_key_file": (_STR, True),
        "key_id": (_STR, True),
    },
    "postgres": {
        "host": (_STR, True),
        "port": (_INT, True),
        "name": (_STR, True),
        "user": (_STR, True),
        "standby_host": (_STR, False),
        "standby_port": (_INT, False),
    },
    "cassandra": {
        "contact_points": (_STRLIST, True),
        "port": (_INT, True),
        "keyspace": (_STR, True),
        "replication_factor": (_INT, True),
        "local_dc": (_STR, True),
    },
    "redis": {
        "url": (_STR, True),
    },
}
MFI_SCHEMA: dict[str, tuple[str, bool]] = {"code": (_STR, True), "name": (_STR, True)}
TOP_LEVEL = set(SCHEMA) | {"mfis"}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == _STR:
        return isinstance(value, str)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _STRLIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    raise AssertionError(kind)


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


def _check_table(path: Path, prefix: str, table: Any, schema: dict[str, tuple[str, bool]]) -> None:
    if not isinstance(table, dict):
        raise DistrictConfigError(path, prefix, f"expected a table, got {_type_name(table)}")
    for key in table:
        if key not in schema:
            raise DistrictConfigError(path, f"{prefix}.{key}", "unknown key")
    for key, (kind, required) in schema.items():
        if key not in table:
            if required:
                raise DistrictConfigError(path, f"{prefix}.{key}", "missing required key")
            continue
        if not _type_ok(table[key], kind):
            raise DistrictConfigError(
                path, f"{prefix}.{key}", f"expected {kind}, got {_type_name(table[key])}"
            )


def _check_port(path: Path, name: str, value: int) -> None:
    if not 1 <= value <= 65535:
        raise DistrictConfigError(path, name, f"port {value} is outside 1..65535")


_OVERRIDE = re.compile(r"^LETSEMA_CONFIG__([a-z_]+)__([a-z_]+)$")


def _apply_env_overrides(path: Path, raw: dict) -> None:
    """``LETSEMA_CONFIG__<section>__<key>=<TOML value>`` replaces one value (containers use this to name
    their hosts). A value that is not valid TOML is taken as a plain string. The result is validated
    like the file itself."""
    for name, value in sorted(os.environ.items()):
        m = _OVERRIDE.match(name)
        if not m:
            continue
        section, key = m.groups()
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise DistrictConfigError(path, f"{section}.{key}", f"cannot override from ${name}: not a table")
        table[key] = parsed


def config_dir() -> Path:
    return Path(os.environ.get("LETSEMA_DISTRICT_CONFIG_DIR") or DEFAULT_CONFIG_DIR)


def config_path(code: str, directory: Path | None = None) -> Path:
    return (directory or config_dir()) / f"{code}.toml"


def load_file(path: Path, *, env_overrides: bool = True) -> DistrictConfig:
    """Parse and validate one TOML file. Raises DistrictConfigError (one line) on any problem. ``env_overrides``
    applies ``LETSEMA_CONFIG__section__key``; tooling that writes config files for other processes turns it off."""
    path = Path(path)
    if not path.is_file():
        raise DistrictConfigError(path, "(file)", "file not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DistrictConfigError(path, "(syntax)", f"invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise DistrictConfigError(path, "(file)", "not UTF-8 text") from None

    if env_overrides:
        _apply_env_overrides(path, raw)
    for key in raw:
        if key not in TOP_LEVEL:
            raise DistrictConfigError(path, key, "unknown key")
    for section, schema in SCHEMA.items():
        if section not in raw:
            raise DistrictConfigError(path, section, "missing required section")
        _check_table(path, section, raw[section], schema)

    mfis_raw = raw.get("mfis", [])
    if not isinstance(mfis_raw, list):
        raise DistrictConfigError(path, "mfis", f"expected an array of tables, got {_type_name(mfis_raw)}")
    mfis: list[MfiConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(mfis_raw):
        _check_table(path, f"mfis[{i}]", item, MFI_SCHEMA)
        if not MFI_CODE_RE.match(item["code"]):
            raise DistrictConfigError(path, f"mfis[{i}].code", "must be lower-case letters, digits and '-'")
        if item["code"] in seen:
            raise DistrictConfigError(path, f"mfis[{i}].code", f"duplicate MFI code {item['code']!r}")
        seen.add(item["code"])
        mfis.append(MfiConfig(code=item["code"], name=item["name"]))

    d, n, pg, cs, rd = (raw[s] for s in ("district", "node", "postgres", "cassandra", "redis"))
    if not CODE_RE.match(d["code"]):
        raise DistrictConfigError(path, "district.code", "must be 2-32 lower-case letters, digits or '_'")
    if path.stem != d["code"]:
        raise DistrictConfigError(path, "district.code", f"{d['code']!r} does not match the file name")
    if d["currency"] not in CURRENCIES:
        raise DistrictConfigError(
            path, "district.currency", f"{d['currency']!r} is not one of {', '.join(sorted(CURRENCIES))}"
        )
    if not re.match(r"^[A-Z]{2}$", d["country"]):
        raise DistrictConfigError(path, "district.country", "must be an ISO 3166 alpha-2 code, e.g. LS")
    if not re.match(r"^https?://[^\s/]+(/.*)?$", d["public_url"]):
        raise DistrictConfigError(path, "district.public_url", "must be an http(s) URL")
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(d["timezone"])
    except Exception:
        raise DistrictConfigError(path, "district.timezone", f"unknown time zone {d['timezone']!r}") from None
    _check_port(path, "node.port", n["port"])
    _check_port(path, "postgres.port", pg["port"])
    if "standby_port" in pg:
        _check_port(path, "postgres.standby_port", pg["standby_port"])
        if pg["standby_port"] == pg["port"] and pg.get("standby_host", pg["host"]) == pg["host"]:
            raise DistrictConfigError(path, "postgres.standby_port", "must differ from postgres.port")
    _check_port(path, "cassandra.port", cs["port"])
    if not re.match(r"^ed25519:[A-Za-z0-9_]+$", n["key_id"]):
        raise DistrictConfigError(path, "node.key_id", "must look like 'ed25519:<version>'")
    if not cs["contact_points"]:
        raise DistrictConfigError(path, "cassandra.contact_points", "must name at least one host")
    if not 1 <= cs["replication_factor"] <= 5:
        raise DistrictConfigError(path, "cassandra.replication_factor", "must be between 1 and 5")
    if not re.match(r"^[a-z][a-z0-9_]{0,47}$", cs["keyspace"]):
        raise DistrictConfigError(path, "cassandra.keyspace", "must be a lower-case CQL identifier")
    if not rd["url"].startswith(("redis://", "rediss://")):
        raise DistrictConfigError(path, "redis.url", "must start with redis:// or rediss://")

    key_file = Path(n["public_key_file"])
    if not key_file.is_absolute():
        key_file = path.parent / key_file

    return DistrictConfig(
        path=path,
        code=d["code"],
        name=d["name"],
        country=d["country"],
        currency=d["currency"],
        timezone=d["timezone"],
        public_url=d["public_url"].rstrip("/"),
        bind_host=n["bind"],
        port=n["port"],
        public_key_file=key_file,
        key_id=n["key_id"],
        pg_host=pg["host"],
        pg_port=pg["port"],
        pg_name=pg["name"],
        pg_user=pg["user"],
        cassandra_contact_points=tuple(cs["contact_points"]),
        cassandra_port=cs["port"],
        cassandra_keyspace=cs["keyspace"],
        cassandra_replication_factor=cs["replication_factor"],
        cassandra_local_dc=cs["local_dc"],
        redis_url=rd["url"],
        mfis=tuple(mfis),
        pg_standby_host=pg.get("standby_host"),
        pg_standby_port=pg.get("standby_port"),
    )


def load(code: str | None = None, directory: Path | None = None) -> DistrictConfig:
    """Load the district named by ``code`` or ``$LETSEMA_DISTRICT``."""
    code = code or os.environ.get("LETSEMA_DISTRICT")
    if not code:
        raise DistrictConfigError("LETSEMA_DISTRICT", "(environment)", "not set; name a file in district_configs/")
    if not CODE_RE.match(code):
        raise DistrictConfigError("LETSEMA_DISTRICT", "(environment)", f"{code!r} is not a district code")
    return load_file(config_path(code, directory))


def all_codes(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or config_dir()).glob("*.toml"))
