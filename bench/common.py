"""Shared by the benchmark scripts: percentiles and the one-line description of the machine they ran on."""

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
