"""Static checks of every CQL statement in the code (reliability notes R4, issue #6: "never mix plain writes and
lightweight transactions on the same cells"; immutable inserts, no counters).

A ring table written by a lightweight transaction anywhere (``... IF ...``) must be written only that way: a plain
write to it would bypass Paxos and could be lost or reordered against the compare-and-set. And no table has a
counter column (counters are neither idempotent nor replayable, so the outbox could not repeat a write safely).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("node", "replication", "federation", "cluster", "bench", "tests")
WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:\w+\.)?(\w+)", re.I | re.S)


def _strings(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):  # f-string: its literal parts, placeholders as {}
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def cql_writes() -> list[tuple[str, str, str]]:
    """(where, table, statement) for every string in the code that is a CQL write to a ring table."""
    ring_tables = set()
    for f in (REPO / "replication" / "cql").glob("*.cql"):
        ring_tables |= {m.lower() for m in re.findall(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:[\w{}]+\.)?(\w+)",
                                                       f.read_text(), re.I)}
    found = []
    for top in SOURCES:
        for path in (REPO / top).rglob("*.py"):
            if path.name == Path(__file__).name:
                continue
            for line, text in _strings(ast.parse(path.read_text(), str(path))):
                m = WRITE.match(text)
                if m and m.group(2).lower() in ring_tables:
                    found.append((f"{path.relative_to(REPO)}:{line}", m.group(2).lower(), " ".join(text.split())))
    return found


def test_the_scan_finds_the_known_writes():
    # the check below means something only if the scan sees the writes we know of, LWT and plain
    tables = {t for _, t, _ in cql_writes()}
    assert {"credit_holds", "borrower_directory", "credit_events", "network_policy", "node_directory"} <= tables


def test_a_table_written_by_compare_and_set_is_never_written_plainly():
    writes = cql_writes()
    lwt = re.compile(r"\bIF\s+(NOT\s+EXISTS|EXISTS|\w+\s*(=|!=|<|>|IN\b))", re.I)
    lwt_tables = {t for _, t, stmt in writes if lwt.search(stmt)}
    assert {"credit_holds", "borrower_directory"} <= lwt_tables
    plain = [(where, stmt) for where, t, stmt in writes if t in lwt_tables and not lwt.search(stmt)]
    assert plain == [], f"plain writes to tables written by lightweight transactions: {plain}"


def test_no_counter_columns_and_events_are_inserts_only():
    for f in (REPO / "replication" / "cql").glob("*.cql"):
        cql = re.sub(r"--[^\n]*", "", f.read_text())  # the statements, not the comments
        assert not re.search(r"\w+\s+counter\b", cql, re.I), f"{f.name} declares a counter column"
    # outside the tests (which delete an event on purpose to check reconciliation), events are only inserted
    events = [(where, stmt) for where, t, stmt in cql_writes() if t == "credit_events" and not where.startswith("tests/")]
    assert events and all(stmt.upper().startswith("INSERT INTO") for _, stmt in events), events
