"""Serving benchmark: `basket.mar` on a real TorchServe under wrk, against in-process answers.

The model is the winner of a retrain run (default: the newest run of the main
job's retrain DAG under `runs/airflow/`; when there is none, this script runs
`basket retrain` on 2,000 synthetic customers first). Requests are real histories of that data set, with
their order context, cycled by wrk (a C load generator, Debian package `wrk`)
from a Lua script. Measured in the same run:

- baseline: `OnlineScorer.answer_batch` in this process, one request at a time
  (latency) and in batches of the archive's batch size (throughput), JSON
  encoding included, no HTTP;
- TorchServe: p50/p99 latency at concurrency 1, throughput at concurrency 16, for the
  full-history requests and for `{"user_id": u}` alone (the same customers) with the
  history store on SQLite and on Redis (127.0.0.1:6379, a prefix of its own, removed
  after), each server started with its store;
- Triton (when `.venv-triton` exists: `make test` builds it), the same archive settings
  and the same customers as KServe-v2 JSON: full histories and ids on each store;
- the store read itself (one customer, in process) on both backends;
- where a request's CPU goes at concurrency 16: the CPU seconds each group of processes
  used during the run (the server's front end: TorchServe's Java, tritonserver; its model
  workers: the Python processes that score; wrk; everything else on the machine), per
  request served.

Prints the figures, their ratios to the baseline and to the full-history request, and
the machine. Usage: python bench/bench_serve.py [--run RUN] [--candidate cnngru] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import Target, record
from basket.config.serving import ServingConfig
from basket.data import build_histories, load_tables
from basket.serving.batch import score_users
from basket.serving.online import OnlineScorer
from basket.serving.package import package_mar
from basket.serving.store.base import STORE_URL_ENV
from basket.serving.store.connect import open_store
from basket.serving.store.fill import load_snapshot
from basket.serving.triton.client import v2_json
from basket.serving.triton.repository import TritonConfig, export_triton_repository
from basket.testing.histories import scoring_users
from basket.testing.requests import history_request
from basket.testing.torchserve_server import LocalTorchServe
from basket.testing.triton_server import LocalTriton

REPO = Path(__file__).resolve().parents[1]
TRITON_VENV = REPO / ".venv-triton"
N_REQUESTS = 500
# Issue 13's targets: p99 at concurrency 1, requests per second at concurrency 16.
TARGET_P99_MS, TARGET_RPS = 15, 1000
# Issue 20's: a store read's p99 on Redis; an id request no slower than a full history.
TARGET_STORE_READ_P99_MS = 1.0
# Requests by id answered from the stored nightly answers, where the model is expensive.
NIGHTLY_RPS = 2000
NIGHTLY_P99_MS = {"TorchServe": 10, "Triton": 5}


def ensure_run(run_dir: Path, data_dir: Path) -> None:
    """Retrain on 2,000 synthetic customers unless `run_dir` already has a winner."""
    if (run_dir / "winner" / "model.json").is_file():
        return
    basket = [sys.executable, "-m", "basket.commands.cli"]
    if not (data_dir / "orders.csv").is_file():
        subprocess.run([*basket, "synth", "--users", "2000", "--out", str(data_dir)], check=True)
    subprocess.run([*basket, "retrain", str(data_dir), "--out", str(run_dir)], check=True)


def latest_run(runs_dir: Path) -> Path | None:
    """The newest run folder with a winner (the main job's retrain DAG writes them here)."""
    runs = [p.parent.parent for p in runs_dir.glob("*/winner/model.json")]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def request_bodies(data_dir: Path, n: int) -> tuple[list[str], list[str]]:
    """JSON bodies of `n` customers' real histories (with order context), spread over the data,
    and the same customers' `{"user_id": u}` bodies."""
    histories = build_histories(load_tables(data_dir))
    histories = histories.select_users(scoring_users(histories))
    users = np.linspace(0, histories.n_users - 1, min(n, histories.n_users)).astype(int)
    full = [json.dumps({**history_request(histories, int(u)), "history": "request"})
            for u in users]  # fmt: skip
    return full, [json.dumps({"user_id": int(histories.user_ids[u])}) for u in users]


def store_read_ms(url: str, user_ids: list[int], rounds: int = 3) -> dict:
    """p50/p99 (ms) of reading one customer's record, in process."""
    store = open_store(url)
    latencies = []
    for _ in range(rounds):
        for user in user_ids:
            started = time.perf_counter()
            store.read([user])
            latencies.append(time.perf_counter() - started)
    store.close()
    return {
        q: 1000 * float(np.percentile(latencies, n)) for q, n in (("p50_ms", 50), ("p99_ms", 99))
    }


CPU_GROUPS = ("model workers", "front end", "wrk", "other")


def cpu_group(name: str, cmdline: list[str]) -> str:
    """Which of `CPU_GROUPS` a process belongs to."""
    command = " ".join(cmdline)
    if name == "wrk":
        return "wrk"
    # Before the front end: Triton's backend stubs live under the tritonserver folder.
    if "model_service_worker" in command or "triton_python_backend_stub" in command:
        return "model workers"
    if name == "java" or "tritonserver" in command:
        return "front end"
    return "other"


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """{pid: (group, user + system CPU seconds so far)} of every process now running."""
    seconds = {}
    for process in psutil.process_iter(["name", "cmdline", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is not None:
            group = cpu_group(process.info["name"] or "", process.info["cmdline"] or [])
            seconds[process.pid] = (group, times.user + times.system)
    return seconds


def cpu_per_request(before: dict, after: dict, requests: float) -> dict[str, float]:
    """CPU milliseconds per request of each group between two `cpu_seconds` snapshots (a
    process absent from `before` counts from zero: it started during the run)."""
    used = dict.fromkeys(CPU_GROUPS, 0.0)
    for pid, (group, seconds) in after.items():
        used[group] += seconds - before.get(pid, (group, 0.0))[1]
    return {group: 1000 * value / max(requests, 1.0) for group, value in used.items()}


def load(url: str, script: Path, seconds: int) -> tuple:
    """(c=1, c=16) wrk figures against `url`, after a warm-up; the c=16 figures carry the CPU
    milliseconds per request of each process group (`cpu`)."""
    run_wrk(url, script, 4, 3)
    one = run_wrk(url, script, 1, seconds)
    before, children = cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    many = run_wrk(url, script, 16, seconds)
    # wrk has exited by now: its CPU is in this process's children's usage, not in a snapshot.
    after, done = cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_seconds = done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime
    before[-1], after[-1] = ("wrk", 0.0), ("wrk", wrk_seconds)
    many["cpu"] = cpu_per_request(before, after, many["rps"] * seconds)
    return one, many


def served(model_store: Path, script: Path, seconds: int, env: dict | None = None) -> tuple:
    """(c=1, c=16) wrk figures of a TorchServe on `model_store` started with `env`."""
    with LocalTorchServe(model_store=model_store, env=env) as server:
        return load(f"{server.inference_url}/predictions/basket", script, seconds)


def served_by_triton(repository: Path, scripts: dict, seconds: int, env: dict) -> dict:
    """{request kind: (c=1, c=16)} of one Triton serving `repository` started with `env`."""
    with LocalTriton(repository, venv=TRITON_VENV, env=env) as server:
        url = f"http://{server.url}/v2/models/basket/infer"
        return {name: load(url, script, seconds) for name, script in scripts.items()}


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


def lua_script(
    bodies: list[str], folder: Path, name: str = "post", path: str = "/predictions/basket"
) -> Path:
    """A wrk script that POSTs the bodies to `path` in turn."""
    entries = ",\n".join(f"[==[{body}]==]" for body in bodies)
    script = folder / f"{name}.lua"
    script.write_text(
        f"bodies = {{\n{entries}\n}}\n"
        "counter = 0\n"
        "request = function()\n"
        "  counter = counter + 1\n"
        f"  return wrk.format('POST', '{path}', "
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
    parser.add_argument(
        "--server-batch-size", dest="batch_size", type=int, default=ServingConfig.batch_size
    )
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
    bodies, id_bodies = request_bodies(data_dir, N_REQUESTS)
    user_ids = [json.loads(body)["user_id"] for body in id_bodies]
    # One thread, as each server worker or instance has: the model's own pool (XGBoost) and
    # torch's, which the neural nets score on (left alone, torch takes every core).
    torch.set_num_threads(config.torch_threads)
    scorer = OnlineScorer.from_model_dir(model_dir, threads=config.torch_threads)
    print(f"machine: {describe_machine()}")
    print(
        f"model: {scorer.model.kind} {scorer.version}, {len(scorer.model.vocab):,} products; "
        f"{len(bodies)} real histories, mean {np.mean([len(b) for b in bodies]) / 1e3:.1f} kB "
        f"per request; by id {np.mean([len(b) for b in id_bodies]):.0f} bytes"
    )
    print(
        f"TorchServe: {config.workers} workers, batch {config.batch_size}, "
        f"max delay {config.max_batch_delay_ms} ms"
    )
    base = in_process(scorer, bodies, config.batch_size)
    del scorer
    redis_url = f"redis://127.0.0.1:6379/0?prefix=basket-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        stores = {"SQLite": f"sqlite:///{folder / 'histories.sqlite'}", "Redis": redis_url}
        for url in stores.values():
            load_snapshot(data_dir, url)
        reads = {name: store_read_ms(url, user_ids) for name, url in stores.items()}
        package_mar(model_dir, folder / "store" / "basket.mar", config=config)
        script = lua_script(bodies, folder)
        by_id = lua_script(id_bodies, folder, "by_id")
        rows = {("TorchServe", "full history"): served(folder / "store", script, args.seconds)}
        for name, url in stores.items():
            rows[("TorchServe", f"user_id, {name}")] = served(
                folder / "store", by_id, args.seconds, {STORE_URL_ENV: url}
            )
        if (TRITON_VENV / ".installed").exists():
            repository = export_triton_repository(
                model_dir, folder / "triton", TritonConfig.from_serving(config)
            ).parent
            path = "/v2/models/basket/infer"
            full_v2 = lua_script([v2_json(json.loads(b)) for b in bodies], folder, "v2", path)
            id_v2 = lua_script([v2_json(json.loads(b)) for b in id_bodies], folder, "v2id", path)
            for name, url in stores.items():
                scripts = (
                    {"user_id": id_v2} if name == "Redis" else {"full": full_v2, "user_id": id_v2}
                )
                for kind, figures in served_by_triton(
                    repository, scripts, args.seconds, {STORE_URL_ENV: url}
                ).items():
                    label = "full history" if kind == "full" else f"user_id, {name}"
                    rows[("Triton", label)] = figures
        else:
            print(f"Triton: not measured ({TRITON_VENV} is missing: bash scripts/triton_env.sh)")
        # The nightly answers: the same id requests once batch scoring stored each customer's
        # answer beside their history (the rows above ran the model live).
        for name, url in stores.items():
            score_users(model_dir, data_dir, folder / "answers.parquet", store_url=url)
            rows[("TorchServe", f"user_id, {name}, nightly")] = served(
                folder / "store", by_id, args.seconds, {STORE_URL_ENV: url}
            )
            if (TRITON_VENV / ".installed").exists():
                figures = served_by_triton(
                    repository, {"user_id": id_v2}, args.seconds, {STORE_URL_ENV: url}
                )
                rows[("Triton", f"user_id, {name}, nightly")] = figures["user_id"]
        forget = open_store(redis_url, writable=True)
        forget.client.delete(*forget.client.scan_iter(match=f"{forget.prefix}:*"))
    report(base, rows, reads, config)
    record_result(base, rows, reads, config, model_dir)


def report(base: dict, rows: dict, reads: dict, config: ServingConfig) -> None:
    """Print the figures, the targets with met / NOT met and the ratios."""
    met = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    print(
        f"in-process (baseline): p50 {base['p50_ms']:.2f} ms, p99 {base['p99_ms']:.2f} ms one "
        f"at a time; {base['rps']:.0f} requests/s in batches of {config.batch_size}"
    )
    for name, read in reads.items():
        target = (f" (target <= {TARGET_STORE_READ_P99_MS} ms: "
                  f"{met(read['p99_ms'] <= TARGET_STORE_READ_P99_MS)})" if name == "Redis" else "")  # fmt: skip
        print(
            f"store read, {name}: p50 {read['p50_ms']:.3f} ms, p99 {read['p99_ms']:.3f} ms{target}"
        )
    for (server, name), (one, many) in rows.items():
        full_one, full_many = rows[(server, "full history")]
        print(
            f"{server} {name}: c=1 p50 {one['p50_ms']:.2f} ms, p99 {one['p99_ms']:.2f} ms "
            f"(target p99 <= {TARGET_P99_MS} ms: {met(one['p99_ms'] <= TARGET_P99_MS)}); "
            f"c=16 {many['rps']:.0f} requests/s (target >= {TARGET_RPS:,}: "
            f"{met(many['rps'] >= TARGET_RPS)}), p99 {many['p99_ms']:.2f} ms; "
            f"non-2xx {one['non_2xx'] + many['non_2xx']}"
        )
        cpu, available = many["cpu"], 1000 * psutil.cpu_count() / max(many["rps"], 1.0)
        print(
            f"  c=16 CPU per request: {sum(cpu.values()):.2f} ms used of the {available:.2f} ms "
            "the cores give it: " + ", ".join(f"{group} {cpu[group]:.2f}" for group in CPU_GROUPS)
        )
        if name == "full history" and server == "TorchServe":
            print(
                f"  ratios to in-process: c=1 p50 {one['p50_ms'] / base['p50_ms']:.2f}x, "
                f"c=16 throughput {many['rps'] / base['rps']:.2f}x"
            )
        elif name != "full history":
            print(
                f"  ratios to {server}'s full-history request: c=1 p50 "
                f"{one['p50_ms'] / full_one['p50_ms']:.2f}x, p99 "
                f"{one['p99_ms'] / full_one['p99_ms']:.2f}x, c=16 throughput "
                f"{many['rps'] / full_many['rps']:.2f}x (target: no slower: "
                f"{met(one['p50_ms'] <= full_one['p50_ms'] and many['rps'] >= full_many['rps'])})"
            )


def record_result(base: dict, rows: dict, reads: dict, config: ServingConfig, model_dir) -> None:
    """The figures `report` prints, with their targets, into bench/results/serve.json."""
    meta = json.loads((Path(model_dir) / "model.json").read_text())
    products = pq.ParquetFile(Path(model_dir) / "vocab.parquet").metadata.num_rows
    table = [["in process (baseline)", "full history", round(base["p50_ms"], 2),
              round(base["p99_ms"], 2), round(base["rps"]), None]]  # fmt: skip
    targets = []
    for (server, name), (one, many) in rows.items():
        table.append([server, name, round(one["p50_ms"], 2), round(one["p99_ms"], 2),
                      round(many["rps"]), round(sum(many["cpu"].values()), 2)])  # fmt: skip
        if name.endswith(", nightly"):
            live_one, live_many = rows[(server, name.removesuffix(", nightly"))]
            p99_target = NIGHTLY_P99_MS[server]
            targets += [
                Target(f"{server}, {name}: >= {NIGHTLY_RPS:,} requests/s at c=16",
                       f"{many['rps']:,.0f} requests/s", many["rps"] >= NIGHTLY_RPS),
                Target(f"{server}, {name}: >= 2 x the live id path at c=16",
                       f"{many['rps'] / live_many['rps']:.2f} x",
                       many["rps"] >= 2 * live_many["rps"]),
                Target(f"{server}, {name}: p99 at c=1 <= {p99_target} ms",
                       f"{one['p99_ms']:.2f} ms", one["p99_ms"] <= p99_target),
            ]  # fmt: skip
            continue
        targets += [
            Target(f"{server}, {name}: p99 at c=1 <= {TARGET_P99_MS} ms",
                   f"{one['p99_ms']:.2f} ms", one["p99_ms"] <= TARGET_P99_MS),
            Target(f"{server}, {name}: >= {TARGET_RPS:,} requests/s at c=16",
                   f"{many['rps']:,.0f} requests/s", many["rps"] >= TARGET_RPS),
        ]  # fmt: skip
    for name, read in reads.items():
        table.append([f"store read ({name})", "one customer", round(read["p50_ms"], 3),
                      round(read["p99_ms"], 3), None, None])  # fmt: skip
    record(
        f"serve_{meta['kind']}_{products}",
        f"Serving {meta['kind']} ({products:,} products) on TorchServe and Triton",
        ["server", "request", "p50 ms (c=1)", "p99 ms (c=1)", "requests/s (c=16)",
         "CPU ms per request (c=16)"],
        table,
        targets,
        {"model": meta.get("version"), "workers": config.workers,
         "server_batch_size": config.batch_size, "max_batch_delay_ms": config.max_batch_delay_ms},
    )  # fmt: skip


if __name__ == "__main__":
    main()
