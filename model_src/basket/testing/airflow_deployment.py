"""A real Airflow deployment of basket's DAGs, for tests and benchmarks.

`AirflowDeployment` runs `scripts/airflow_cluster.sh` (what `make airflow` and
docs/deployment.md's scale-out run) in its own AIRFLOW_HOME with free ports: scheduler,
dag-processor, api-server and triggerer with the LocalExecutor on SQLite, or,
given a database and a broker URL, the CeleryExecutor with Celery workers, each
worker in its own AIRFLOW_HOME as if on its own host. The airflow CLI runs
against it through the same script; the metadata DB is read with SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from basket.serving.torchserve import http
from basket.testing.local_server import LocalServer, free_port

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "airflow_cluster.sh"
DONE = ("success", "failed")


@dataclass
class AirflowDeployment(LocalServer):
    """Airflow on free local ports in `home`; `workers` names Celery workers (needs a broker)."""

    home: Path
    db_url: str | None = None
    broker_url: str | None = None
    workers: tuple[str, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)  # more environment, every process
    # Worker name -> the CPUs it may run on (`taskset -c` list, e.g. "0"): one-core hosts.
    worker_cpus: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 240.0
    worker_processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    name = "airflow"

    def __post_init__(self):
        self.home = Path(self.home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.db_url = self.db_url or f"sqlite:///{self.home}/airflow.db"
        self.port = free_port()
        self._engine = None

    @property
    def log_path(self) -> Path:
        return self.home / "deployment.log"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, home: Path | None = None, **extra: str) -> dict[str, str]:
        """The script's environment: this deployment's settings, nothing of the caller's Airflow."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            AIRFLOW_HOME=str(home or self.home),
            VENV=str(Path(sys.executable).parent.parent),
            BASKET_AIRFLOW_DB=self.db_url,
            BASKET_AIRFLOW_PORT=str(self.port),
            BASKET_AIRFLOW_SECRETS=str(self.home / "basket-secrets.env"),
            # Log servers on free ports, so two deployments (or workers) on one host never clash.
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=str(free_port()),
        )
        if self.broker_url:
            env["BASKET_AIRFLOW_BROKER"] = self.broker_url
        env.update(self.settings)
        env.update(extra)
        return env

    def command(self, args: list[str], home: Path | None = None, **extra: str):
        """(command, environment) running the cluster script with `args` (a variant runs it
        elsewhere by overriding this)."""
        return ["bash", str(SCRIPT), *args], self.env(home, **extra)

    def start(self) -> AirflowDeployment:
        """Start scheduler, dag-processor, api-server, triggerer (and the workers); wait until
        the api-server answers, both DAGs are in the metadata DB and every worker is ready."""
        self.launch(*self.command([]))
        self.wait_until(self._api_healthy)
        for name in self.workers:
            home = self.home / name
            home.mkdir(exist_ok=True)
            command, env = self.command(["worker"], home, BASKET_WORKER_NAME=name)
            if name in self.worker_cpus:
                command = ["taskset", "-c", self.worker_cpus[name], *command]
            with open(home / "worker.log", "wb") as log:
                self.worker_processes[name] = subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
        self.wait_until(self._dags_and_workers_ready)
        return self

    def _api_healthy(self) -> bool:
        return http("GET", f"{self.api_url}/api/v2/monitor/health", timeout=2)[0] == 200

    def _dags_and_workers_ready(self) -> bool:
        for name, process in self.worker_processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"worker {name} exited:\n{self.worker_log(name)}")
            if f"{name} ready" not in self.worker_log(name):
                return False
        dags = {row["dag_id"] for row in self.query("SELECT dag_id FROM dag")}
        return {"basket_retrain", "basket_batch_score"} <= dags

    def worker_log(self, name: str) -> str:
        path = self.home / name / "worker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run `airflow ARGS` against this deployment; its stdout (raises on failure)."""
        command, env = self.command(["airflow", *args])
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def set_variables(self, variables: dict[str, str]) -> None:
        """Airflow Variables in the metadata DB (`airflow variables import`, one CLI call)."""
        path = self.home / "variables.json"
        path.write_text(json.dumps(variables))
        self.cli("variables", "import", str(path), "--action-on-existing-key", "overwrite")

    def query(self, sql: str, **params) -> list[dict]:
        """Rows of a SQL query on the metadata DB, as dicts."""
        if self._engine is None:
            self._engine = sa.create_engine(self.db_url)
        with self._engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.text(sql), params)]

    def dag_runs(self, dag_id: str) -> list[dict]:
        """Every run of `dag_id`, oldest first."""
        return self.query(
            "SELECT run_id, state, run_type, conf, start_date, end_date FROM dag_run "
            "WHERE dag_id = :dag_id ORDER BY id",
            dag_id=dag_id,
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Every task instance of one run: task_id, map_index, state, start/end, hostname, try."""
        return self.query(
            "SELECT task_id, map_index, state, start_date, end_date, hostname, try_number "
            "FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id "
            "ORDER BY task_id, map_index",
            dag_id=dag_id,
            run_id=run_id,
        )

    def wait_for(self, what: str, check: Callable[[], bool], timeout_s: float = 600) -> None:
        """Poll `check` every 2 s until it holds; on timeout raise with the logs' tails."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"airflow exited while waiting for {what}:\n{self.log_tail()}")
            if check():
                return
            time.sleep(2)
        raise TimeoutError(f"{what}: not within {timeout_s:.0f}s\n{self.log_tail(80)}")

    def wait_for_runs(self, dag_id: str, count: int, timeout_s: float = 600) -> list[dict]:
        """Wait until `dag_id` has at least `count` finished runs; every run, oldest first."""
        self.wait_for(
            f"{count} finished runs of {dag_id}",
            lambda: sum(run["state"] in DONE for run in self.dag_runs(dag_id)) >= count,
            timeout_s,
        )
        return self.dag_runs(dag_id)

    def stop(self) -> None:
        """Stop the workers, then the rest (SIGTERM to each process group, SIGKILL if stuck)."""
        for process in self.worker_processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.worker_processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.worker_processes.clear()
        self.end_process(grace_s=60)
        if self._engine is not None:
            self._engine.dispose()
