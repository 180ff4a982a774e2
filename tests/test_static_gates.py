"""Static security gates over the code (reliability notes S6 and S11): bandit finds no un-waived issue of medium
severity or more, and no query is built with Django's raw-SQL escape hatches. A waiver is a ``# nosec BNNN --
reason`` on the line, after review: every SQL text built with an f-string holds only names and fragments from
code (model tables, allowlisted report fragments), never a request's value — those are bound parameters."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CODE = ["node", "federation", "replication", "config", "cluster"]


def test_bandit_finds_no_unwaived_issue():
    res = subprocess.run([sys.executable, "-m", "bandit", "-q", "-r", *CODE, "-ll", "-x", "*/migrations/*"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_no_raw_sql_escape_hatches():
    """``.raw(``, ``.extra(`` and ``RawSQL`` put SQL text into the ORM where reviewers do not look for it."""
    found = []
    for root in CODE:
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr in ("raw", "extra"):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.func.attr}(")
                if isinstance(node, ast.Name) and node.id == "RawSQL":
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} RawSQL")
    assert found == []
