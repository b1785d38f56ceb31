"""`basket retrain`: the report contract, the winner, bad data, and no peeking at evaluation baskets."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from basket.commands.cli import main
from basket.config.run import load_config
from basket.data import VocabConfig
from basket.data.history import sample_positions
from basket.data.prepare import Prepared, prepare
from basket.models.registry import load_model
from basket.testing.histories import same_histories
from basket.training.compare import evaluate_candidate
from basket.training.retrain import ValidationFailed, evaluation_sample, retrain

TINY = {
    "train": {
        "epochs": 1,
        "batch_size": 64,
        "targets_per_user": 1,
        "pos_weights": [5.0],
    },
    "predictor": {"order_hidden": 32},
    "embed": {"epochs": 3},
    "xgboost": {"rounds": 40, "targets_per_user": 1},
    # Each lever once, one setting: the search and the report's levers, in seconds.
    "ranker_search": {"max_depth": [4], "learning_rate": [], "min_child_weight": [],
                      "targets_per_user": [], "explore": []},
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(synth_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    return retrain(synth_dir, run_dir, load_config(overrides=TINY))


def test_report_follows_the_contract(tiny_run):
    report = json.loads(tiny_run.report_path.read_text())
    assert report["primary_metric"] == "recall@10"
    assert set(report["candidates"]) == {
        "cnngru",
        "attentiongru",
        "xgboost",
        "p_topfreq",
        "tifu_knn",
        "blend",
    }
    for metrics in report["candidates"].values():
        assert {"recall@10", "precision@10", "ndcg@10", "basket_f1_samples"} <= set(metrics)
    # the winner is within the noise of the best recall@10, and the report says why
    rule = report["significance"]
    best = max(report["candidates"].values(), key=lambda m: m["recall@10"])["recall@10"]
    assert report["candidates"][rule["best"]]["recall@10"] == best
    assert report["winner"] == rule["winner"] and rule["winner"] in rule["within_noise"]
    for metrics in report["candidates"].values():
        assert metrics["recall@10_low"] <= metrics["recall@10"] <= metrics["recall@10_high"]
    assert rule["explanation"] in (tiny_run.run_dir / "report.md").read_text()
    # and whether the neural nets add anything over the best of the others
    gain = report["neural_gain"]
    assert gain["neural"] in ("cnngru", "attentiongru")
    assert gain["other"] in ("p_topfreq", "tifu_knn", "xgboost", "blend")
    assert "The neural nets add" in (tiny_run.run_dir / "report.md").read_text()
    # the vocabulary is the whole catalogue; the report says what the neural output layer holds
    vocabulary = report["vocabulary"]
    assert vocabulary["products"] >= vocabulary["neural_output_layer"]
    assert (
        vocabulary["held_out_lines_covered"]
        >= vocabulary["held_out_lines_in_the_neural_output_layer"]
    )
    assert "The neural output layer holds" in (tiny_run.run_dir / "report.md").read_text()
    for name in ("report.md", "candidates.png", "precision_recall_at_k.png", "config.json"):
        assert (tiny_run.run_dir / name).is_file(), name


def test_the_report_says_what_each_lever_gained_and_what_ships_uses(tiny_run):
    """Every lever chosen on validation is in the report with its gain and interval, and one
    sentence says which inputs the shipped model uses and why."""
    report = json.loads(tiny_run.report_path.read_text())
    markdown = (tiny_run.run_dir / "report.md").read_text()
    assert "## Levers chosen on validation" in markdown
    assert f"The shipped model, {report['winner']}, " in markdown
    names = {lever["lever"].split(" (")[0] for lever in report["levers"]["xgboost"]}
    assert names == {"TIFU-KNN's scores as ranker features", "the repurchase kernel's features",
                     "ranker settings searched"}  # fmt: skip
    assert report["levers"]["blend"][-1]["lever"].startswith("the blend with TIFU-KNN")
    for records in report["levers"].values():
        for lever in records:
            assert lever["gain_low"] <= lever["gain"] <= lever["gain_high"]
            assert f"{lever['gain']:+.4f} ({lever['gain_low']:+.4f}" in markdown
    grid = pd.read_csv(tiny_run.run_dir / "grid" / "xgboost_grid.csv")
    assert list(grid["setting"]) == [
        "(start)",
        "neighbour_features",
        "repurchase_features",
        "max_depth",
    ]


def test_what_ships_is_the_refit_and_the_report_shows_what_it_gained(tiny_run):
    """Candidates are tuned with labels up to the basket before the validation basket, then
    refit with it: the refit is evaluated and shipped, the tuned one reported beside it."""
    report = json.loads(tiny_run.report_path.read_text())
    assert set(report["tuned_candidates"]) == set(report["candidates"])
    for name in report["candidates"]:
        meta = json.loads((tiny_run.run_dir / "models" / name / "model.json").read_text())
        assert meta["fit"] == "refit", name
    assert json.loads((tiny_run.winner_dir / "model.json").read_text())["fit"] == "refit"
    # XGBoost's refit learnt from more labels: it is a different model from the tuned one
    tuned = load_model(tiny_run.run_dir / "tuned" / "xgboost")
    shipped = load_model(tiny_run.run_dir / "models" / "xgboost")
    assert tuned.booster.best_iteration == shipped.booster.best_iteration
    assert tuned.booster.save_raw() != shipped.booster.save_raw()
    assert "What the refit gained" in (tiny_run.run_dir / "report.md").read_text()


def test_no_refit_ships_the_tuned_candidates(synth_dir, tmp_path):
    config = load_config(overrides={**TINY, "refit": False, "models": [], "baselines": ["xgboost"]})
    result = retrain(synth_dir, tmp_path / "run", config)
    report = json.loads(result.report_path.read_text())
    assert report["tuned_candidates"] == {} and not (tmp_path / "run" / "tuned").exists()
    assert json.loads((result.winner_dir / "model.json").read_text())["fit"] == "tuned"


def test_winner_dir_holds_a_loadable_model_with_its_version(tiny_run, prepared):
    meta = json.loads((tiny_run.winner_dir / "model.json").read_text())
    assert meta["name"] == tiny_run.winner
    assert meta["version"].startswith(tiny_run.winner) and len(meta["data_fingerprint"]) == 64
    assert (tiny_run.winner_dir / "vocab.parquet").is_file()
    model = load_model(tiny_run.winner_dir)
    answer = model.recommend(prepared.splits.eval_inputs.select_users(np.arange(5)), k=10)
    assert answer.product_ids.shape == (5, 10)


def test_invalid_data_stops_before_training(data_copy, tmp_path, capsys):
    orders = pd.read_csv(data_copy / "orders.csv")
    orders.loc[4, "order_hour_of_day"] = 31
    orders.to_csv(data_copy / "orders.csv", index=False)
    with pytest.raises(ValidationFailed, match="order_hour_of_day"):
        retrain(data_copy, tmp_path / "run", load_config(overrides=TINY))
    assert not (tmp_path / "run" / "winner").exists() and not (tmp_path / "run" / "models").exists()
    assert (tmp_path / "run" / "validation" / "validation_result.json").is_file()
    assert main(["retrain", str(data_copy), "--out", str(tmp_path / "cli")]) == 1
    assert "no winner was written" in capsys.readouterr().out


def test_no_candidate_sees_the_evaluation_baskets(synth_dir, tmp_path):
    """Scramble every evaluation basket: every trained candidate must score exactly the same."""
    scrambled = tmp_path / "scrambled"
    shutil.copytree(synth_dir, scrambled)
    lines = pd.read_csv(scrambled / "order_products__train.csv")  # the evaluation baskets
    rng = np.random.default_rng(0)
    lines["product_id"] = rng.permutation(lines["product_id"].to_numpy())
    lines = lines.drop_duplicates(["order_id", "product_id"])
    lines.to_csv(scrambled / "order_products__train.csv", index=False)

    config = load_config(overrides=TINY)
    original, changed = prepare(synth_dir, VocabConfig()), prepare(scrambled, VocabConfig())
    assert same_histories(original.splits.eval_inputs, changed.splits.eval_inputs)
    assert not np.array_equal(
        original.splits.eval_targets.product_ids, changed.splits.eval_targets.product_ids
    )
    from basket.models.embed import embed_products, read_embeddings
    from basket.training.retrain import candidate_names
    from basket.training.tuning import refit_set, tune, tuning_set

    inputs = original.splits.eval_inputs
    for name in candidate_names(config):
        answers = []
        for data, folder in ((original, tmp_path / "a"), (changed, tmp_path / "b")):
            folder.mkdir(exist_ok=True)
            vectors = embed_products(
                data.splits.eval_inputs, data.vocab, folder / "ev.parquet", config.embed
            )
            embeddings = read_embeddings(vectors, data.vocab)
            # tuned on the validation baskets, then refit with them as labels: what ships
            model = tune(name, tuning_set(data, embeddings), config).model
            model.fit(refit_set(data, embeddings))
            answers.append((model.score(inputs), model.threshold, model.decoding))
        np.testing.assert_array_equal(answers[0][0], answers[1][0], err_msg=name)
        assert answers[0][1:] == answers[1][1:], name


def test_what_the_refit_gained_is_measured_on_a_bounded_sample(synth_dir, tmp_path):
    """At Instacart scale scoring every customer with the tuned models too would add minutes
    per candidate: the table scores both fits on the same sample of `refit_gain_users`."""
    config = load_config(overrides={**TINY, "refit_gain_users": 50})
    result = retrain(synth_dir, tmp_path / "run", config, candidates=("p_topfreq",))
    report = json.loads(result.report_path.read_text())
    assert report["refit_gain_customers"] == 50 < report["users_evaluated"]
    on_sample = report["refit_candidates_on_the_same_customers"]["p_topfreq"]
    assert on_sample["recall@10"] != report["candidates"]["p_topfreq"]["recall@10"]
    assert set(report["tuned_candidates"]) == {"p_topfreq"}
    # Read from the comparison's per-customer values, as scoring the shipped model there gives.
    data = Prepared.load(result.run_dir / "prepared")
    inputs, targets = evaluation_sample(data, config.eval_users)
    keep = sample_positions(inputs.n_users, 50)
    shipped = load_model(result.run_dir / "models" / "p_topfreq")
    scored = evaluate_candidate(shipped, inputs.select_users(keep), targets.select_users(keep), 10)
    assert on_sample["recall@10"] == scored.metrics["recall@10"]
    assert on_sample["ndcg@10"] == scored.metrics["ndcg@10"]


def test_the_comparison_scores_a_fixed_sample_of_eval_users_and_says_so(synth_dir, tmp_path):
    """At Instacart scale the comparison scores a fixed sample of held-out customers: the same
    sample every run (so runs compare), reported with its size in report.json and report.md."""
    config = load_config(overrides={**TINY, "eval_users": 120, "refit_gain_users": 40})
    reports = []
    for attempt in range(2):
        run = retrain(synth_dir, tmp_path / f"run{attempt}", config, candidates=("p_topfreq",))
        reports.append(json.loads(run.report_path.read_text()))
    report = reports[0]
    assert report["users_evaluated"] == 120 < report["users_held_out"]
    assert reports[1]["candidates"] == report["candidates"]  # the same customers, the same metrics
    assert report["refit_gain_customers"] == 40
    markdown = (tmp_path / "run0" / "report.md").read_text()
    assert f"sample of 120 of the {report['users_held_out']:,} held-out customers" in markdown
