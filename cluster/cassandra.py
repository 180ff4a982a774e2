"""Apache Cassandra 5.0 from the Maven Central jars (cassandra-runtime/lib) on OpenJDK 17.

Node i of a ring listens on 127.0.0.(base+i-1): storage port 7000, CQL port 9042, its own JMX port.
Node 1 is the only seed; every node has balanced single tokens and ``auto_bootstrap: false``, so nodes
start one after another without bootstrap streaming or gossip-settle sleeps.
"""

from __future__ import annotations

import glob
import os
import signal
import threading
import time
from pathlib import Path

from cluster.procs import StepFailed, port_open, read_pid, spawn, stop_pidfile
from cluster.profiles import Profile
from config.district import REPO_ROOT

LIB_DIR = REPO_ROOT / "cassandra-runtime" / "lib"
CQL_PORT = 9042
START_TIMEOUT = float(os.environ.get("LETSEMA_CASSANDRA_START_TIMEOUT", "240"))

JVM_FLAGS = [
    "-ea", "-da:net.openhft...", "-XX:+UseThreadPriorities", "-XX:+HeapDumpOnOutOfMemoryError",
    "-XX:+ExitOnOutOfMemoryError", "-Xss256k", "-XX:+UseTLAB", "-XX:+ResizeTLAB", "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true", "-Dchronicle.analytics.disable=true",
    "-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled", "-XX:MaxTenuringThreshold=1", "-XX:MaxGCPauseMillis=300",
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.management/com.sun.jmx.remote.security=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
    "-Dcom.sun.management.jmxremote.authenticate=false",
    "-Dcassandra-foreground=yes",
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    # (not 0: with AllowAllAuthenticator no login waits for the default role, and 0 retries its setup in a busy
    # loop — millions of log lines and a core — whenever a node is down or not yet up)
    "-Dcassandra.superuser_setup_delay_ms=10000",
    "-Dcassandra.ring_delay_ms=5000",
]

LOGBACK = """<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>${cassandra.logdir}/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <filter class="ch.qos.logback.classic.filter.ThresholdFilter"><level>WARN</level></filter>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def java_bin() -> str:
    explicit = os.environ.get("LETSEMA_JAVA")
    if explicit:
        return explicit
    found = sorted(glob.glob("/usr/lib/jvm/java-17-openjdk-*/bin/java"))
    if not found:
        raise StepFailed("Cassandra: OpenJDK 17 not found under /usr/lib/jvm (apt-get install openjdk-17-jdk-headless)")
    return found[0]


def check_jars() -> None:
    if not list(LIB_DIR.glob("cassandra-all-5.0*.jar")):
        raise StepFailed(f"Cassandra jars missing in {LIB_DIR}: run './letsema install' (mvn dependency:copy-dependencies)")


def balanced_tokens(n: int) -> list[int]:
    return [i * (2**64 // n) - 2**63 for i in range(n)]


def node_dir(p: Profile, i: int) -> Path:
    return p.var_dir / "cassandra" / f"node{i}"


def pidfile(p: Profile, i: int) -> Path:
    return p.run_dir / f"cassandra{i}.pid"


def log_file(p: Profile, i: int) -> Path:
    return node_dir(p, i) / "logs" / "system.log"


def ring_size(p: Profile) -> int:
    """How many nodes this profile's ring was created with (0 = never)."""
    f = p.var_dir / "cassandra" / "ring_size"
    try:
        return int(f.read_text())
    except (OSError, ValueError):
        return 0


def paxos_variant(p: Profile) -> str:
    """The ring's Paxos implementation: ``v2`` (2 round trips per compare-and-set instead of v1's 4, 1-2 per SERIAL
    read instead of 3) for every ring created since it was introduced; a ring created before keeps ``v1`` until its
    operator switches it (docs/runbooks/paxos-v2.md) — every node of a ring must run the same variant."""
    f = p.var_dir / "cassandra" / "paxos_variant"
    try:
        variant = f.read_text().strip()
    except OSError:
        return "v1"
    if variant not in ("v1", "v2"):
        raise StepFailed(f"{f} says {variant!r}; it must be v1 or v2")
    return variant


