"""Nightly retrain: validate → prepare → embed → train candidates (in parallel) → compare →
package basket.mar → publish into the model store → register with TorchServe; and, beside
the training, validate → load the history store (`basket_store_url`; by default the SQLite
file histories.sqlite in the model store) that servers read for `{"user_id": …}` requests.

Each task calls one stage function of `basket`; the tasks share nothing but paths
(see `basket.orchestration.dag_settings` for how params, Variables and defaults resolve).
Bad data fails `validate` with the Great Expectations summary in its log and
nothing after it runs, so the model in production stays untouched. `publish`
refuses a winner that scores worse than production on the same split (the task
is then skipped and the asset not updated, so batch scoring is not triggered).
`register` loads a promoted model into the TorchServe at `basket_management_url`
(with the key in the Variable `basket_management_token` when token authorization
is on); it is retried on its own and never undoes the promotion.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from basket.config.candidates import training_tasks
from basket.orchestration.dag_settings import (
    PRODUCTION_MODEL_ASSET,
    SCHEDULES,
    dag_arguments,
    task_settings,
)

# Celery workers take tasks by queue: training on the big hosts, the rest anywhere
# (scripts/airflow_cluster.sh; ignored by the LocalExecutor).
TRAINING_RETRIES = {
    "queue": "training",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}


def _train(names: list[str]) -> list[str]:
    """Train the candidates of `names` that the run's config asks for."""
    from basket.orchestration.dag_steps import run_config
    from basket.training.retrain import candidate_names, train_stage

    settings = task_settings()
    config = run_config(settings)
    wanted = [name for name in names if name in candidate_names(config)]
    if not wanted:
        raise AirflowSkipException(f"the config trains none of {names}")
    return [str(path) for path in train_stage(settings["run_dir"], wanted, config)]


@dag(
    dag_id="basket_retrain",
    schedule=SCHEDULES["retrain"],
    doc_md=__doc__,
    **dag_arguments(),
)
def basket_retrain():
    @task
    def validate() -> str:
        from basket.orchestration.dag_steps import validate_or_fail

        return validate_or_fail(task_settings())

    @task(retries=2, retry_delay=timedelta(minutes=1))
    def load_store(validation: str) -> dict:
        """Every customer's validated history (quarantined lines left out, as training and
        scoring leave them out) as a new snapshot; servers switch to it at once."""
        from pathlib import Path

        from basket.orchestration.dag_steps import store_url
        from basket.serving.store.fill import load_snapshot

        settings = task_settings()
        info = load_snapshot(
            settings["data_dir"], store_url(settings), Path(validation) / "quarantine"
        )
        print(f"history store snapshot {info.version}: {info.users:,} customers")
        return info.as_dict()

    @task
    def prepare() -> str:
        from basket.orchestration.dag_steps import run_config
        from basket.training.retrain import prepare_stage

        settings = task_settings()
        return str(prepare_stage(settings["data_dir"], settings["run_dir"], run_config(settings)))

    @task
    def embed() -> str:
        from basket.orchestration.dag_steps import run_config
        from basket.training.retrain import embed_stage

        settings = task_settings()
        return str(embed_stage(settings["run_dir"], run_config(settings)))

    @task(trigger_rule="none_failed_min_one_success")
    def compare() -> str:
        from basket.orchestration.dag_steps import run_config
        from basket.training.retrain import compare_stage

        settings = task_settings()
        result = compare_stage(settings["run_dir"], run_config(settings))
        print((result.run_dir / "report.md").read_text())
        return result.winner

    @task
    def package() -> str:
        from pathlib import Path

        from basket.serving.package import package as package_winner

        settings = task_settings()
        written = package_winner(settings["run_dir"], Path(settings["run_dir"]) / "basket.mar")
        return str(written["mar"])

    @task(outlets=[Asset(PRODUCTION_MODEL_ASSET)])
    def publish(mar: str) -> dict:
        from dataclasses import asdict

        from basket.orchestration.publish import publish as publish_model

        settings = task_settings()
        result = publish_model(settings["run_dir"], mar, settings["model_store"])
        if not result.promoted:
            raise AirflowSkipException(result.reason)
        return asdict(result)

    @task(retries=3, retry_delay=timedelta(seconds=30))
    def register(published: dict) -> dict:
        """Load the promoted version into TorchServe. Promotion is done and the asset updated
        already: a failure here is retried and reported, never undone or half-done."""
        from airflow.sdk import Variable

        from basket.orchestration.publish import register_production

        settings = task_settings()
        if not settings["management_url"]:
            raise AirflowSkipException("no basket_management_url set: no TorchServe to update")
        token = Variable.get("basket_management_token", default=None)
        return register_production(settings["model_store"], settings["management_url"], token)

    # One training task per entry of the candidate table's `dag_task` (train_cnngru, …).
    trained = [
        task(task_id=task_id, **TRAINING_RETRIES)(_train)(list(names))
        for task_id, names in training_tasks().items()
    ]
    validated = validate()
    load_store(validated)
    validated >> prepare() >> embed() >> trained
    winner = compare()
    trained >> winner
    mar = package()
    winner >> mar
    register(publish(mar))


basket_retrain()
