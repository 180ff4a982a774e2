"""``manage.py collectstatic_changed`` (run by every ``./letsema up``): it collects when a static source changed or
nothing was collected yet, and otherwise leaves the collected files alone (collecting with compression costs ~24 s
on the 2-core machine). Plain storage here to keep the test quick; the digest names the backend too."""

from __future__ import annotations

import io
import os
from pathlib import Path

from django.core.management import call_command


def run() -> str:
    out = io.StringIO()
    call_command("collectstatic_changed", stdout=out)
    return out.getvalue().strip()


def test_collects_only_when_a_source_changed(settings, tmp_path):
    settings.STATIC_ROOT = str(tmp_path / "static")
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
    assert run() == "static files collected"
    assert (tmp_path / "static" / "staticfiles.json").exists()
    assert run() == "static files are current"
    css = next(Path(__file__).resolve().parent.parent.glob("node/web/static/web/*.css"))
    st = css.stat()
    os.utime(css, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # an edited stylesheet
    try:
        assert run() == "static files collected"
        assert run() == "static files are current"
        (tmp_path / "static" / "staticfiles.json").unlink()  # nothing collected (a wiped directory)
        assert run() == "static files collected"
    finally:
        os.utime(css, ns=(st.st_atime_ns, st.st_mtime_ns))
