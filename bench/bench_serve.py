"""Serving benchmark: `basket.mar` on a real TorchServe under wrk, against in-process answers.

The model is the winner of a retrain run (default: the newest run of the main
job's retrain DAG under `runs/airflow/`; when there is none, this script runs
`basket retrain` on 2,000 synthetic customers first). Requests are real histories of that data set, with
their order context, cycled by wrk (a C load generator, Debian package `wrk`)
from a Lua script. Measured in the same run:

- baseline: `OnlineScorer.answer_batch` in this process, one request at a time
  (latency) and in batches of the archive's batch size (throughput), JSON
  encoding included, no HTTP;
- TorchServe: p50/p99 latency at concurrency 1, throughput at concurrency 16.

Prints the figures, their ratios to the baseline, and the machine.
Usage: python bench/bench_serve.py [--run RUN] [--candidate cnngru] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from basket.data import build_histories, load_tables
from basket.data.history import scoring_users
from basket.online import OnlineScorer
from basket.package import package_mar
from basket.serving_config import ServingConfig
from basket.testing.requests import history_request
from basket.testing.torchserve_server import LocalTorchServe

REPO = Path(__file__).resolve().parents[1]
N_REQUESTS = 500
# Issue 13's targets: p99 at concurrency 1, requests per second at concurrency 16.
TARGET_P99_MS, TARGET_RPS = 15, 1000


def ensure_run(run_dir: Path, data_dir: Path) -> None:
    """Retrain on 2,000 synthetic customers unless `run_dir` already has a winner."""
    if (run_dir / "winner" / "model.json").is_file():
        return
    basket = [sys.executable, "-m", "basket.cli"]
    if not (data_dir / "orders.csv").is_file():
        subprocess.run([*basket, "synth", "--users", "2000", "--out", str(data_dir)], check=True)
    subprocess.run([*basket, "retrain", str(data_dir), "--out", str(run_dir)], check=True)


def latest_run(runs_dir: Path) -> Path | None:
    """The newest run folder with a winner (the main job's retrain DAG writes them here)."""
    runs = [p.parent.parent for p in runs_dir.glob("*/winner/model.json")]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def request_bodies(data_dir: Path, n: int) -> list[str]:
    """JSON bodies of `n` customers' real histories (with order context), spread over the data."""
    histories = build_histories(load_tables(data_dir))
    histories = histories.select_users(scoring_users(histories))
    users = np.linspace(0, histories.n_users - 1, min(n, histories.n_users)).astype(int)
    return [json.dumps(history_request(histories, int(u))) for u in users]


def in_process(scorer: OnlineScorer, bodies: list[str], batch: int) -> dict:
    """Latencies one at a time and throughput in batches, JSON in and out, no HTTP."""
    latencies = []
    for body in bodies:
        started = time.perf_counter()
        json.dumps(scorer.answer_batch([body.encode()])[0][1])
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    for start in range(0, len(bodies), batch):
        for _, answer in scorer.answer_batch([b.encode() for b in bodies[start : start + batch]]):
            json.dumps(answer)
    seconds = time.perf_counter() - started
    return {
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "rps": len(bodies) / seconds,
    }


def lua_script(bodies: list[str], folder: Path) -> Path:
    """A wrk script that POSTs the bodies in turn."""
    entries = ",\n".join(f"[==[{body}]==]" for body in bodies)
    script = folder / "post.lua"
    script.write_text(
        f"bodies = {{\n{entries}\n}}\n"
        "counter = 0\n"
        "request = function()\n"
        "  counter = counter + 1\n"
        "  return wrk.format('POST', '/predictions/basket', "
        "{['Content-Type'] = 'application/json'}, bodies[(counter % #bodies) + 1])\n"
        "end\n"
    )
    return script


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> dict:
    """wrk's p50/p99 latency (ms), requests per second and non-2xx count."""
    threads = min(connections, 2)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    out = subprocess.run(
        [*command, "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "p50_ms": latency("50%"),
        "p99_ms": latency("99%"),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="default: the newest DAG run")
    parser.add_argument("--data", type=Path, default=None, help="default: the run's data folder")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument(
        "--candidate", default=None, help="serve RUN/models/NAME instead of the winner"
    )
    parser.add_argument("--workers", type=int, default=ServingConfig.workers)
    parser.add_argument("--batch-size", type=int, default=ServingConfig.batch_size)
    parser.add_argument("--max-batch-delay", type=int, default=ServingConfig.max_batch_delay_ms)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_serve: needs wrk (Debian: apt-get install wrk)")
    args.run = args.run or latest_run(REPO / "runs" / "airflow")
    if args.run is None:
        args.run, data_dir = (
            REPO / "bench" / "out" / "serve_run",
            REPO / "bench" / "out" / "serve_data",
        )
        ensure_run(args.run, data_dir)
    data_dir = args.data or Path(json.loads((args.run / "config.json").read_text())["data_dir"])
    config = ServingConfig(
        workers=args.workers, batch_size=args.batch_size, max_batch_delay_ms=args.max_batch_delay
    )
    model_dir = args.run / "models" / args.candidate if args.candidate else args.run / "winner"
    bodies = request_bodies(data_dir, N_REQUESTS)
    scorer = OnlineScorer.from_model_dir(model_dir)
    print(f"machine: {describe_machine()}")
    print(
        f"model: {scorer.model.kind} {scorer.version}, {len(scorer.model.vocab):,} products; "
        f"{len(bodies)} real histories, mean {np.mean([len(b) for b in bodies]) / 1e3:.1f} kB per request"
    )
    print(
        f"TorchServe: {config.workers} workers, batch {config.batch_size}, "
        f"max delay {config.max_batch_delay_ms} ms"
    )
    base = in_process(scorer, bodies, config.batch_size)
    del scorer
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        package_mar(model_dir, folder / "store" / "basket.mar", config=config)
        script = lua_script(bodies, folder)
        with LocalTorchServe(model_store=folder / "store") as server:
            url = f"{server.inference_url}/predictions/basket"
            run_wrk(url, script, 4, 3)  # warm-up
            one = run_wrk(url, script, 1, args.seconds)
            many = run_wrk(url, script, 16, args.seconds)
    print(
        f"in-process (baseline): p50 {base['p50_ms']:.2f} ms, p99 {base['p99_ms']:.2f} ms one "
        f"at a time; {base['rps']:.0f} requests/s in batches of {config.batch_size}"
    )
    met = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    print(
        f"TorchServe c=1:  p50 {one['p50_ms']:.2f} ms, p99 {one['p99_ms']:.2f} ms "
        f"(target p99 <= {TARGET_P99_MS} ms: {met(one['p99_ms'] <= TARGET_P99_MS)}), "
        f"{one['rps']:.0f} requests/s, non-2xx {one['non_2xx']}; "
        f"p50 ratio to in-process {one['p50_ms'] / base['p50_ms']:.2f}x"
    )
    print(
        f"TorchServe c=16: {many['rps']:.0f} requests/s (target >= {TARGET_RPS:,}: "
        f"{met(many['rps'] >= TARGET_RPS)}), p50 {many['p50_ms']:.2f} ms, p99 "
        f"{many['p99_ms']:.2f} ms, non-2xx {many['non_2xx']}; "
        f"throughput ratio to in-process batches {many['rps'] / base['rps']:.2f}x"
    )


if __name__ == "__main__":
    main()
