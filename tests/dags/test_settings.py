"""How a DAG run resolves its settings: trigger-time conf > Variable basket_<name> > default."""

from __future__ import annotations

import pytest

from basket.orchestration.dag_settings import DEFAULTS, resolve_settings
from basket.orchestration.dag_steps import run_config


@pytest.mark.parametrize("dag_id", ["basket_retrain", "basket_batch_score"])
def test_a_variable_applies_when_the_run_has_no_conf(dagbag, dag_id):
    """Airflow merges Param defaults into every run's params: they must not hide Variables."""
    params = dagbag.dags[dag_id].params.dump()  # what a scheduled run without conf gets
    variables = {"basket_data_dir": "/data/from/variable", "basket_k": "20"}
    settings = resolve_settings(params, "scheduled__2026-11-28", variables.get)
    assert settings["data_dir"] == "/data/from/variable"
    assert settings["k"] == "20"
    assert settings["model_store"] == DEFAULTS["model_store"]


def test_trigger_conf_beats_the_variable_and_the_variable_beats_the_default():
    variables = {"basket_data_dir": "/var/data", "basket_model_store": "/var/store"}
    settings = resolve_settings({"data_dir": "/conf/data"}, "manual__1", variables.get)
    assert settings["data_dir"] == "/conf/data"
    assert settings["model_store"] == "/var/store"
    assert settings["recommendations_dir"] == DEFAULTS["recommendations_dir"]


def test_the_run_dir_is_the_run_id_made_safe_for_a_path():
    settings = resolve_settings(
        {"runs_dir": "/runs"}, "scheduled__2026-11-28T02:00:00+00:00", lambda key: None
    )
    assert settings["run_dir"] == "/runs/scheduled__2026-11-28T02_00_00_00_00"


def test_every_setting_is_a_trigger_form_field_that_defaults_to_empty(dagbag):
    params = dagbag.dags["basket_retrain"].params
    assert set(params.keys()) == set(DEFAULTS)
    assert all(params.dump()[name] is None for name in DEFAULTS)


def test_run_settings_come_from_the_settings_object_over_the_config_file(tmp_path):
    """Any run setting from Airflow: the `settings` JSON (a param or the Variable
    basket_settings) on top of the `config` file, each checked by its setting's type."""
    config_file = tmp_path / "run.toml"
    config_file.write_text("[xgboost]\nrounds = 50\nmax_depth = 4\n")
    variables = {"basket_settings": '{"xgboost.rounds": 7, "train.pos_weights": [5, 10]}'}
    settings = resolve_settings({"config": str(config_file)}, "manual__2", variables.get)
    config = run_config(settings)
    assert config.xgboost.rounds == 7 and config.xgboost.max_depth == 4
    assert config.train.pos_weights == (5.0, 10.0)
    with pytest.raises(ValueError, match="unknown setting 'xgboost.round'"):
        run_config({**settings, "settings": '{"xgboost.round": 7}'})
    with pytest.raises(ValueError, match=r"setting vocab.top_n \(int or none\)"):
        run_config({**settings, "settings": '{"vocab.top_n": "many"}'})
