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
    answer = last_answer(done.stdout)
    assert answer["history"] == "store" and answer["fallback"] is None
    assert len(answer["products"]) == 5
    frame = pd.read_parquet(work / "recommendations.parquet")
    row = frame[frame["user_id"] == 1001].sort_values("rank")
    assert row["product_id"].tolist() == answer["product_ids"]
    assert row["score"].to_numpy() == pytest.approx(answer["scores"], abs=1e-6)


def test_the_readmes_six_commands_are_the_guides():
    """The README's "your orders in six commands" are the guide's, which the test above runs:
    each `basket` and `torchserve` command of the README, with its folder as the guide's
    $WORK, is a command of the guide."""
    blocks = shell_blocks(ROOT / "README.md")
    six = next(block for block in blocks if "basket import transactions" in block)
    guide = " ".join(" ".join(shell_blocks(GUIDE)).replace("\\\n", " ").split())
    readme = six.replace("\\\n", " ").replace("$PWD/shop", "$WORK").replace("shop/", "$WORK/")
    commands = [" ".join(line.split()) for line in readme.splitlines()]
    commands = [c.split(" #")[0].strip() for c in commands if c.startswith(("basket", "torch"))]
    assert len(commands) >= 5
    for command in commands:
        words = [word for word in command.split() if not word.startswith("--department")]
        assert all(word in guide for word in words), command


def last_answer(output: str) -> dict:
    """The last JSON answer (an object with "products") printed in `output`."""
    start = (
        output.rindex('{\n  "products"')
        if '{\n  "products"' in output
        else output.rindex('{"products"')
    )
    return json.JSONDecoder().raw_decode(output[start:])[0]
