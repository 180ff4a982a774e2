"""Web interface tests: the Django test client for every view, and real Chromium (Debian's package, driven by
Playwright) for the whole loan journey. The SMS gateway writes to a file the tests read (the OTP)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's live_server + ORM calls in the test body are
# synchronous and safe here (ecosystem notes, section 4).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test" / "artifacts"


@pytest.fixture(autouse=True)
def _sms_to_file(tmp_path, settings):
    settings.SMS_BACKEND = "file"
    settings.SMS_FILE_PATH = tmp_path / "sms.jsonl"


def last_otp(phone: str) -> str:
    """The code in the newest SMS to ``phone`` (the file gateway's outbox)."""
    import re

    from node.notifications.sms import read_file_outbox

    sent = [m for m in read_file_outbox() if m["to"] == phone]
    assert sent, f"no SMS to {phone}"
    return re.search(r"\b(\d{6})\b", sent[-1]["message"]).group(1)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium (apt ``chromium``); Playwright's own download is not reachable from our machines."""
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium",
            "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update"]}


@pytest.fixture
def consent_texts(db):
    """Consent v1 in English and Sesotho, as the data migration publishes it (a transactional test's flush
    empties the table for the tests after it)."""
    import importlib

    from node.borrowers.models import ConsentText

    m = importlib.import_module("node.borrowers.migrations.0002_consent_text_v1")
    ConsentText.objects.get_or_create(version=1, language="en", defaults={"title": m.EN_TITLE, "body": m.EN_BODY})
    ConsentText.objects.get_or_create(version=1, language="st", defaults={"title": m.ST_TITLE, "body": m.ST_BODY})


@pytest.fixture
def live_server(live_server, settings):
    """pytest-django's live server answers /static/ through the finders, which know each file by its own name
    only: its pages link those names (the nodes link the hashed copies collectstatic writes, config/settings.py)."""
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"}}
    return live_server