def write_config(p: Profile, i: int, n: int) -> None:
    home = node_dir(p, i)
    for sub in ("conf", "data", "commitlog", "hints", "saved_caches", "logs", "cdc_raw"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    token = balanced_tokens(n)[i - 1]
    ip = p.ring_ip(i)
    yaml = f"""# Generated by the Letsema cluster launcher: node {i} of {n}.
cluster_name: 'letsema_{p.name}'
num_tokens: 1
initial_token: '{token}'
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{p.ring_ip(1)}:7000"
listen_address: {ip}
rpc_address: {ip}
storage_port: 7000
native_transport_port: {CQL_PORT}
start_native_transport: true
auto_bootstrap: false
data_file_directories:
  - {home}/data
commitlog_directory: {home}/commitlog
hints_directory: {home}/hints
saved_caches_directory: {home}/saved_caches
cdc_raw_directory: {home}/cdc_raw
# batch: a replica acknowledges a write only once its commit log is on disk, so a credit event or stacking hold that
# a quorum acknowledged survives every ring process dying at once (a power cut). With 'periodic' (Cassandra's
# default) a killed node loses its last acknowledged writes; measured cost and trial in docs/credit-network.md.
commitlog_sync: batch
commitlog_segment_size: 32MiB
commitlog_total_space: 512MiB
commitlog_disk_access_mode: legacy
disk_failure_policy: stop
commit_failure_policy: stop
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer
auto_snapshot: false
snapshot_before_compaction: false
incremental_backups: false
hinted_handoff_enabled: true
max_hint_window: 3h
concurrent_compactors: 1
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
file_cache_size: 64MiB
key_cache_size: 16MiB
counter_cache_size: 0MiB
row_cache_size: 0MiB
read_request_timeout: 10000ms
range_request_timeout: 10000ms
write_request_timeout: 5000ms
request_timeout: 10000ms
storage_compatibility_mode: NONE
paxos_variant: {paxos_variant(p)}
"""
    (home / "conf" / "cassandra.yaml").write_text(yaml)
    (home / "conf" / "logback.xml").write_text(LOGBACK)


def jit_flags() -> list[str]:
    """The full tiered JIT by default (measured: the credit-report read p50 11.3 -> 4.3 ms once warm);
    LETSEMA_CASSANDRA_JIT=c1 stops at C1 for a little less compile work while the node starts on a small machine."""
    mode = os.environ.get("LETSEMA_CASSANDRA_JIT", "full")
    if mode not in ("full", "c1"):
        raise StepFailed(f"LETSEMA_CASSANDRA_JIT must be 'full' or 'c1', not {mode!r}")
    return ["-XX:TieredStopAtLevel=1"] if mode == "c1" else []


def command(p: Profile, i: int, heap: str) -> list[str]:
    home = node_dir(p, i)
    jamm = sorted(LIB_DIR.glob("jamm-*.jar"))
    agent = [f"-javaagent:{jamm[0]}"] if jamm else []
    return [
        java_bin(), f"-Xms{heap}", f"-Xmx{heap}", *JVM_FLAGS, *jit_flags(), *agent,
        f"-Dcassandra.jmx.local.port={p.jmx_port(i)}",
        f"-Dlogback.configurationFile={home}/conf/logback.xml",
        f"-Dcassandra.logdir={home}/logs",
        f"-Dcassandra.storagedir={home}",
        f"-Dcassandra.config=file://{home}/conf/cassandra.yaml",
        "-cp", f"{home}/conf:{LIB_DIR}/*",
        "org.apache.cassandra.service.CassandraDaemon",
    ]


def is_up(p: Profile, i: int) -> bool:
    return read_pid(pidfile(p, i)) is not None and port_open(p.ring_ip(i), CQL_PORT)


def start_node(p: Profile, i: int, n: int, heap: str | None = None) -> None:
    if read_pid(pidfile(p, i)) is not None:
        if port_open(p.ring_ip(i), CQL_PORT, timeout=1):
            return
    else:
        check_jars()
        _wait_port_closed(p, i)  # a node killed a moment ago may still hold its port while the kernel tears it down
        if port_open(p.ring_ip(i), CQL_PORT):
            raise StepFailed(f"Cassandra node {i}: {p.ring_ip(i)}:{CQL_PORT} is already taken by another process")
        write_config(p, i, n)
        heap = heap or ("1G" if n == 1 else "768M")
        env = dict(os.environ, MALLOC_ARENA_MAX="4")
        spawn(command(p, i, heap), log=node_dir(p, i) / "logs" / "stdout.log", pidfile=pidfile(p, i), env=env)
    _wait_ready(p, i)


def _wait_port_closed(p: Profile, i: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and port_open(p.ring_ip(i), CQL_PORT, timeout=0.5):
        time.sleep(0.2)


def start_nodes(p: Profile, nodes: list[int], n: int) -> list[str]:
    """Start ``nodes`` side by side (each waits for its own CQL port); the errors of those that did not start."""
    errors: list[str] = []

    def start(i: int) -> None:
        try:
            start_node(p, i, n)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who says the ring is not healthy
            errors.append(f"ring node {i}: {exc}")

    threads = [threading.Thread(target=start, args=(i,)) for i in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def kill_nodes(p: Profile, nodes: list[int]) -> None:
    """SIGKILL ``nodes`` at the same instant (a power cut, not a shutdown: no flush, no goodbye to the others)."""
    pids = [(i, read_pid(pidfile(p, i))) for i in nodes]
    for _, pid in pids:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for i, _ in pids:
        stop_node(p, i, kill=True)  # waits for the process to be gone, removes the pid file


def _wait_ready(p: Profile, i: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if read_pid(pidfile(p, i)) is None:
            raise StepFailed(f"Cassandra node {i} exited during start-up; see {log_file(p, i)} and {node_dir(p, i)}/logs/stdout.log")
        if port_open(p.ring_ip(i), CQL_PORT, timeout=1):
            return
        time.sleep(1)
    raise StepFailed(f"Cassandra node {i} not ready after {START_TIMEOUT:.0f}s; see {log_file(p, i)}")


def start_ring(p: Profile, n: int, progress=None) -> None:
    existing = ring_size(p)
    if existing and existing != n:
        raise StepFailed(
            f"the {p.name} ring was created with {existing} node(s); './letsema reset' to change it to {n}"
        )
    (p.var_dir / "cassandra").mkdir(parents=True, exist_ok=True)
    if not existing:  # a new ring starts on Paxos v2; an existing one keeps what it was created with
        (p.var_dir / "cassandra" / "paxos_variant").write_text("v2\n")
    (p.var_dir / "cassandra" / "ring_size").write_text(str(n))
    for i in range(1, n + 1):
        if progress:
            with progress.step(f"Cassandra node {i}/{n} on {p.ring_ip(i)}:{CQL_PORT}"):
                start_node(p, i, n)
        else:
            start_node(p, i, n)


def stop_node(p: Profile, i: int, *, kill: bool = False) -> None:
    stop_pidfile(pidfile(p, i), timeout=60, sig=signal.SIGKILL if kill else signal.SIGTERM)


def stop_ring(p: Profile) -> None:
    for i in range(ring_size(p) or 3, 0, -1):
        stop_node(p, i)
