"""A server process started for tests and benchmarks: launched in its own session with its
output in a log file, waited on until it says it is ready, stopped with its children.
`LocalTorchServe` and `LocalTriton` build on it. Test and benchmark harness only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """Process handling shared by the local servers; subclasses define `start` and `ready`."""

    name = "server"
    start_timeout_s: float = 180.0
    process: subprocess.Popen | None = None
    log_path: Path

    def launch(self, command: list[str], env: dict, cwd: Path | None = None) -> None:
        """Start `command` in its own process group, stdout and stderr into `log_path`."""
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_until(self, ready: Callable[[], bool]) -> None:
        """Poll `ready` until it holds; raise (after stopping) if the process dies or time runs out."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; log:\n{self.log_tail()}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"{self.name} not ready in {self.start_timeout_s}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server's console output."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def end_process(self, graceful: Callable[[], None] | None = None, grace_s: float = 30) -> None:
        """`graceful()` (default: SIGTERM to the group), then SIGKILL after `grace_s`."""
        if self.process is None:
            return
        if graceful is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        else:
            graceful()
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=grace_s)
        self.process = None

    def stop(self) -> None:
        self.end_process()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
