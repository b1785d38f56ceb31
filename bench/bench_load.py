"""Loading benchmark at Instacart scale: `basket.data.load_tables` against plain pandas.read_csv.

Generates (once, cached under bench/out/) a synthetic folder the size of the
Kaggle release (206,209 users, ~3.4M orders, ~32M prior lines, 49,688
products), then measures in fresh processes, so peak memory is each reader's own:

- baseline: pandas.read_csv (C engine, default types) on every file;
- basket:   load_tables on the CSV folder (pyarrow, cast to the schema);
- basket:   load_tables on the same tables as parquet;
- basket:   load_tables and build_histories (the per-user ragged arrays).

Prints seconds, peak RSS and the speed ratio against the baseline.
Usage: python bench/bench_load.py [--users 206209] [--out bench/out/instacart]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import record

INSTACART_USERS = 206_209
TABLES = (
    "orders",
    "order_products__prior",
    "order_products__train",
    "products",
    "aisles",
    "departments",
)


def _peak_rss_gib() -> float:
    """This process's own peak resident memory (VmHWM; ru_maxrss would carry the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _measure(kind: str, folder: str) -> dict:
    """Runs in a child process: load once, report seconds, peak RSS and row counts."""
    started = time.perf_counter()
    if kind == "pandas.read_csv":
        import pandas as pd

        frames = {name: pd.read_csv(Path(folder) / f"{name}.csv") for name in TABLES}
        lines = len(frames["order_products__prior"])
    elif kind.startswith("basket load_tables + build_histories"):
        from basket.data import build_histories, load_tables

        tables = load_tables(folder)
        lines = len(tables.prior_lines)
        build_histories(tables)
    else:
        from basket.data import load_tables

        lines = len(load_tables(folder).prior_lines)
    seconds = time.perf_counter() - started
    peak_gib = _peak_rss_gib()
    return {"kind": kind, "seconds": seconds, "peak_rss_gib": peak_gib, "prior_lines": lines}


def _in_child(kind: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def ensure_instacart_data(users: int, folder: Path) -> Path:
    """The synthetic folder for `users` (Instacart scale by default), generated once and cached."""
    from basket.data.synth import SynthConfig, write_synthetic

    config = SynthConfig(
        users=users, seed=0, orders_mean=16.6, products=49_688 if users >= 100_000 else None
    )
    marker = folder / "bench_config.json"
    wanted = json.dumps(
        {"users": config.users, "seed": config.seed, "orders_mean": config.orders_mean}
    )
    if marker.is_file() and marker.read_text() == wanted:
        return folder
    started = time.perf_counter()
    write_synthetic(config, folder)
    print(f"generated {users:,} users in {time.perf_counter() - started:.0f}s -> {folder}")
    marker.write_text(wanted)
    return folder


def ensure_parquet_copy(csv_folder: Path) -> Path:
    """A parquet copy of the CSV folder beside it, rewritten when a CSV is newer."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder = csv_folder.with_name(csv_folder.name + "_parquet")
    folder.mkdir(exist_ok=True)
    for name in TABLES:
        target = folder / f"{name}.parquet"
        if (
            not target.is_file()
            or target.stat().st_mtime < (csv_folder / f"{name}.csv").stat().st_mtime
        ):
            pq.write_table(pacsv.read_csv(csv_folder / f"{name}.csv"), target)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=INSTACART_USERS)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "out" / "instacart"
    )
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure(*args.measure)))
        return

    csv_folder = ensure_instacart_data(args.users, args.out)
    parquet_folder = ensure_parquet_copy(csv_folder)
    size_mb = sum(p.stat().st_size for p in csv_folder.glob("*.csv")) / 1e6
    baseline = _in_child("pandas.read_csv", csv_folder)
    ours_csv = _in_child("basket load_tables (CSV)", csv_folder)
    ours_parquet = _in_child("basket load_tables (parquet)", parquet_folder)
    with_histories = _in_child("basket load_tables + build_histories (CSV)", csv_folder)

    print(f"\nmachine: {describe_machine()}")
    print(
        f"data: {args.users:,} users, {baseline['prior_lines']:,} prior lines, {size_mb:,.0f} MB of CSV\n"
    )
    print(f"{'reader':44} {'seconds':>8} {'peak RSS':>9} {'speed vs baseline':>18}")
    for row in (baseline, ours_csv, ours_parquet, with_histories):
        ratio = baseline["seconds"] / row["seconds"]
        print(
            f"{row['kind']:44} {row['seconds']:8.1f} {row['peak_rss_gib']:7.2f}GiB {ratio:17.2f}x"
        )
    result = {"machine": describe_machine(), "users": args.users, "csv_mb": size_mb}
    result["rows"] = [baseline, ours_csv, ours_parquet, with_histories]
    (args.out.parent / "load.json").write_text(json.dumps(result, indent=1))
    record(
        "load",
        "Reading an Instacart-layout folder",
        ["reader", "seconds", "peak RSS GiB", "speed vs pandas.read_csv"],
        [
            [row["kind"], round(row["seconds"], 1), round(row["peak_rss_gib"], 2),
             round(baseline["seconds"] / row["seconds"], 2)]
            for row in (baseline, ours_csv, ours_parquet, with_histories)
        ],
        parameters={"customers": args.users, "prior_lines": baseline["prior_lines"],
                    "csv_mb": round(size_mb)},
    )  # fmt: skip


if __name__ == "__main__":
    main()
