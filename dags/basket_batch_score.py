"""Batch scoring: when a new model is published (the asset) and daily — validate → plan
shards → score each shard (dynamic task mapping) → merge into a parquet dataset
partitioned by run date.

Each shard is a contiguous slice of the customers to score, so a Celery or
Kubernetes executor spreads the mapped `score_shard` tasks over machines. The
merge writes `RECOMMENDATIONS_DIR/run_date=YYYY-MM-DD/recommendations.parquet`
beside its target and renames it into place; a re-run for the same date
replaces that partition, never duplicates it. The tasks call `basket` stage
functions only.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, Variable, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from basket.orchestration import DEFAULTS, PRODUCTION_MODEL_ASSET, SCHEDULES


def _settings() -> dict:
    from basket.orchestration import resolve_settings

    context = get_current_context()
    return resolve_settings(
        context["params"], context["run_id"], lambda key: Variable.get(key, default=None)
    )


@dag(
    dag_id="basket_batch_score",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(SCHEDULES["score"], timezone="UTC"),
        assets=[Asset(PRODUCTION_MODEL_ASSET)],
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["basket"],
    params={name: Param(default, type="string") for name, default in DEFAULTS.items()},
    doc_md=__doc__,
)
def basket_batch_score():
    @task
    def validate() -> bool:
        from pathlib import Path

        from basket.validate import validate as validate_data

        settings = _settings()
        report = validate_data(
            settings["data_dir"], report_dir=Path(settings["run_dir"]) / "validation"
        )
        print(report.summary())
        if not report.success:
            raise AirflowFailException(f"{settings['data_dir']} failed validation")
        return True

    @task
    def plan_shards() -> list[dict]:
        from basket.batch import plan_shards as plan

        settings = _settings()
        return plan(settings["data_dir"], int(settings["users_per_shard"]))

    @task(retries=2)
    def score_shard(shard: dict) -> str:
        from pathlib import Path

        from basket.batch import score_users

        settings = _settings()
        out = Path(settings["run_dir"]) / "shards" / f"part-{shard['index']:05d}.parquet"
        result = score_users(
            Path(settings["model_store"]) / "basket.mar",
            settings["data_dir"],
            out,
            k=int(settings["k"]),
            shard=(shard["index"], shard["count"]),
        )
        print(
            f"shard {shard['index']}/{shard['count']}: {result.users:,} customers, {result.rows:,} rows"
        )
        return str(result.out_path)

    @task
    def merge(parts: list[str]) -> str:
        from basket.batch import merge_shards

        settings = _settings()
        context = get_current_context()
        # Asset-triggered runs have no logical date; they are dated by when they ran.
        when = context.get("logical_date") or context["dag_run"].run_after
        run_date = when.strftime("%Y-%m-%d")
        return str(merge_shards(sorted(parts), settings["recommendations_dir"], run_date))

    shards = plan_shards()
    validate() >> shards
    merge(score_shard.expand(shard=shards))


basket_batch_score()
