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

    def command(self, args: list[str], home: Path | None = None, **extra: str):
        """`podman run` of the image running the cluster script with `args`, configured by
        environment variables only (the deployment's settings and the shared secrets)."""
        settings = {
            key: value
            for key, value in self.env(**extra).items()
            if key.startswith(("AIRFLOW__", "AIRFLOW_VAR_", "BASKET_"))
            and key != "BASKET_AIRFLOW_SECRETS"
        }
        settings.update(self.secrets)
        name = extra.get("BASKET_WORKER_NAME") or (args[0] if args else "main")
        container = f"{self.prefix}-{name}-{uuid.uuid4().hex[:4]}"
        self.containers.append(container)
        command = [*PODMAN, "run", "--rm", "--network=host", "--name", container, *LIMITS]
        command += ["-v", f"{self.shared}:{self.shared}"]
        for key, value in settings.items():
            command += ["-e", f"{key}={value}"]
        return [*command, self.image, "bash", SCRIPT, *args], None

    def stop(self) -> None:
        super().stop()
        for container in self.containers:
            subprocess.run([*PODMAN, "rm", "-f", container], capture_output=True, timeout=120)
