"""Retrain-at-scale benchmark: the default `basket retrain`, stage by stage, at two data sizes.

`basket synth` at a fraction of Instacart's size (206,209 customers, 49,688
products, the generator's defaults) and at 1/8 of that fraction, then the
default `basket retrain` on each, every stage in its own process (as the DAG
runs them): wall time and peak RSS (VmHWM) per stage, and the growth from the
small run to the big one (8x the customers: 8x the time is linear).

Prints the table with the targets of issue 13 (whole retrain <= 60 min and
peak RSS <= 8 GB at Instacart scale; <= 10 min and <= 4 GB at 1/8) and of issue 22
(compare <= 5 min, whole retrain <= 45 min at Instacart scale), the machine; writes
scale.json to --out.

Usage: python bench/bench_retrain_scale.py [--fraction 1.0] [retrain flags, e.g. --models cnngru]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import Target, record
from basket.config.run import load_config
from basket.training.retrain import candidate_names

INSTACART_USERS, INSTACART_PRODUCTS = 206_209, 49_688
STAGE_CODE = """
import logging, sys, time
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
logging.getLogger("great_expectations").setLevel(logging.ERROR)
from basket.commands.training import overrides
from basket.commands.cli import build_parser
from basket.config.run import load_config
from basket import retrain
args = build_parser().parse_args(["retrain", sys.argv[2], "--out", sys.argv[3], *sys.argv[5:]])
config = load_config(args.config, overrides(args))
stage, data, run = sys.argv[1], sys.argv[2], sys.argv[3]
if stage == "validate":
    retrain.validate_stage(data, run)
elif stage == "prepare":
    retrain.prepare_stage(data, run, config)
elif stage == "embed":
    retrain.embed_stage(run, config)
elif stage == "compare":
    retrain.compare_stage(run, config)
else:
    retrain.train_stage(run, [sys.argv[4]], config)
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"):
        print("VmHWM_kB", line.split()[1])
