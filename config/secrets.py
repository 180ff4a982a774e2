"""Node secrets: from the environment, or from files in a directory outside the repository.

For each secret NAME the node reads ``$LETSEMA_<NAME>`` first, then the file
``$LETSEMA_SECRETS_DIR/<name>`` (default ``var/secrets/<district>/``, which the demo cluster generates).
A missing secret stops the node with one line naming it. Nothing here is ever committed.
"""

from __future__ import annotations

import os
import secrets as _secrets
from pathlib import Path

from config.district import REPO_ROOT

SECRET_NAMES = ("django_secret_key", "jwt_signing_key", "network_pepper", "db_password", "mobile_money_secret")
#: optional: the node runs without them (the feature they protect answers "not configured")
OPTIONAL_SECRETS = frozenset({"mobile_money_secret"})


class SecretMissing(Exception):
    def __init__(self, name: str, directory: Path):
        super().__init__(
            f"secret {name!r} is missing: set LETSEMA_{name.upper()} or create {directory / name}"
        )


def secrets_dir(district_code: str, var_dir: Path | None = None) -> Path:
    env = os.environ.get("LETSEMA_SECRETS_DIR")
    if env:
        return Path(env)
    return (var_dir or REPO_ROOT / "var") / "secrets" / district_code


def read_secret(name: str, district_code: str) -> str:
    value = os.environ.get(f"LETSEMA_{name.upper()}")
    if value:
        return value
    directory = secrets_dir(district_code)
    path = directory / name
    if path.is_file():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    raise SecretMissing(name, directory)


def generate_secrets(directory: Path, shared: dict[str, str] | None = None) -> None:
    """Create any missing secret file (0600). ``shared`` values (the network pepper) win."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    for name in SECRET_NAMES:
        path = directory / name
        if path.exists():
            continue
        value = (shared or {}).get(name) or _secrets.token_urlsafe(48)
        path.write_text(value + "\n", encoding="utf-8")
        os.chmod(path, 0o600)


def parse_peppers(value: str) -> dict[int, bytes]:
    """The network pepper, versioned: lines ``<version>:<secret>``; a single bare line is version 1.

    The highest version is current (new borrower keys); older ones stay for look-ups across a rotation.
    """
    peppers: dict[int, bytes] = {}
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    if len(lines) == 1 and ":" not in lines[0]:
        return {1: lines[0].encode()}
    for line in lines:
        version, sep, secret = line.partition(":")
        if not sep or not version.isdigit() or int(version) < 1 or len(secret) < 16:
            raise ValueError("secret 'network_pepper': each line must be '<version>:<secret of 16+ characters>'")
        peppers[int(version)] = secret.encode()
    return peppers
