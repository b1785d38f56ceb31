"""Fault-injection benchmark: steady traffic at a real TorchServe and a real Triton while
faults are injected at known times, every request recorded and checked.

Traffic: 8 threads on loopback, half full histories, half requests by id, each a real
customer of the data; bounded in time. Every 200 answer is compared with the batch row
(`basket score`) of the model version it names; a differing one is *wrong*. The faults:

1. a model worker killed (SIGKILL on one TorchServe worker, or one Triton Python stub):
   failed requests and the seconds until every worker answers again;
2. the history store restarted (a private Redis stopped, started and reloaded): id requests
   get 503 meanwhile and never another 5xx, full histories are unaffected, ids answer again
   within 1 s of the reload; and the SQLite store replaced by a new snapshot under traffic;
3. a new model registered while serving (the retrain DAG's `register`): no failure, the
   version switches once and never flips back;
4. a soak (`--soak-seconds`, 10 minutes by default): each server's RSS after the warm-up and
   at the end (growth <= 5 %), p50 and p99 per minute, no error;
5. the disk fills during a publish (a 4 MiB tmpfs as the model store; needs root): the
   publish fails loudly, the store keeps its bytes, the next publish with room succeeds.

PostgreSQL restarting under the Celery deployment is not injected here (the machine's
PostgreSQL serves other work). Prints a table and the targets; writes
bench/results/faults.json.

Usage: python bench/bench_faults.py [--soak-seconds 600] [--users 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import Target, record
from basket.config.serving import ServingConfig
from basket.data import build_histories, load_tables
from basket.models.model_meta import ModelMeta
from basket.serving.batch import score_users
from basket.serving.package import package, package_mar
from basket.serving.store.base import STORE_URL_ENV
from basket.serving.store.fill import load_snapshot
from basket.serving.triton.client import v2_json
from basket.serving.triton.repository import TritonConfig, export_triton_repository
from basket.testing.faults import (
    PrivateRedis,
    kill_a_stub,
    kill_a_worker,
    publish_onto_a_full_disk,
    replace_the_snapshot,
    restart_the_store,
    soak,
    swap_the_model,
)
from basket.testing.histories import scoring_users
from basket.testing.requests import history_request
from basket.testing.torchserve_server import LocalTorchServe
from basket.testing.traffic import Request, Traffic, v2_answer
from basket.testing.triton_server import REPO_ROOT, LocalTriton

OUT = Path(__file__).resolve().parent / "out" / "faults"
TRITON_VENV = REPO_ROOT / ".venv-triton"
CUSTOMERS = 200
WORKERS = 8


def trained_run(users: int) -> Path:
    """A run with an XGBoost winner and a P-TopFreq candidate on `users` synthetic customers."""
    data, run = OUT / "data", OUT / "run"
    basket = [sys.executable, "-m", "basket.commands.cli"]
    if not (data / "orders.csv").is_file():
        subprocess.run([*basket, "synth", "--users", str(users), "--out", str(data)], check=True)
    if not (run / "report.json").is_file():
        subprocess.run([*basket, "train", str(data), "--out", str(run), "--candidates",
                        "p_topfreq", "xgboost", "--embed-epochs", "5"], check=True)  # fmt: skip
    return run


def batch_rows(model_dir: Path, data: Path, out: Path) -> tuple[str, dict]:
    frame = pd.read_parquet(score_users(model_dir, data, out).out_path)
    rows = {int(user): tuple(group.sort_values("rank")["product_id"])
            for user, group in frame.groupby("user_id")}  # fmt: skip
    return frame["model_version"].iloc[0], rows


def requests_of(data: Path, triton: bool = False) -> list[Request]:
    """Full-history and by-id requests for CUSTOMERS customers, as JSON or KServe-v2 bodies."""
    histories = build_histories(load_tables(data))
    histories = histories.select_users(scoring_users(histories))
    out = []
    for user in range(min(CUSTOMERS, histories.n_users)):
        user_id = int(histories.user_ids[user])
        bodies = {"full": {**history_request(histories, user), "history": "request"},
                  "id": {"user_id": user_id}}  # fmt: skip
        for kind, body in bodies.items():
            raw = v2_json(body) if triton else json.dumps(body)
            out.append(Request(kind, user_id, raw.encode()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="traffic per fault")
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    run = trained_run(args.users)
    data = Path(json.loads((run / "config.json").read_text())["data_dir"])
    first, second = run / "models" / "xgboost", run / "models" / "p_topfreq"
    swap_version = ModelMeta.read(second).version
    results = []
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        store = Path(folder)
        package_mar(first, store / "basket.mar", ServingConfig())
        package_mar(second, store / f"basket-{swap_version}.mar", ServingConfig())
        expected = dict(batch_rows(m, data, store / f"{m.name}.parquet") for m in (first, second))
        url = f"sqlite:///{store / 'histories.sqlite'}"
        load_snapshot(data, url)
        requests = requests_of(data)
        with LocalTorchServe(model_store=store, env={STORE_URL_ENV: url}) as server:
            target = f"{server.inference_url}/predictions/basket"

            def traffic() -> Traffic:
                return Traffic(target, requests, workers=WORKERS)

            results.append(kill_a_worker(server, traffic(), expected, seconds=args.seconds))
            results.append(replace_the_snapshot(url, data, traffic(), expected,
                                                seconds=args.seconds))  # fmt: skip
            results.append(soak(server, traffic(), expected, args.soak_seconds))
            results.append(swap_the_model(server, traffic(), expected,
                                          f"basket-{swap_version}.mar", swap_version,
                                          seconds=args.seconds))  # fmt: skip
        redis = PrivateRedis().start()
        try:
            load_snapshot(data, redis.url)
            with LocalTorchServe(model_store=store, env={STORE_URL_ENV: redis.url}) as server:
                traffic = Traffic(f"{server.inference_url}/predictions/basket", requests,
                                  workers=WORKERS)  # fmt: skip
                results.append(restart_the_store(redis, data, traffic, expected,
                                                 seconds=args.seconds))  # fmt: skip
        finally:
            redis.stop()
        if (TRITON_VENV / ".installed").exists():
            version = ModelMeta.read(first).version
            repository = export_triton_repository(first, store / "triton", TritonConfig())
            with LocalTriton(repository.parent, venv=TRITON_VENV,
                             env={STORE_URL_ENV: url}) as server:  # fmt: skip

                def triton_traffic() -> Traffic:
                    return Traffic(f"http://{server.url}/v2/models/basket/infer",
                                   requests_of(data, triton=True), workers=WORKERS,
                                   answer_of=v2_answer(version))  # fmt: skip

                results.append(kill_a_stub(server, triton_traffic(), expected,
                                           seconds=args.seconds))  # fmt: skip
                results.append(soak(server, triton_traffic(), expected, args.soak_seconds,
                                    name="Triton"))  # fmt: skip
        results.append(disk_full(run, first, second, store))
    report(results, args)


def disk_full(run: Path, first: Path, second: Path, store: Path):
    """The publish fault on a 4 MiB tmpfs (root only), with a packaged run of each model."""
    runs = []
    for model in (first, second):
        folder = store / f"publish-{model.name}"
        (folder / "winner").parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-r", str(model), str(folder / "winner")], check=True)
        for name in ("report.json", "prepared"):
            subprocess.run(["cp", "-r", str(run / name), str(folder / name)], check=True)
        report = json.loads((folder / "report.json").read_text())
        report["winner"] = model.name
        (folder / "report.json").write_text(json.dumps(report))
        runs.append((folder, package(folder, folder / "basket.mar")["mar"]))
    mount_point = store / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                   check=True)  # fmt: skip
    try:
        # P-TopFreq in production first; then XGBoost, which scores better, is published.
        (better_run, better_mar), (simpler_run, simpler_mar) = runs
        return publish_onto_a_full_disk(better_run, better_mar, simpler_run, simpler_mar,
                                        mount_point)  # fmt: skip
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def report(results, args) -> None:
    """Print the table and the targets; record them."""
    columns = ["server", "fault", "sent", "failed", "wrong", "recovery s", "RSS growth"]
    print(f"machine: {describe_machine()}")
    print(" | ".join(columns))
    for result in results:
        print(" | ".join(str(cell) for cell in result.row()), json.dumps(result.details))
    targets = [Target(f"{r.server}, {r.fault}: no wrong answer", str(r.wrong), r.wrong == 0)
               for r in results]  # fmt: skip
    for r in results:
        d = r.details
        if r.fault.startswith("a model worker killed"):
            targets.append(Target(f"{r.server}: only the requests in flight fail (<= {WORKERS})",
                                  f"{r.failed} failed", r.failed <= WORKERS))  # fmt: skip
        elif r.fault.startswith("the Redis"):
            targets += [
                Target("store down: ids get 503, never another 5xx",
                       f"{d['id_503']} x 503, {d['other_5xx']} other 5xx", d["other_5xx"] == 0),
                Target("store down: full histories unaffected", f"{d['full_failed']} failed",
                       d["full_failed"] == 0),
                Target("ids answer within 1 s of the store being back",
                       f"{r.recovery_s:.2f} s" if r.recovery_s is not None else "never",
                       r.recovery_s is not None and r.recovery_s <= 1.0),
            ]  # fmt: skip
        elif r.fault.startswith(("the SQLite", "a new model")):
            targets.append(Target(f"{r.fault}: no failed request", f"{r.failed} failed",
                                  r.failed == 0))  # fmt: skip
            if "flips_back" in d:
                targets.append(Target("the version switches once, never back",
                                      f"{d['flips_back']} answers of the old version after the "
                                      "switch", d["flips_back"] == 0))  # fmt: skip
        elif r.fault.startswith("a soak"):
            targets += [
                Target(f"{r.server} soak: RSS growth <= 5 %", f"{d['rss_growth']:.1%}",
                       d["rss_growth"] <= 0.05),
                Target(f"{r.server} soak: no error", f"{r.failed} failed", r.failed == 0),
            ]  # fmt: skip
        elif r.fault.startswith("the disk"):
            targets.append(Target("a publish onto a full disk fails loudly, leaves the store, "
                                  "and the next one succeeds", json.dumps(d)[:80],
                                  r.failed == 0))  # fmt: skip
    record(
        "faults",
        "Faults under traffic (TorchServe and Triton, local servers)",
        columns,
        [r.row() for r in results],
        targets,
        {"traffic_threads": WORKERS, "customers": CUSTOMERS, "seconds_per_fault": args.seconds,
         "soak_seconds": args.soak_seconds},
        notes="Not injected: PostgreSQL restarting under the Celery deployment.",
    )  # fmt: skip


if __name__ == "__main__":
    main()
