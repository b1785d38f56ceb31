"""The history store, on both backends (a real SQLite file, a real Redis): what a load writes,
snapshot switches that readers never see half of, dead loads, appends, a store that is down."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from basket.data import build_histories, load_tables
from basket.data.customer_history import customer_at, customers_to_histories
from basket.data.synth import SynthConfig, write_synthetic
from basket.serving.store.base import SnapshotInfo, StoreUnavailable
from basket.serving.store.codec import decode, encode_histories
from basket.serving.store.connect import open_store
from basket.serving.store.fill import append_orders, load_snapshot
from basket.testing.histories import same_histories


def stored_histories(url: str, user_ids) -> tuple[str, object]:
    """(snapshot, `Histories`) of `user_ids` as the store holds them."""
    read = open_store(url).read(list(map(int, user_ids)))
    return read.snapshot, customers_to_histories(
        list(user_ids), [decode(read.records[int(u)]) for u in user_ids]
    )


def test_a_load_stores_every_customer_as_batch_scoring_builds_them(synth_dir, store_url):
    info = load_snapshot(synth_dir, store_url)
    batch = build_histories(load_tables(synth_dir))
    snapshot, stored = stored_histories(store_url, batch.user_ids)
    assert snapshot == info.version and info.users == batch.n_users == 300
    assert same_histories(stored, batch)
    assert open_store(store_url).info() == info


def test_quarantined_lines_are_left_out_as_in_training_and_scoring(synth_dir, store_url, tmp_path):
    batch = build_histories(load_tables(synth_dir))
    order = int(batch.order_ids[batch.order_offsets[3]])
    product = int(batch.product_ids[batch.line_offsets[batch.order_offsets[3]]])
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    pd.DataFrame({"order_id": [order], "product_id": [product]}).to_parquet(
        quarantine / "order_products__prior.parquet"
    )
    load_snapshot(synth_dir, store_url, quarantine)
    _, stored = stored_histories(store_url, batch.user_ids[3:4])
    assert len(stored.product_ids) == len(customer_at(batch, 3).product_ids) - 1
    first_order = stored.product_ids[: stored.line_offsets[1]]
    assert product not in first_order


def test_a_reload_switches_to_the_new_snapshot_and_drops_the_old(synth_dir, store_url):
    first = load_snapshot(synth_dir, store_url)
    second = load_snapshot(synth_dir, store_url)
    assert first.version != second.version
    store = open_store(store_url)
    assert store.info().version == second.version
    assert store.read([1]).snapshot == second.version
    assert snapshot_count(store_url) == 1


def snapshot_count(url: str) -> int:
    """How many snapshots (finished or half-written) the store keeps."""
    store = open_store(url, writable=True)
    if url.startswith("sqlite"):
        rows = store._run(
            lambda db: db.execute(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'histories_%'"
            ).fetchone()
        )
        return rows[0]
    return len(list(store.client.scan_iter(match=f"{store.prefix}:snapshot:*")))


def test_a_load_that_dies_half_way_leaves_the_previous_snapshot_serving(synth_dir, store_url):
    before = load_snapshot(synth_dir, store_url)
    histories = build_histories(load_tables(synth_dir))

    def dying():
        yield histories.user_ids[:100], encode_histories(histories)[:100]
        raise OSError("the disk went away")

    store = open_store(store_url, writable=True)
    with pytest.raises(OSError, match="disk went away"):
        store.replace(dying(), SnapshotInfo("half", "now", 0, "nowhere", "-"))
    assert open_store(store_url).info() == before
    snapshot, stored = stored_histories(store_url, histories.user_ids)
    assert snapshot == before.version and same_histories(stored, histories)
    assert snapshot_count(store_url) == 2  # the half-written one, until the next load
    load_snapshot(synth_dir, store_url)
    assert snapshot_count(store_url) == 1


def test_readers_see_one_whole_snapshot_while_loads_run(synth_dir, store_url, tmp_path):
    """Two data sets with the same customers; loads alternate, slowly, while a reader reads
    a spread of customers again and again: each read is all of one snapshot."""
    other = write_synthetic(SynthConfig(users=300, seed=8), tmp_path / "other")
    versions, expected = {}, {}
    users = build_histories(load_tables(synth_dir)).user_ids[::15]
    for data in (synth_dir, other):
        histories = build_histories(load_tables(data))
        expected[data] = histories.select_users(np.searchsorted(histories.user_ids, users))

    def slow_load(data):
        histories = build_histories(load_tables(data))
        records = encode_histories(histories)
        version = f"v{len(versions)}"
        versions[version] = data

        def batches():
            for start in range(0, histories.n_users, 20):
                time.sleep(0.005)
                yield histories.user_ids[start : start + 20], records[start : start + 20]

        open_store(store_url, writable=True).replace(
            batches(), SnapshotInfo(version, "now", 0, str(data), "-")
        )

    slow_load(synth_dir)
    reads, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            reads.append(stored_histories(store_url, users))

    thread = threading.Thread(target=reader)
    thread.start()
    for data in (other, synth_dir, other):
        slow_load(data)
    stop.set()
    thread.join()
    seen = {snapshot for snapshot, _ in reads}
    assert len(reads) > 20 and len(seen) >= 3, (len(reads), seen)
    for snapshot, stored in reads:
        assert same_histories(stored, expected[versions[snapshot]]), snapshot


def write_append_folder(folder, orders: list[dict], lines: list[tuple[int, int]]):
    folder.mkdir()
    pd.DataFrame(orders).to_csv(folder / "orders.csv", index=False)
    pd.DataFrame(
        [(o, p, i + 1, 0) for i, (o, p) in enumerate(lines)],
        columns=["order_id", "product_id", "add_to_cart_order", "reordered"],
    ).to_csv(folder / "order_products__prior.csv", index=False)
    return folder


def test_append_adds_new_orders_after_the_stored_ones_once(synth_dir, store_url, tmp_path):
    info = load_snapshot(synth_dir, store_url)
    batch = build_histories(load_tables(synth_dir))
    user = int(batch.user_ids[0])
    order = {"eval_set": "prior", "order_dow": 2, "order_hour_of_day": 9}
    folder = write_append_folder(
        tmp_path / "since",
        [
            {
                "order_id": 900001,
                "user_id": user,
                "order_number": 99,
                "days_since_prior_order": 3.0,
                **order,
            },
            {
                "order_id": 900002,
                "user_id": 777777,
                "order_number": 1,
                "days_since_prior_order": None,
                **order,
            },
            {
                "order_id": 900003,
                "user_id": user,
                "order_number": 100,
                "eval_set": "test",
                "order_dow": 4,
                "order_hour_of_day": 18,
                "days_since_prior_order": 5.0,
            },
        ],  # fmt: skip
        [(900001, 11), (900001, 12), (900002, 13)],
    )
    first = append_orders(folder, store_url)
    again = append_orders(folder, store_url)
    assert (first.orders_added, first.customers, first.new_customers) == (2, 2, 1)
    assert (again.orders_added, again.orders_already_stored) == (0, 2)
    assert first.snapshot == again.snapshot == info.version
    read = open_store(store_url).read([user, 777777])
    stored, new = decode(read.records[user]), decode(read.records[777777])
    before = customer_at(batch, 0)
    assert stored.n_orders == before.n_orders + 1
    assert stored.order_ids[-1] == 900001 and stored.product_ids[-2:].tolist() == [11, 12]
    assert np.array_equal(stored.product_ids[:-2], before.product_ids)
    assert stored.next_context == (4, 18, 5.0)  # the appended `test` order's
    assert new.n_orders == 1 and new.product_ids.tolist() == [13]


def test_a_store_that_is_down_says_which_store_without_its_password(tmp_path, synth_dir):
    with pytest.raises(StoreUnavailable, match="no such file"):
        open_store(f"sqlite:///{tmp_path / 'missing.sqlite'}").read([1])
    started = time.perf_counter()
    with pytest.raises(StoreUnavailable, match=r"redis://:\*\*\*@127\.0\.0\.1:1/0") as raised:
        open_store("redis://:hunter2@127.0.0.1:1/0").read([1])
    assert "hunter2" not in str(raised.value)
    assert time.perf_counter() - started < 3
    empty = tmp_path / "empty.sqlite"
    open_store(f"sqlite:///{empty}", writable=True).info()  # creates the file, loads nothing
    with pytest.raises(StoreUnavailable, match="no snapshot yet"):
        open_store(f"sqlite:///{empty}").read([1])


def test_store_urls_name_one_backend(tmp_path):
    assert open_store(str(tmp_path / "h.sqlite")).url == f"sqlite:///{tmp_path / 'h.sqlite'}"
    with pytest.raises(ValueError, match="expected sqlite"):
        open_store("postgresql://localhost/basket")


def test_cli_load_append_and_info(synth_dir, tmp_path, capsys):
    from basket.commands.cli import main

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    assert main(["store", "load", str(data), "--store", url]) == 0
    assert "loaded 300 customers" in capsys.readouterr().out
    assert main(["store", "info", "--store", url, "--user", "1"]) == 0
    shown = capsys.readouterr().out
    assert '"users": 300' in shown and '"user_id": 1' in shown
    assert main(["store", "info", "--store", f"sqlite:///{tmp_path / 'none.sqlite'}"]) == 3
    assert "no such file" in capsys.readouterr().err


def test_a_server_that_may_only_read_the_store_reads_it(synth_dir):
    """The image's server (uid 1000) reads a store the DAG wrote as another user into a folder
    it may not write to. A WAL-mode SQLite file refused that ("attempt to write a readonly
    database": WAL readers write a shared-memory file beside it)."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to read as another user")
    folder = Path(tempfile.mkdtemp(prefix="basket-readonly-"))
    try:
        folder.chmod(0o755)
        url = f"sqlite:///{folder / 'histories.sqlite'}"
        version = load_snapshot(synth_dir, url).version
        (folder / "histories.sqlite").chmod(0o644)
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the reader, as nobody
            os.close(read)
            try:
                os.setgid(65534)
                os.setuid(65534)
                os.write(write, open_store(url).read([1]).snapshot.encode())
            except BaseException as error:
                os.write(write, f"error: {error}".encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(child, 0)
        with os.fdopen(read) as pipe:
            assert pipe.read() == version
    finally:
        shutil.rmtree(folder)
