"""The ``restore`` drill: ``./letsema drill restore [--district X]`` (runbook docs/runbooks/backup-restore.md).

Point-in-time restore of a district database from a base backup plus its WAL archive, into a scratch PostgreSQL
instance, while the district keeps working:

1. a WAL archive: ``pg_receivewal`` streams the district's WAL into ``var/<profile>/backups/<district>/wal`` over a
   replication slot (no server restart, nothing lost while it runs);
2. a base backup with ``pg_basebackup`` (``backups/<district>/base``) while repayments are being posted;
3. more repayments, then the *target*: the load stops for a moment, the drill takes checksums of the money tables
   (loans, installments, repayments, journal entries and lines) and marks the point with
   ``pg_create_restore_point``; the load starts again — these later writes must **not** be in the restored copy;
4. the restore: the base backup copied into a scratch data directory, started on a free port with
   ``restore_command`` reading the archive and ``recovery_target_name`` = the restore point; when it is promoted,
   the same checksums are taken and compared, and the later writes are looked for.

The scratch instance is stopped and deleted afterwards, the archiver stopped and its slot dropped; the backup and
the archive of the last run stay under ``backups/`` for inspection.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cluster import pg_standby, postgres
from cluster.drills import (
    DrillRefused,
    LoadGenerator,
    Report,
    _guard,
    _healthz,
    _primary,
    _print_rows,
    _save,
    _say,
    _setup,
)
from cluster.procs import chown_to, pid_alive, read_pid, run, spawn, stop_pidfile
from cluster.profiles import Profile

TARGET_RESTORE_S = 300.0
SLOT = "letsema_archive"
MONEY_TABLES = ("loans_loan", "loans_loaninstallment", "repayments_repayment", "ledger_journalentry",
                "ledger_journalline")


def checksums(inst: pg_standby.Instance, dbname: str) -> dict[str, dict]:
    """Row count and md5 of every money table, rows in id order (one read-only transaction: one snapshot)."""
    parts = ", ".join(f"(SELECT count(*) FROM {t}), (SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY x.id)), '') "
                      f"FROM {t} x)" for t in MONEY_TABLES)  # nosec B608 -- MONEY_TABLES constant
    row = pg_standby.query(inst, f"SELECT {parts}", dbname=dbname)[0]
    return {t: {"rows": row[2 * i], "md5": row[2 * i + 1]} for i, t in enumerate(MONEY_TABLES)}


def _free_port(start: int) -> int:
    for port in range(start, start + 200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise DrillRefused(f"no free port from {start}")


def _archiver_pidfile(p: Profile, code: str) -> Path:
    return p.run_dir / f"pg_receivewal-{code}.pid"


def _as_pg_user(cmd: list[str]) -> list[str]:
    user = postgres._user()
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def start_archiver(p: Profile, code: str, inst: pg_standby.Instance, archive: Path) -> None:
    """``pg_receivewal`` into ``archive`` over the slot ``letsema_archive`` (created if missing)."""
    d = p.district(code)
    archive.mkdir(parents=True, exist_ok=True)
    chown_to(archive, postgres.PG_USER)
    conn = ["-h", str(postgres.socket_dir(p)), "-p", str(inst.port), "-U", d.pg_user]
    if not pg_standby.query(inst, "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (SLOT,)):
        run([str(postgres.PG_BIN / "pg_receivewal"), *conn, "--slot", SLOT, "--create-slot", "--if-not-exists"],
            what=f"pg_receivewal --create-slot for {code}", log=postgres.ctl_log(p, code), user=postgres._user())
    pidfile = _archiver_pidfile(p, code)
    if (pid := read_pid(pidfile)) is not None and pid_alive(pid):
        return
    spawn(_as_pg_user([str(postgres.PG_BIN / "pg_receivewal"), *conn, "-D", str(archive), "--slot", SLOT,
                       "--no-loop", "--synchronous"]),
          log=p.log_dir / f"pg_receivewal-{code}.log", pidfile=pidfile)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if pg_standby.query(inst, "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (SLOT,))[0][0]:
            return
        time.sleep(0.2)
    raise DrillRefused(f"pg_receivewal for {code} did not start; see {p.log_dir / f'pg_receivewal-{code}.log'}")


def stop_archiver(p: Profile, code: str, inst: pg_standby.Instance) -> None:
    stop_pidfile(_archiver_pidfile(p, code), timeout=10)
    for _ in range(50):
        rows = pg_standby.query(inst, "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (SLOT,))
        if not rows:
            return
        if not rows[0][0]:
            pg_standby.query(inst, "SELECT pg_drop_replication_slot(%s)", (SLOT,))
            return
        time.sleep(0.2)


def _wait_archived(archive: Path, walfile: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (archive / walfile).exists():
            return True
        time.sleep(0.2)
    return False


def restore(p: Profile, code: str, *, writes_before: int = 20, writes_after: int = 10, clients: int = 2,
            allow_remote: bool = False, out=sys.stdout) -> Report:
    _guard(p, code, allow_remote)
    d = p.district(code)
    if _healthz(d.public_url) != 200:
        raise DrillRefused(f"{code} is not healthy before the drill; see './letsema status'")
    say = _say(out)
    rep = Report(scenario="restore", profile=p.name, district=code,
                 started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                 targets={"restore_s_max": TARGET_RESTORE_S, "checksums_equal": True, "later_writes_restored": 0})
    inst = _primary(p, code)
    root = p.var_dir / "backups" / code
    base, archive = root / "base", root / "wal"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    scratch_dir = p.var_dir / "restore" / f"{code}-{stamp}"
    scratch_port = _free_port(d.pg_port + 3500)
    say(f"restore drill on {p.name}/{code}: WAL archive, base backup under load, restore point, PITR into port "
        f"{scratch_port}")
    fx = _setup(p, code, loans=4)
    run_id = uuid.uuid4().hex[:10]
    shutil.rmtree(root, ignore_errors=True)  # the last run's backup and archive only
    root.mkdir(parents=True)
    chown_to(root, postgres.PG_USER)
    tl: dict[str, float | None] = {}
    t0 = time.monotonic()
    restored = None
    try:
        start_archiver(p, code, inst, archive)
        load = LoadGenerator(fx["url"], fx["token"], fx["loans"], run_id + "a", clients=clients)
        load.start()
        say("base backup (pg_basebackup) while repayments are posted")
        tl["backup_start"] = time.monotonic()
        run([str(postgres.PG_BIN / "pg_basebackup"), "-D", str(base), "-h", str(postgres.socket_dir(p)),
             "-p", str(inst.port), "-U", d.pg_user, "-X", "none", "-c", "fast", "--no-slot"],
            what=f"pg_basebackup of {code}", log=postgres.ctl_log(p, code), user=postgres._user(), timeout=1800)
        tl["backup_done"] = time.monotonic()
        while len(load.acknowledged()) < writes_before:
            time.sleep(0.1)
        load.stop()
        before = load.acknowledged()
        say(f"target: {len(before)} repayments acknowledged; checksums and restore point")
        sums_at_target = checksums(inst, d.pg_name)
        point = f"drill-{run_id}"
        lsn = pg_standby.query(inst, "SELECT pg_create_restore_point(%s)", (point,))[0][0]
        tl["target"] = time.monotonic()
        target_at = datetime.now(UTC).isoformat(timespec="seconds")
        after_load = LoadGenerator(fx["url"], fx["token"], fx["loans"], run_id + "b", clients=clients)
        after_load.start()
        while len(after_load.acknowledged()) < writes_after:
            time.sleep(0.1)
        after_load.stop()
        later = after_load.acknowledged()
        # close the WAL segment holding the restore point so the archiver writes it out whole
        walfile = pg_standby.query(inst, "SELECT pg_walfile_name(%s::pg_lsn)", (lsn,))[0][0]
        pg_standby.query(inst, "SELECT pg_switch_wal()")
        if not _wait_archived(archive, walfile):
            raise DrillRefused(f"the WAL segment {walfile} with the restore point did not reach the archive")

        say(f"restore into {scratch_dir} (port {scratch_port}) up to the restore point {point}")
        tl["restore_start"] = time.monotonic()
        scratch_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(base, scratch_dir, symlinks=True)
        chown_to(scratch_dir, postgres.PG_USER)
        scratch_dir.chmod(0o700)
        with open(scratch_dir / "postgresql.auto.conf", "a") as fh:
            fh.write(f"\n# --- Letsema restore drill ---\nport = {scratch_port}\n"
                     f"restore_command = 'cp {archive}/%f %p'\n"
                     f"recovery_target_name = '{point}'\nrecovery_target_action = 'promote'\n"
                     "synchronous_standby_names = ''\narchive_mode = off\n")
        (scratch_dir / "standby.signal").unlink(missing_ok=True)
        (scratch_dir / "recovery.signal").write_text("")
        chown_to(scratch_dir, postgres.PG_USER)
        log = postgres.log_file(p, code).parent / f"restore-{code}.log"
        restored = pg_standby.Instance(p, code, scratch_port)
        run([str(postgres.PG_BIN / "pg_ctl"), "-D", str(scratch_dir), "-l", str(log), "-w", "-t", "600",
             "-o", f"-p {scratch_port} -k {postgres.socket_dir(p)}", "start"],
            what="PostgreSQL restore instance start", log=postgres.ctl_log(p, code), user=postgres._user(),
            timeout=900)
        deadline = time.monotonic() + TARGET_RESTORE_S * 2
        while pg_standby.query(restored, "SELECT pg_is_in_recovery()")[0][0]:
            if time.monotonic() > deadline:
                raise DrillRefused("the restored instance did not finish recovery")
            time.sleep(0.2)
        tl["restore_done"] = time.monotonic()
        sums_restored = checksums(restored, d.pg_name)
        refs_later = [w.reference for w in later]
        later_found = pg_standby.query(restored, "SELECT count(*) FROM repayments_repayment WHERE reference = "
                                                 "ANY(%s)", (refs_later,), dbname=d.pg_name)[0][0]
        before_found = pg_standby.query(restored, "SELECT count(*) FROM repayments_repayment WHERE reference = "
                                                  "ANY(%s)", ([w.reference for w in before],), dbname=d.pg_name)[0][0]
        loans_by_db = {}  # the restore replays the whole instance: every database in it, with its loans
        for (db,) in pg_standby.query(restored, "SELECT datname FROM pg_database WHERE NOT datistemplate "
                                                "AND datname <> 'postgres' ORDER BY datname"):
            has = pg_standby.query(restored, "SELECT to_regclass('loans_loan') IS NOT NULL", dbname=db)[0][0]
            loans_by_db[db] = pg_standby.query(restored, "SELECT count(*) FROM loans_loan", dbname=db)[0][0] if has \
                else None
        segments = len([f for f in archive.iterdir() if not f.name.endswith(".partial")])
        size_mb = sum(f.stat().st_size for f in base.rglob("*") if f.is_file()) / 2**20
    finally:
        if restored is not None or scratch_dir.exists():
            try:
                run([str(postgres.PG_BIN / "pg_ctl"), "-D", str(scratch_dir), "-m", "immediate", "-w", "stop"],
                    what="PostgreSQL restore instance stop", log=postgres.ctl_log(p, code), user=postgres._user())
            except Exception:  # noqa: BLE001 - it may never have started
                pass
            shutil.rmtree(scratch_dir, ignore_errors=True)
        stop_archiver(p, code, inst)

    equal = sums_restored == sums_at_target
    restore_s = tl["restore_done"] - tl["restore_start"]
    rep.timeline_s = {k: round(v - t0, 2) for k, v in tl.items()}
    rep.results = {
        "restore_point": point, "target_at": target_at,
        "base_backup_s": round(tl["backup_done"] - tl["backup_start"], 1), "base_backup_mb": round(size_mb, 1),
        "wal_segments_archived": segments,
        "restore_s": round(restore_s, 1),
        "loans": sums_at_target["loans_loan"]["rows"],
        "loans_in_restored_instance": sum(v or 0 for v in loans_by_db.values()),
        "databases_restored": loans_by_db,
        "journal_lines": sums_at_target["ledger_journalline"]["rows"],
        "checksums_equal": equal,
        "tables_differing": [t for t in MONEY_TABLES if sums_restored[t] != sums_at_target[t]],
        "writes_before_target_restored": f"{before_found}/{len(before)}",
        "later_writes_restored": later_found,
    }
    rep.writes = {"acknowledged_before_target": len(before), "acknowledged_after_target": len(later)}
    rep.trial_balance = {"at_target": sums_at_target, "restored": sums_restored}
    problems = [] if _healthz(d.public_url) == 200 else [f"node {code}: /healthz not 200"]
    if pg_standby.query(inst, "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (SLOT,)):
        problems.append(f"{code}: replication slot {SLOT} still exists")
    rep.not_healthy, rep.healthy_after = problems, not problems
    rep.passed = bool(equal and later_found == 0 and before_found == len(before) and restore_s <= TARGET_RESTORE_S
                      and rep.healthy_after)
    rep.ended_at = datetime.now(UTC).isoformat(timespec="seconds")
    _save(p, rep)
    r = rep.results
    _print_rows(rep, [
        ("scenario", f"restore of {p.name}/{code} to restore point {point}"),
        ("started / ended (UTC)", f"{rep.started_at} / {rep.ended_at}"),
        ("base backup (s, MB)", f"{r['base_backup_s']} s, {r['base_backup_mb']} MB"),
        ("WAL segments archived", segments),
        ("loans / journal lines at the target", f"{r['loans']} / {r['journal_lines']}  (district database)"),
        ("loans in the whole restored instance", f"{r['loans_in_restored_instance']} in {len(loans_by_db)} database(s)"),
        ("restore: copy + replay until promoted (s)", f"{r['restore_s']}  (target <= {TARGET_RESTORE_S:.0f})"),
        ("checksums of the money tables equal", "yes" if equal else "NO: " + ", ".join(r["tables_differing"])),
        ("writes before the target, restored", r["writes_before_target_restored"]),
        ("writes after the target, restored", f"{later_found}  (must be 0)"),
        ("cluster healthy after", "yes" if rep.healthy_after else "NO: " + "; ".join(rep.not_healthy)),
        ("result", "PASS" if rep.passed else "FAIL"),
        ("report", rep.file),
    ], out)
    return rep
