"""Shared helpers for borrower tests: unique national IDs and a valid registration payload."""

from __future__ import annotations

import random

_rng = random.SystemRandom()


def new_national_id() -> str:
    return "".join(str(_rng.randint(0, 9)) for _ in range(11))


def new_phone() -> str:
    return "+2665" + "".join(str(_rng.randint(0, 9)) for _ in range(7))


def payload(**overrides) -> dict:
    data = {
        "national_id": new_national_id(),
        "first_name": "Mpho",
        "last_name": "Nthane",
        "date_of_birth": "1990-04-12",
        "phone": new_phone(),
        "address": "Ha Thetsane, Maseru",
        "residence_district": "Maseru",
        "employer": "Ministry of Education",
        "employee_number": "E-10442",
        "monthly_income": "8500.00",
        "next_of_kin": {"name": "Lerato Nthane", "phone": "+26662000001", "relationship": "sister"},
    }
    data.update(overrides)
    return data


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
