"""National IDs, phone numbers and the pseudonymous borrower key. Pure functions (settings only).

``borrower_key = "v<version>:" + hex(HMAC-SHA256(pepper[version], normalised national ID))``. The pepper is a
network-wide secret outside the repository (config.secrets.parse_peppers); the highest version is current.
A key is computed only on the node that holds the raw ID; the ring and peers only ever see keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class IdFormat:
    pattern: re.Pattern[str]
    description: str
    strip: str  # characters removed before matching


# Lesotho: the national ID number is numeric; we accept 9-13 digits after removing spaces and dashes (the exact
# length of Lesotho NID numbers is not published in a source we could check; tighten when the registry confirms).
# Zambia: NRC "123456/78/1".
ID_FORMATS: dict[str, IdFormat] = {
    "LS": IdFormat(re.compile(r"^\d{9,13}$"), "9 to 13 digits", " -"),
    "ZM": IdFormat(re.compile(r"^\d{6}/\d{2}/\d$"), "NRC number like 123456/78/1", " -"),
}

# country -> (calling code, national significant number pattern)
PHONE_FORMATS: dict[str, tuple[str, re.Pattern[str]]] = {
    "LS": ("266", re.compile(r"^[2-9]\d{7}$")),
    "ZM": ("260", re.compile(r"^[2-9]\d{8}$")),
}

LESOTHO_DISTRICTS = (
    "Berea", "Butha-Buthe", "Leribe", "Mafeteng", "Maseru", "Mohale's Hoek", "Mokhotlong", "Qacha's Nek",
    "Quthing", "Thaba-Tseka",
)


class IdentityFormatError(ValueError):
    pass


def normalise_national_id(raw: str, country: str | None = None) -> str:
    country = country or settings.DISTRICT.country
    fmt = ID_FORMATS[country]
    value = "".join(ch for ch in str(raw).strip().upper() if ch not in fmt.strip)
    if not fmt.pattern.match(value):
        raise IdentityFormatError(f"Not a valid national ID number: expected {fmt.description}.")
    return value


def normalise_phone(raw: str, country: str | None = None) -> str:
    """E.164 (+26658123456). Accepts local numbers, 00-prefixed and +-prefixed international forms."""
    country = country or settings.DISTRICT.country
    calling, nsn = PHONE_FORMATS[country]
    digits = re.sub(r"[\s\-().]", "", str(raw))
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    elif digits.startswith("0"):
        digits = digits[1:]
    if not digits.isdigit():
        raise IdentityFormatError("Not a valid phone number.")
    if digits.startswith(calling) and nsn.match(digits[len(calling):]):
        return f"+{digits}"
    if nsn.match(digits):
        return f"+{calling}{digits}"
    raise IdentityFormatError(f"Not a valid phone number for country {country} (+{calling}).")


def _key(version: int, pepper: bytes, national_id: str) -> str:
    return f"v{version}:" + hmac.new(pepper, national_id.encode("utf-8"), hashlib.sha256).hexdigest()


def borrower_key(national_id: str) -> str:
    """The current-version key of an already normalised national ID."""
    peppers: dict[int, bytes] = settings.NETWORK_PEPPERS
    version = max(peppers)
    return _key(version, peppers[version], national_id)


def borrower_keys_all_versions(national_id: str) -> list[str]:
    """Keys under every pepper version still known, current first (for look-ups across a rotation)."""
    peppers: dict[int, bytes] = settings.NETWORK_PEPPERS
    return [_key(v, peppers[v], national_id) for v in sorted(peppers, reverse=True)]


BORROWER_KEY_RE = re.compile(r"^v\d+:[0-9a-f]{64}$")
