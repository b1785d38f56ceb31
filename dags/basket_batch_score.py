"""Batch scoring: when a new model is published (the asset) and daily — validate → plan
shards → score each shard (dynamic task mapping) → merge into a parquet dataset
partitioned by run date.

Each shard is a contiguous slice of the customers to score, so a Celery or
Kubernetes executor spreads the mapped `score_shard` tasks over machines. The
plan writes each shard's customers (orders, lines, catalogue) into a folder of
its own under the run folder, in one pass over the data: a shard reads only its
own lines, and the merge removes those folders. The
merge writes `RECOMMENDATIONS_DIR/run_date=YYYY-MM-DD/recommendations.parquet`
beside its target and renames it into place; a re-run for the same date
replaces that partition, never duplicates it. Each shard also stores its
customers' answers beside their histories in the history store (`basket_store_url`), so
servers answer requests by id with a lookup until the customer orders again or another model
is published. The tasks call `basket` stage functions only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from airflow.sdk import Asset, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from basket.orchestration.dag_settings import (
    PRODUCTION_MODEL_ASSET,
    SCHEDULES,
    dag_arguments,
    task_settings,
)


@dag(
    dag_id="basket_batch_score",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(SCHEDULES["score"], timezone="UTC"),
        assets=[Asset(PRODUCTION_MODEL_ASSET)],
    ),
    doc_md=__doc__,
    **dag_arguments(),
)
def basket_batch_score():
    @task
    def validate() -> str:
        from basket.orchestration.dag_steps import validate_or_fail

        return validate_or_fail(task_settings())

    @task
    def plan_shards() -> list[dict]:
        """Pin the production model once (every shard scores this copy, whatever is published
        meanwhile) and cut the customers into shards; skip when nothing is in production."""
        from basket.orchestration.publish import NoProductionModel, pin_production
        from basket.serving.batch import plan_shards as plan

        settings = task_settings()
        try:
            version, pinned = pin_production(settings["model_store"], settings["run_dir"])
        except NoProductionModel as missing:
            raise AirflowSkipException(f"nothing to score with yet: {missing}") from None
        # Each shard's customers land in a folder of their own: a shard reads only its lines.
        inputs = Path(settings["run_dir"]) / "inputs"
        shards = plan(settings["data_dir"], int(settings["users_per_shard"]), inputs)
        print(f"scoring with {version} ({pinned}) in {len(shards)} shards")
        return [{**shard, "model": str(pinned), "version": version} for shard in shards]

    @task(retries=2, queue="scoring")
    def score_shard(shard: dict) -> str:
        from basket.orchestration.dag_steps import store_url
        from basket.serving.batch import score_users

        settings = task_settings()
        out = Path(settings["run_dir"]) / "shards" / f"part-{shard['index']:05d}.parquet"
        result = score_users(
            shard["model"],
            shard["data_dir"],  # this shard's customers only (plan_shards)
            out,
            k=int(settings["k"]),
            quarantine=Path(settings["run_dir"]) / "validation" / "quarantine",
            # Each customer's answer also goes beside their history in the store, keyed to it
            # and to this pinned model: servers answer by id with a lookup while both hold.
            store_url=store_url(settings),
        )
        print(
            f"shard {shard['index']}/{shard['count']} ({shard['version']}): "
            f"{result.users:,} customers, {result.rows:,} rows in {result.seconds:.1f} s; "
            f"nightly answers stored for {result.answers_stored:,}"
        )
        return str(result.out_path)

    @task
    def merge(parts: list[str]) -> str:
        from basket.serving.batch import merge_shards

        settings = task_settings()
        context = get_current_context()
        # Asset-triggered runs have no logical date; they are dated by when they ran.
        when = context.get("logical_date") or context["dag_run"].run_after
        run_date = when.strftime("%Y-%m-%d")
        merged = merge_shards(sorted(parts), settings["recommendations_dir"], run_date)
        shutil.rmtree(Path(settings["run_dir"]) / "inputs", ignore_errors=True)
        return str(merged)

    shards = plan_shards()
    validate() >> shards
    merge(score_shard.expand(shard=shards))


basket_batch_score()
