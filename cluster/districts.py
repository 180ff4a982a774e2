"""Adding, suspending and removing a district node of a running local cluster, without restarting the others.

    ./letsema add-district qachas_nek --name "Qacha's Nek" --mfi "qacha-credit=Qacha's Nek Credit"
    ./letsema suspend-district qachas_nek      # peers stop calling it and refuse its requests; it keeps running
    ./letsema resume-district qachas_nek
    ./letsema remove-district qachas_nek       # suspend, then stop its processes (data kept; 'up' skips it)
    ./letsema remove-district qachas_nek --purge   # added districts only: also delete its data, keys and ring entry

Adding writes the new district's configuration next to the others (next free node and PostgreSQL ports, the same
ring and broker), generates its secrets (the network pepper is shared) and its Ed25519 key pair, starts its
PostgreSQL, migrates, starts its Celery worker and web node, and publishes its entry in the ring's node directory.
Running nodes learn of it from the ring (their directory cache refreshes every ``directory_ttl_seconds``; a signed
request from an origin they do not know yet forces a refresh at once), so nothing else restarts.
"""

from __future__ import annotations

import os
import re
import shutil

from cluster import nodes, postgres
from cluster.procs import Progress, StepFailed, port_open
from cluster.profiles import Profile, render_toml
from config.district import DEFAULT_CONFIG_DIR, DistrictConfig, all_codes
from federation.keys import generate_keypair

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MFI_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


def _shipped(code: str) -> bool:
    return code in all_codes(DEFAULT_CONFIG_DIR)


def _next_free(taken: set[int], start: int) -> int:
    port = start
    while port in taken or port_open("127.0.0.1", port, timeout=0.2):
        port += 1
    return port


def new_district_config(p: Profile, code: str, name: str, mfis: list[tuple[str, str]]) -> dict:
    """The configuration of a new district: the first district's ring and broker, the next free ports."""
    if not CODE_RE.match(code):
        raise StepFailed(f"district code {code!r}: use 2-40 lower-case letters, digits or '_', starting with a letter")
    if code in p.all_configured_districts:
        raise StepFailed(f"district {code!r} already exists in {p.config_dir}")
    for mfi_code, _ in mfis:
        if not MFI_CODE_RE.match(mfi_code):
            raise StepFailed(f"MFI code {mfi_code!r}: use 2-40 lower-case letters, digits or '-'")
    existing = [p.district(c) for c in p.all_configured_districts]
    if not existing:
        raise StepFailed("add-district needs a cluster with at least one district; run 'up' first")
    first: DistrictConfig = existing[0]
    node_port = _next_free({d.port for d in existing}, max(d.port for d in existing) + 1)
    pg_port = _next_free({d.pg_port for d in existing} | {node_port}, max(d.pg_port for d in existing) + 1)
    dbs = {int(d.redis_url.rsplit("/", 1)[1] or 0) for d in existing}
    free_dbs = sorted(set(range(1, 16)) - dbs)
    if not free_dbs:
        raise StepFailed("no free Redis database number left for another district (16 per broker)")
    redis_head = first.redis_url.rsplit("/", 1)[0]
    host = first.public_url.rsplit(":", 1)[0]
    return {
        "district": {"code": code, "name": name, "country": first.country, "currency": first.currency,
                     "timezone": first.timezone, "public_url": f"{host}:{node_port}"},
        "node": {"bind": first.bind_host, "port": node_port,
                 "public_key_file": os.path.relpath(p.keys_dir / f"{code}.pub", p.config_dir), "key_id": "ed25519:1"},
        "postgres": {"host": first.pg_host, "port": pg_port, "name": f"letsema_{code}", "user": first.pg_user},
        "cassandra": {"contact_points": list(first.cassandra_contact_points), "port": first.cassandra_port,
                      "keyspace": first.cassandra_keyspace, "replication_factor": first.cassandra_replication_factor,
                      "local_dc": first.cassandra_local_dc},
        "redis": {"url": f"{redis_head}/{free_dbs[0]}"},
        "mfis": [{"code": c, "name": n} for c, n in mfis],
    }