"""


def run_stage(stage: str, data: Path, run: Path, name: str, flags: list[str]) -> dict:
    """Wall seconds and peak RSS (GiB) of one stage in a fresh Python process; its log (the
    epochs, settings and rounds, with the time left) goes to RUN/logs/STAGE.log."""
    log_path = run / "logs" / f"{stage}{'_' + name if name else ''}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log_path.open("w") as log:
        done = subprocess.run(
            [sys.executable, "-c", STAGE_CODE, stage, str(data), str(run), name, *flags],
            check=True, stdout=subprocess.PIPE, stderr=log, text=True,
            env={**os.environ, "TQDM_DISABLE": "1"},
        )  # fmt: skip
    peak = next(
        int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("VmHWM")
    )
    return {"seconds": time.perf_counter() - started, "peak_gib": peak / 2**20}


def retrain_by_stage(
    users: int, products: int, out: Path, flags: list[str], resume: bool = False
) -> dict:
    """synth + every stage of the default retrain; {stage: {seconds, peak_gib}}. With `resume`,
    stages a killed run finished (out/stages_USERS.json) are kept, not run again."""
    data = out / f"synth_{users}"
    if not (data / "orders.csv").is_file():
        subprocess.run(
            [str(Path(sys.executable).parent / "basket"), "synth", "--users", str(users),
             "--products", str(products), "--out", str(data)],
            check=True,
        )  # fmt: skip
    run = out / f"run_{users}"
    done_path = out / f"stages_{users}.json"
    stages = json.loads(done_path.read_text()) if resume and done_path.is_file() else {}
    config = load_config(overrides={})
    plan = [(stage, "") for stage in ("validate", "prepare", "embed")]
    plan += [("train", name) for name in candidate_names(config)] + [("compare", "")]
    for stage, name in plan:
        label = f"train_{name}" if name else stage
        if label in stages:
            print(f"  {users:,} customers: {label} kept from the last run", flush=True)
            continue
        stages[label] = run_stage(stage, data, run, name, flags)
        done_path.write_text(json.dumps(stages, indent=1))
        print(
            f"  {users:,} customers: {label} {stages[label]['seconds']:.0f}s, "
            f"peak {stages[label]['peak_gib']:.2f} GiB",
            flush=True,
        )
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=1.0, help="of Instacart's customers")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "out" / "scale"
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the stages an interrupted run finished"
    )
    parser.add_argument(
        "--full-only", action="store_true", help="skip the run at 1/8 (no growth column)"
    )
    args, flags = parser.parse_known_args()
    args.out.mkdir(parents=True, exist_ok=True)
    big = int(INSTACART_USERS * args.fraction)
    sizes = {"1/8": big // 8, "full": big}
    if args.full_only:
        sizes = {"full": big}
    results = {label: retrain_by_stage(users, INSTACART_PRODUCTS, args.out, flags, args.resume)
               for label, users in sizes.items()}  # fmt: skip
    print(f"\nmachine: {describe_machine()}; retrain flags {flags or 'none (the defaults)'}")
    print(f"customers: {', '.join(f'{n:,}' for n in sizes.values())} "
          f"({args.fraction:g} of Instacart)")  # fmt: skip
    print(f"{'stage':22} {'1/8 s':>8} {'1/8 GiB':>8} {'full s':>8} {'full GiB':>9} {'time x':>7}")
    nothing = {"seconds": float("nan"), "peak_gib": float("nan")}
    for stage in results["full"]:
        small, large = results.get("1/8", {}).get(stage, nothing), results["full"][stage]
        print(
            f"{stage:22} {small['seconds']:8.0f} {small['peak_gib']:8.2f} {large['seconds']:8.0f} "
            f"{large['peak_gib']:9.2f} {large['seconds'] / max(small['seconds'], 1e-9):7.1f}"
        )
    # Issue 13's targets, at Instacart scale; the 1/8 ones hold only at fraction 1.
    targets = {"1/8": (10, 4), "full": (60, 8)} if args.fraction == 1.0 else {}
    for label in sizes:
        total = sum(stage["seconds"] for stage in results[label].values()) / 60
        peak = max(stage["peak_gib"] for stage in results[label].values())
        line = f"{label}: whole retrain {total:.1f} min, peak RSS {peak:.2f} GiB"
        if label in targets:
            minutes, gb = targets[label]
            met = total <= minutes and peak * 2**30 / 1e9 <= gb
            line += f" (target <= {minutes} min and <= {gb} GB: {'met' if met else 'NOT met'})"
        print(line)
    if args.fraction == 1.0:
        # Issue 22's targets: compare <= 5 min and the whole retrain <= 45 min at Instacart scale.
        compare_min = results["full"]["compare"]["seconds"] / 60
        whole_min = sum(stage["seconds"] for stage in results["full"].values()) / 60
        print(
            f"full: compare {compare_min:.1f} min (target <= 5 min: "
            f"{'met' if compare_min <= 5 else 'NOT met'}); whole retrain {whole_min:.1f} min "
            f"(target <= 45 min: {'met' if whole_min <= 45 else 'NOT met'})"
        )
        check = results["full"]["validate"]
        met = check["seconds"] <= 30 and check["peak_gib"] * 2**30 / 1e9 <= 4
        print(
            f"full: validate {check['seconds']:.0f} s, {check['peak_gib'] * 2**30 / 1e9:.2f} GB "
            f"(target <= 30 s and <= 4 GB: {'met' if met else 'NOT met'})"
        )
    record_scale(results, sizes, flags, args.fraction)
    (args.out / "scale.json").write_text(
        json.dumps(
            {"machine": describe_machine(), "sizes": sizes, "flags": flags, "stages": results},
            indent=1,
        )  # fmt: skip
    )


def record_scale(results: dict, sizes: dict, flags: list[str], fraction: float) -> None:
    """Each stage's time and memory at each size, and the targets at Instacart scale, into
    bench/results/retrain_scale.json."""
    full = results["full"]
    whole = sum(stage["seconds"] for stage in full.values()) / 60
    peak_gb = max(stage["peak_gib"] for stage in full.values()) * 2**30 / 1e9
    check = full["validate"]
    targets = []
    if fraction == 1.0:
        targets = [
            Target("whole retrain at Instacart scale <= 45 min", f"{whole:.1f} min", whole <= 45),
            Target("peak memory <= 8 GB", f"{peak_gb:.2f} GB", peak_gb <= 8),
            Target("compare <= 5 min", f"{full['compare']['seconds'] / 60:.1f} min",
                   full["compare"]["seconds"] <= 300),
            Target("validate <= 30 s", f"{check['seconds']:.0f} s", check["seconds"] <= 30),
        ]  # fmt: skip
    record(
        "retrain_scale",
        "The nightly retrain at Instacart scale, stage by stage",
        ["stage", *[f"{label} s" for label in sizes], *[f"{label} GiB" for label in sizes]],
        [
            [stage, *[round(results[label][stage]["seconds"]) for label in sizes],
             *[round(results[label][stage]["peak_gib"], 2) for label in sizes]]
            for stage in full
        ],
        targets,
        {"customers": sizes, "fraction": fraction, "retrain_flags": flags},
    )  # fmt: skip


if __name__ == "__main__":
    main()
