"""Steady, bounded HTTP traffic at a local server, every request recorded: for fault-injection
tests and benchmarks. Test and benchmark harness only; loopback targets only.

`Traffic` runs `workers` threads, each cycling through the request bodies it is given, until
`stop()`, `max_seconds` or `max_requests`, whichever comes first. Each request is recorded
with its send time, status, latency and the answer's model version and snapshot, and
`wrong_answers` checks every 200 answer against the rows expected for the model version it
names.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Request:
    """One body to send, what kind it is ("full", "id") and the customer it asks for."""

    kind: str
    user_id: int
    body: bytes


@dataclass(frozen=True)
class Sent:
    """One request sent: when (seconds after the traffic began), what came back."""

    started_s: float
    ended_s: float
    kind: str
    user_id: int
    status: int
    model_version: str | None = None
    snapshot: str | None = None
    product_ids: tuple = ()

    @property
    def latency_ms(self) -> float:
        return (self.ended_s - self.started_s) * 1e3


@dataclass
class Traffic:
    """Traffic at `url` (loopback) from `workers` threads over `requests`, bounded in time and
    count; see the module docstring."""

    url: str
    requests: list[Request]
    workers: int = 8
    max_seconds: float = 60.0
    max_requests: int = 1_000_000
    timeout_s: float = 10.0
    # An answer body as the TorchServe JSON answer (`v2_answer` reads Triton's KServe-v2 one).
    answer_of: Callable[[dict], dict] = lambda body: body
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self):
        if not self.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            raise ValueError(f"traffic goes to loopback only, not {self.url}")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._count = itertools.count()
        self._threads: list[threading.Thread] = []
        self.began = time.monotonic()

    def start(self) -> Traffic:
        """Begin sending; returns at once."""
        self.began = time.monotonic()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(self.workers)]  # fmt: skip
        for thread in self._threads:
            thread.start()
        return self

    def now(self) -> float:
        """Seconds since the traffic began."""
        return time.monotonic() - self.began

    def stop(self) -> list[Sent]:
        """Stop sending, wait for the requests in flight; every request sent, by send time."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_s + 5)
        return sorted(self.sent, key=lambda s: s.started_s)

    def run_for(self, seconds: float) -> list[Sent]:
        """Send for `seconds`, then stop."""
        self.start()
        time.sleep(seconds)
        return self.stop()

    def _run(self, worker: int) -> None:
        position = worker
        while not self._stop.is_set() and self.now() < self.max_seconds:
            if next(self._count) >= self.max_requests:
                return
            request = self.requests[position % len(self.requests)]
            position += self.workers
            record = self._send(request)
            with self._lock:
                self.sent.append(record)

    def _send(self, request: Request) -> Sent:
        started = self.now()
        call = urllib.request.Request(self.url, data=request.body, method="POST",
                                      headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(call, timeout=self.timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except OSError:
            status, raw = 0, b""  # refused, reset or timed out: no HTTP answer at all
        answer = {}
        if status == 200:
            try:
                answer = self.answer_of(json.loads(raw))
            except (ValueError, KeyError, TypeError):
                status = -1  # a 200 whose body is not an answer
        return Sent(
            started, self.now(), request.kind, request.user_id, status,
            answer.get("model_version"), answer.get("snapshot"),
            tuple(answer.get("product_ids", ())),
        )  # fmt: skip


def v2_answer(model_version: str) -> Callable[[dict], dict]:
    """Reads a Triton KServe-v2 answer as the JSON answer's fields. Triton's outputs carry no
    model version: the one model the repository serves is `model_version`."""

    def read(body: dict) -> dict:
        outputs = {output["name"]: output["data"] for output in body["outputs"]}
        return {
            "product_ids": [p for p in outputs["TOP_PRODUCT_IDS"] if p >= 0],
            "snapshot": outputs["SNAPSHOT"][0] or None,
            "model_version": model_version,
        }

    return read


def wrong_answers(sent: list[Sent], expected: dict[str, dict[int, tuple]]) -> list[Sent]:
    """The 200 answers whose products differ from `expected[model version][user id]` (the
    batch rows of the model the answer names), or that name a version nobody expected."""
    return [
        s for s in sent
        if s.status == 200 and expected.get(s.model_version, {}).get(s.user_id) != s.product_ids
    ]  # fmt: skip


def latency_summary(sent: list[Sent]) -> dict:
    """Requests, failures (anything but 200) and p50/p99 latency of the 200s."""
    ok = [s.latency_ms for s in sent if s.status == 200]
    return {
        "requests": len(sent),
        "failed": sum(s.status != 200 for s in sent),
        "p50_ms": float(np.percentile(ok, 50)) if ok else float("nan"),
        "p99_ms": float(np.percentile(ok, 99)) if ok else float("nan"),
    }
