"""Node identity: an Ed25519 key pair per node. The private key is a file outside the repository."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def generate_keypair(private_path: Path, public_path: Path) -> bool:
    """Create the key pair if the private key does not exist yet. Returns True when created now."""
    if private_path.exists():
        if not public_path.exists():
            _write_public(_load_private(private_path), public_path)
        return False
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(private_path, 0o600)
    _write_public(key, public_path)
    return True


def _load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _write_public(key: Ed25519PrivateKey, public_path: Path) -> None:
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
