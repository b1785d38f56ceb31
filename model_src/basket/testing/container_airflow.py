"""`AirflowDeployment` with every component in a container of the basket image: scheduler,
dag-processor, api-server and triggerer in one, each Celery worker in its own, and the
airflow CLI in short-lived ones. Each is configured by environment variables only (what
compose.yaml passes), on the host's network (the machine's PostgreSQL and Redis), with
`shared` (data, runs, model store) mounted at the same path. Test harness only.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from basket.testing.airflow_deployment import AirflowDeployment

# runc: crun refuses this host's cgroups; explicit ulimits: podman's defaults are refused here.
PODMAN = ["podman", "--runtime", "/usr/sbin/runc"]
LIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]
SCRIPT = "/app/scripts/airflow_cluster.sh"


@dataclass
class ContainerAirflowDeployment(AirflowDeployment):
    """The Celery deployment of `AirflowDeployment`, each part in a container of `image`."""

    image: str = "localhost/basket:latest"
    shared: Path | None = None
    containers: list[str] = field(default_factory=list)

    def __post_init__(self):
        super().__post_init__()
        self.prefix = f"basket-airflow-{uuid.uuid4().hex[:6]}"
        # The secrets every container shares, as compose.yaml's environment gives them.
        self.secrets = {
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }

    def container_command(self, name: str, args: list[str], **extra: str) -> list[str]:
        """`podman run` of the image running the cluster script with `args`."""
        settings = {
            key: value
            for key, value in self.env(**extra).items()
            if key.startswith(("AIRFLOW__", "AIRFLOW_VAR_", "BASKET_"))
            and key != "BASKET_AIRFLOW_SECRETS"
        }
        settings.update(self.secrets)
        container = f"{self.prefix}-{name}"
        self.containers.append(container)
        command = [*PODMAN, "run", "--rm", "--network=host", "--name", container, *LIMITS]
        command += ["-v", f"{self.shared}:{self.shared}"]
        for key, value in settings.items():
            command += ["-e", f"{key}={value}"]
        return [*command, self.image, "bash", SCRIPT, *args]

    def start(self) -> ContainerAirflowDeployment:
        self.launch(self.container_command("main", []), env=None)
        self.wait_until(self._api_healthy)
        for name in self.workers:
            home = self.home / name
            home.mkdir(exist_ok=True)
            with open(home / "worker.log", "wb") as log:
                self.worker_processes[name] = subprocess.Popen(
                    self.container_command(name, ["worker"], BASKET_WORKER_NAME=name),
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
        self.wait_until(self._dags_and_workers_ready)
        return self

    def cli(self, *args: str, timeout: float = 180) -> str:
        command = self.container_command(f"cli-{uuid.uuid4().hex[:4]}", ["airflow", *args])
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        super().stop()
        for container in self.containers:
            subprocess.run([*PODMAN, "rm", "-f", container], capture_output=True, timeout=120)