def add_district(p: Profile, code: str, name: str, mfis: list[tuple[str, str]] = (), *, web_workers: int = 1) -> None:
    from cluster.commands import cluster_lock, start_district

    with cluster_lock(p):
        prog = Progress(7)
        with prog.step(f"Configuration for {code} in {p.config_dir}"):
            data = new_district_config(p, code, name, list(mfis))
            p.config_dir.mkdir(parents=True, exist_ok=True)
            (p.config_dir / f"{code}.toml").write_text(render_toml(data))
            p.removed_marker(code).unlink(missing_ok=True)
            p.prepare_secrets()
            generate_keypair(p.secrets_dir(code) / "node_ed25519.key", p.keys_dir / f"{code}.pub")
        try:
            start_district(p, code, prog, web_workers=web_workers)
            with prog.step(f"{code}: publish in the ring's node directory"):
                nodes.manage(p, code, "federation_publish")
        except StepFailed:
            print(f"\nletsema: {code} was configured but did not come up; fix the cause and run 'up', "
                  f"or 'remove-district {code} --purge'")
            raise
    d = p.district(code)
    print(f"\nDistrict {d.name} ({code}) is up: {d.public_url}/ (PostgreSQL 127.0.0.1:{d.pg_port}). Running nodes "
          "learn of it from the ring within their directory refresh (30 s by default); nothing was restarted.")


def set_status(p: Profile, code: str, status: str) -> None:
    if code not in p.all_configured_districts:
        raise StepFailed(f"no district {code!r} in {p.config_dir}")
    nodes.manage(p, code, "federation_publish", "--status", status)
    print(f"{code}: {status} in the node directory (peers apply it within their directory refresh).")


def remove_district(p: Profile, code: str, *, purge: bool = False) -> None:
    from cluster.commands import cluster_lock

    if code not in p.all_configured_districts:
        raise StepFailed(f"no district {code!r} in {p.config_dir}")
    if purge and _shipped(code):
        raise StepFailed(f"{code} is a shipped district (district_configs/{code}.toml): it can be removed, not purged")
    with cluster_lock(p):
        if postgres.is_running(p, code):
            try:
                nodes.manage(p, code, "federation_publish", "--remove" if purge else "--status",
                             *([] if purge else ["suspended"]))
            except StepFailed as exc:
                if not purge:
                    raise
                print(f"letsema: could not remove {code}'s ring entry ({exc}); continuing with the purge")
        nodes.stop_web(p, code)
        nodes.stop_worker(p, code)
        postgres.stop(p, code)
        if purge:
            (p.config_dir / f"{code}.toml").unlink(missing_ok=True)
            shutil.rmtree(p.secrets_dir(code), ignore_errors=True)
            (p.keys_dir / f"{code}.pub").unlink(missing_ok=True)
            shutil.rmtree(postgres.data_dir(p, code), ignore_errors=True)
            p.removed_marker(code).unlink(missing_ok=True)
            print(f"{code}: stopped and purged (configuration, secrets, keys, database, ring entry).")
        else:
            p.removed_marker(code).parent.mkdir(parents=True, exist_ok=True)
            p.removed_marker(code).write_text("removed\n")
            print(f"{code}: suspended and stopped; data kept. 'up' skips it until 'resume-district {code}'.")


def resume_district(p: Profile, code: str, *, web_workers: int = 1) -> None:
    from cluster.commands import cluster_lock, start_district

    if code not in p.all_configured_districts:
        raise StepFailed(f"no district {code!r} in {p.config_dir}")
    with cluster_lock(p):
        p.removed_marker(code).unlink(missing_ok=True)
        prog = Progress(6)
        start_district(p, code, prog, web_workers=web_workers)
        with prog.step(f"{code}: active in the node directory"):
            nodes.manage(p, code, "federation_publish", "--status", "active")
