"""Container files: no Docker engine exists on our machines, so we lint and validate them statically."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.cluster.yml"


def test_compose_file_validates():
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose (Debian package) is not installed; './letsema install' installs it")
    res = subprocess.run([exe, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr


def test_compose_wires_three_districts_and_a_three_node_ring():
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert {"cassandra1", "cassandra2", "cassandra3", "redis"} <= set(services)
    shipped = sorted(p.stem for p in (REPO / "district_configs").glob("*.toml"))
    for code in shipped:
        h = code.replace("_", "-")
        for svc in (f"pg-{h}", f"node-{h}", f"worker-{h}"):
            assert svc in services, svc
        assert services[f"node-{h}"]["environment"]["LETSEMA_DISTRICT"] == code


def test_dockerfile_lints_clean():
    exe = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    res = subprocess.run([exe, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_image_runs_as_non_root_with_a_healthcheck():
    text = (REPO / "Dockerfile").read_text()
    assert "USER 10001" in text
    assert "HEALTHCHECK" in text and "/healthz" in text
