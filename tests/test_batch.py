"""Batch scoring: contract columns, parity with in-process answers, atomic writes."""

from __future__ import annotations

import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

import basket.serving.batch as batch
from basket.commands.cli import main
from basket.data import DataFileError, build_histories, load_tables
from basket.data.blocks import OrderRouting, split_tables
from basket.io.background import read_ahead, write_behind
from basket.models.top_freq import PTopFreq
from basket.testing.histories import scoring_users


@pytest.fixture(scope="module")
def model_dir(prepared, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "p_topfreq"
    return PTopFreq(prepared.vocab).save(folder, extra={"version": "p_topfreq-test-1"})


def test_scores_every_user_with_a_test_order_in_contract_columns(model_dir, synth_dir, tmp_path):
    result = batch.score_users(model_dir, synth_dir, tmp_path / "recs.parquet", k=5)
    frame = pd.read_parquet(result.out_path)
    assert list(frame.columns) == [
        "user_id",
        "rank",
        "product_id",
        "product_name",
        "score",
        "model_version",
    ]
    orders = load_tables(synth_dir).orders
    assert set(frame["user_id"]) == set(orders.loc[orders["eval_set"] == "test", "user_id"])
    assert frame.groupby("user_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    assert (frame.groupby("user_id")["score"].diff().dropna() <= 0).all()
    assert (frame["model_version"] == "p_topfreq-test-1").all() and frame[
        "product_name"
    ].str.len().gt(0).all()


def test_batch_answers_equal_in_process_recommendations(model_dir, synth_dir, prepared, tmp_path):
    frame = pd.read_parquet(
        batch.score_users(model_dir, synth_dir, tmp_path / "r.parquet").out_path
    )
    histories = build_histories(load_tables(synth_dir))
    histories = histories.select_users(scoring_users(histories))
    answer = PTopFreq(prepared.vocab).recommend(histories.select_users(np.arange(3)), k=10)
    for row, user in enumerate(answer.user_ids):
        mine = frame[frame["user_id"] == user].sort_values("rank")
        assert mine["product_id"].tolist() == answer.product_ids[row].tolist()
        np.testing.assert_allclose(mine["score"].to_numpy(), answer.scores[row], rtol=1e-6)


def test_rerun_gives_the_same_file_and_a_mar_archive_works(model_dir, synth_dir, tmp_path):
    first = batch.score_users(model_dir, synth_dir, tmp_path / "a.parquet").out_path
    archive = tmp_path / "model.mar"
    with zipfile.ZipFile(archive, "w") as mar:
        for path in model_dir.iterdir():
            mar.write(path, path.name)
    second = batch.score_users(archive, synth_dir, tmp_path / "b.parquet").out_path
    assert first.read_bytes() == second.read_bytes()


def test_a_failure_leaves_no_partial_file(model_dir, synth_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "CHUNK_USERS", 20)
    calls = {"n": 0}
    original = PTopFreq.recommend

    def fail_on_second_chunk(self, histories, k=10):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return original(self, histories, k)

    monkeypatch.setattr(PTopFreq, "recommend", fail_on_second_chunk)
    out = tmp_path / "recs.parquet"
    with pytest.raises(RuntimeError, match="disk on fire"):
        batch.score_users(model_dir, synth_dir, out)
    assert list(tmp_path.iterdir()) == []


def test_cli_score(model_dir, synth_dir, tmp_path, capsys):
    assert (
        main(
            [
                "score",
                "--model",
                str(model_dir),
                "--data",
                str(synth_dir),
                "--out",
                str(tmp_path / "o.parquet"),
            ]
        )
        == 0
    )
    assert "users/s" in capsys.readouterr().out
    assert len(pd.read_parquet(tmp_path / "o.parquet")) > 0


@pytest.mark.parametrize("file_format", ["csv", "parquet", "parquet with sparse order ids"])
def test_reading_in_customer_blocks_gives_the_same_file(
    xgb_run_dir, synth_dir, tmp_path, monkeypatch, file_format
):
    model_dir = xgb_run_dir / "winner"  # reads every part of the history, context included
    data = synth_dir
    if file_format != "csv":
        data = tmp_path / "parquet"
        data.mkdir()
        for path in synth_dir.glob("*.csv"):
            table = pa_csv.read_csv(path)
            if "sparse" in file_format and "order_id" in table.column_names:
                # Ids far apart, as a shop's own may be: lines are routed by search, not a table.
                ids = pc.add(pc.multiply(table["order_id"], 1000), 7)
                table = table.set_column(table.schema.get_field_index("order_id"), "order_id", ids)
            pq.write_table(table, data / f"{path.stem}.parquet")
    whole = batch.score_users(model_dir, data, tmp_path / "whole.parquet")
    monkeypatch.setattr(batch, "BLOCK_USERS", 25)
    blocked = batch.score_users(model_dir, data, tmp_path / "blocked.parquet")
    assert blocked.users == whole.users and blocked.rows == whole.rows
    pd.testing.assert_frame_equal(
        pd.read_parquet(blocked.out_path), pd.read_parquet(whole.out_path)
    )


def test_a_block_split_into_parts_gives_each_customer_their_whole_history_once(synth_dir):
    """Histories are built a part of a block at a time (so scoring starts after one part):
    the parts' histories, one after the other, are the block's, customer for customer, and a
    line of an order no customer of the block made is in no part."""
    tables = load_tables(synth_dir)
    stray = tables.prior_lines.iloc[:3].assign(order_id=10**7)
    tables = replace(tables, prior_lines=pd.concat([stray, tables.prior_lines], ignore_index=True))
    whole = build_histories(tables)
    parts = [build_histories(part) for part in split_tables(tables, 7)]
    assert len(parts) == -(-tables.orders["user_id"].nunique() // 7) and len(parts) > 1
    start = 0
    for part in parts:
        assert 0 < part.n_users <= 7
        expected = whole.select_users(np.arange(start, start + part.n_users))
        for name, value in vars(expected).items():
            np.testing.assert_array_equal(getattr(part, name), value, err_msg=name)
        start += part.n_users
    assert start == whole.n_users


def test_histories_built_a_chunk_at_a_time_give_the_same_file(
    xgb_run_dir, synth_dir, tmp_path, monkeypatch
):
    whole = batch.score_users(xgb_run_dir / "winner", synth_dir, tmp_path / "whole.parquet")
    monkeypatch.setattr(batch, "CHUNK_USERS", 7)
    chunked = batch.score_users(xgb_run_dir / "winner", synth_dir, tmp_path / "chunked.parquet")
    pd.testing.assert_frame_equal(
        pd.read_parquet(chunked.out_path), pd.read_parquet(whole.out_path)
    )


def test_lines_are_routed_to_their_customers_block_by_table_or_by_search_alike():
    """An order id names its customer's block whether the ids are dense (a table indexed by id)
    or far apart (a search); a line of an order no chosen customer made goes nowhere."""
    orders = pd.DataFrame({"order_id": [5, 3, 9, 1], "user_id": [20, 10, 30, 10]})
    user_ids = np.array([10, 20, 30])
    dense = OrderRouting.of(orders, user_ids, np.array([0, 0, 1]))
    sparse = OrderRouting.of(
        orders.assign(order_id=orders["order_id"] * 10**8), user_ids, np.array([0, 0, 1])
    )
    assert dense.block_by_id is not None and sparse.block_by_id is None
    lines = np.array([1, 3, 5, 9, 2, 0, 11, -4])
    expected = [0, 0, 0, 1, -1, -1, -1, -1]
    assert dense.blocks_of(lines).tolist() == expected
    assert sparse.blocks_of(lines * 10**8).tolist() == expected


def test_the_next_block_is_read_while_this_one_is_scored():
    """Reading and building a block of 50,000 customers takes seconds: it overlaps the scoring
    of the previous block, in order, and a reader's error still reaches the caller."""
    producing_second = threading.Event()

    def blocks():
        yield "first"
        producing_second.set()
        yield "second"
        raise DataFileError(Path("orders.csv"), "broken in the third block")

    seen = []
    with pytest.raises(DataFileError, match="third block"):
        for block in read_ahead(blocks()):
            if block == "first":
                # The consumer has not asked for the second block yet: only read-ahead makes it.
                assert producing_second.wait(timeout=30)
            seen.append(block)
    assert seen == ["first", "second"]


def test_each_planned_shard_reads_a_folder_of_only_its_customers(xgb_run_dir, synth_dir, tmp_path):
    """The batch DAG's plan writes each shard's customers to a folder of their own: scoring the
    folders one by one and merging gives the unsharded file, and no folder holds anyone
    else's orders or lines (a shard no longer reads the whole data set)."""
    model_dir = xgb_run_dir / "winner"
    whole = batch.score_users(model_dir, synth_dir, tmp_path / "whole.parquet")
    shards = batch.plan_shards(synth_dir, users_per_shard=30, inputs_dir=tmp_path / "inputs")
    assert len(shards) >= 3
    parts = [
        batch.score_users(model_dir, shard["data_dir"], tmp_path / f"part-{shard['index']}.parquet")
        for shard in shards
    ]
    merged = batch.merge_shards([part.out_path for part in parts], tmp_path / "recs", "2026-12-01")
    pd.testing.assert_frame_equal(pd.read_parquet(merged), pd.read_parquet(whole.out_path))

    tables = load_tables(synth_dir)
    folders = [load_tables(shard["data_dir"]) for shard in shards]
    owners = [set(folder.orders["user_id"]) for folder in folders]
    assert sum(map(len, owners)) == len(set().union(*owners))  # no customer in two folders
    assert set().union(*owners) == set(
        tables.orders.loc[tables.orders["eval_set"] == "test", "user_id"]
    )
    for folder, users in zip(folders, owners, strict=True):
        own_orders = set(tables.orders.loc[tables.orders["user_id"].isin(users), "order_id"])
        assert set(folder.prior_lines["order_id"]) <= own_orders
        expected = tables.prior_lines["order_id"].isin(own_orders).sum()
        assert len(folder.prior_lines) == expected  # every one of its lines, no one else's


def test_chunks_are_written_behind_the_scoring_in_order_and_a_write_error_stops_the_run():
    """Building and writing a chunk's parquet overlaps the scoring of the next chunk; the chunks
    land in the order they were scored, and a failed write reaches the caller."""
    writing_first, written = threading.Event(), []
    release = threading.Event()

    def write(chunk):
        if chunk == "first":
            writing_first.set()
            assert release.wait(timeout=30)
        if chunk == "broken":
            raise OSError("disk full")
        written.append(chunk)

    with pytest.raises(OSError, match="disk full"):
        with write_behind() as submit:
            submit(write, "first")
            # submit returned while "first" is still being written: the caller scores on.
            assert writing_first.wait(timeout=30) and not written
            release.set()
            submit(write, "second")
            submit(write, "broken")
    assert written == ["first", "second"]
