"""What the DAG tasks run besides a stage function: the run's config and the validation step
that fails its task. Imported by the tasks when they run, not when a DAG file is parsed
(it loads the whole pipeline: torch, xgboost, Great Expectations)."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException

from basket.config.run import RunConfig, load_config
from basket.config.settings import overrides_from_json
from basket.serving.store.connect import default_store_url
from basket.training.retrain import ValidationFailed, validate_stage


def run_config(settings: dict) -> RunConfig:
    """The `RunConfig` of a DAG run: the defaults, the `config` file when one is set, then the
    `settings` JSON object ({"xgboost.rounds": 200}: any setting of `basket.config.settings`)."""
    return load_config(settings["config"] or None, overrides_from_json(settings["settings"]))


def validate_or_fail(settings: dict) -> str:
    """Validate the run's data (report in RUN/validation); on failure print the summary to the
    task log and fail the task without retries."""
    try:
        return str(validate_stage(settings["data_dir"], settings["run_dir"]))
    except ValidationFailed as failed:
        print(failed.report.summary())
        raise AirflowFailException(f"{settings['data_dir']} failed validation") from None


def store_url(settings: dict) -> str:
    """The history store of a DAG run: `store_url` when set, else the SQLite file beside the
    model store's archives (what a server on that model store is pointed at)."""
    return settings["store_url"] or default_store_url(settings["model_store"])
