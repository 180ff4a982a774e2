"""Shared by the benchmark scripts: percentiles, the one-line description of the machine they ran on, and the bench
keyspace on the ring."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile (nearest rank on the sorted sample)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def machine() -> str:
    """``2 cores (Intel Xeon ...), 23 GiB RAM, load 1.2/1.5``: every printed table says where it was measured."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal"))) // 1024**2
    load = os.getloadavg()
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, load {load[0]:.1f}/{load[1]:.1f}"


BENCH_KEYSPACE = "letsema_bench"


def bench_ring(profile: str):
    """Django for ``profile`` with the ring keyspace pointed at the bench keyspace (same CQL migrations and RF as
    the node's, created if missing), and the node's shared ring session on it: ``(session, consistency level)``."""
    os.environ["LETSEMA_CONFIG__cassandra__keyspace"] = BENCH_KEYSPACE
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings" if profile == "test" else "config.settings"
    import django

    django.setup()
    from replication.migrations_cql import apply
    from replication.ring import RingSettings, get_session, make_cluster

    s = RingSettings.from_django()
    admin = make_cluster(s)
    try:
        apply(admin.connect(), BENCH_KEYSPACE, s.replication_factor, s.local_dc, log=lambda m: None)
    finally:
        admin.shutdown()
    return get_session()
