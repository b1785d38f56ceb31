"""Every benchmark's result as JSON under bench/results/: the one source of the figures the
docs show (`scripts/gen_docs.py` makes the Benchmarks page from these files).

Each file is one benchmark's history, newest run last:

    {"benchmark": "score", "title": ..., "command": ..., "runs": [RUN, ...]}

and each RUN holds the date, the commit, the machine, the parameters, one table
(`columns`, `rows`) and the targets, each with its measured value and whether it was met.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from _machine import describe_machine

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Target:
    """One target of a benchmark: what is aimed at, what was measured, and whether it holds."""

    name: str  # what is aimed at, e.g. "basket score end to end >= 4,000 customers/s"
    measured: str  # the figure it is judged on, as printed, e.g. "4,682 customers/s"
    met: bool


def commit() -> str:
    """The checkout's commit (short hash), "+changes" when the work tree differs from it
    (results this or another benchmark wrote under bench/results/ aside)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results")
    return head + ("+changes" if changed else "")


def record(
    benchmark: str,
    title: str,
    columns: list[str],
    rows: list[list],
    targets: list[Target] = (),
    parameters: dict | None = None,
    notes: str = "",
) -> Path:
    """Append this run (its table, targets and parameters, with the date, commit, machine and
    command line) to bench/results/BENCHMARK.json; returns that file."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{benchmark}.json"
    history = json.loads(path.read_text()) if path.exists() else {"runs": []}
    run = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "machine": describe_machine(),
        "command": " ".join(["python", *sys.argv]),
        "parameters": parameters or {},
        "columns": columns,
        "rows": rows,
        "targets": [asdict(target) for target in targets],
        "notes": notes,
    }
    history.update(benchmark=benchmark, title=title)
    history["runs"].append(run)
    path.write_text(json.dumps(history, indent=1, default=float) + "\n")
    print(f"recorded in {path}")
    return path
