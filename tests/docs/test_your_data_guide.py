"""The "Your own data" guide runs as written: every shell block of docs/your-data.md, in
order, on the sample transactions file, ends in a 200 answer by customer id from a real
TorchServe, equal to batch scoring's rows for that customer."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "your-data.md"

pytestmark = pytest.mark.slow


def shell_blocks(page: Path) -> list[str]:
    """The ```bash blocks of a Markdown page, in order."""
    return re.findall(r"```bash\n(.*?)```", page.read_text(), re.S)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_guide_has_the_steps_a_newcomer_needs():
    script = "\n".join(shell_blocks(GUIDE))
    for step in ("basket import transactions examples/transactions.csv", "basket validate",
                 "basket retrain", "basket package", "basket store load", "torchserve --start",
                 '{"user_id": 1001', "basket score"):  # fmt: skip
        assert step in script, step


def test_every_block_of_the_guide_runs_to_an_answer_by_id(tmp_path):
    assert all(port_is_free(p) for p in (8080, 8081, 8082)), "the guide's ports are taken"
    work = tmp_path / "my-shop"
    script = "set -euo pipefail\ntrap 'torchserve --stop >/dev/null 2>&1 || true' EXIT\n"
    script += "\n".join(shell_blocks(GUIDE))
    env = {**os.environ, "WORK": str(work), "TQDM_DISABLE": "1"}
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    answer = json.loads(re.search(r'(\{\s*"products".*?"snapshot": "[^"]*"\s*\})', done.stdout,
                                  re.S).group(1))  # fmt: skip
    assert answer["history"] == "store" and answer["fallback"] is None
    assert len(answer["products"]) == 5
    frame = pd.read_parquet(work / "recommendations.parquet")
    row = frame[frame["user_id"] == 1001].sort_values("rank")
    assert row["product_id"].tolist() == answer["product_ids"]
    assert row["score"].to_numpy() == pytest.approx(answer["scores"], abs=1e-6)
