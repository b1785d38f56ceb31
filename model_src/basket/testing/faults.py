"""Faults injected into a serving local server under steady traffic, each counted: requests
sent, failed and wrong (a 200 whose answer is not the batch row of the model it names), and
the seconds until the server recovers. `bench/bench_faults.py` runs them long and records the
figures; the tests run them short and hold the server to its promises. Harness only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from basket.orchestration.publish import publish
from basket.serving.store.base import StoreUnavailable
from basket.serving.store.connect import open_store
from basket.serving.store.fill import load_snapshot
from basket.serving.torchserve import http, register_model
from basket.testing.local_server import free_port
from basket.testing.traffic import Sent, Traffic, latency_summary, wrong_answers


@dataclass
class FaultResult:
    """What one fault did to the traffic."""

    fault: str
    server: str
    sent: int
    failed: int
    wrong: int
    recovery_s: float | None = None  # until the server was whole again; None: not measured
    details: dict = field(default_factory=dict)

    def row(self) -> list:
        """The benchmark table's row."""
        return [self.server, self.fault, self.sent, self.failed, self.wrong,
                None if self.recovery_s is None else round(self.recovery_s, 2),
                self.details.get("rss_growth")]  # fmt: skip


def _result(fault: str, server: str, sent: list[Sent], expected, **details) -> FaultResult:
    recovery = details.pop("recovery_s", None)
    return FaultResult(fault, server, len(sent), sum(s.status != 200 for s in sent),
                       len(wrong_answers(sent, expected)), recovery, details)  # fmt: skip


def worker_pids(server) -> list[int]:
    """The model worker processes of a local TorchServe (Python, under its Java frontend)."""
    return sorted(p.pid for p in _descendants(server) if "model_service_worker" in _cmdline(p))


def _descendants(server) -> list[psutil.Process]:
    return psutil.Process(server.process.pid).children(recursive=True)


def _cmdline(process: psutil.Process) -> str:
    """A process's command line; "" for one that has exited meanwhile (or is a zombie)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _workers_ready(server, model: str, count: int, gone: int) -> bool:
    status, body = http("GET", f"{server.management_url}/models/{model}", timeout=2)
    if status != 200:
        return False
    workers = [w for m in body for w in m.get("workers", [])]
    ready = [w for w in workers if w.get("status") == "READY"]
    # A new worker process must be running too: right after the kill, TorchServe can still
    # list the dead worker as READY.
    alive = worker_pids(server)
    return len(ready) >= count and len(alive) >= count and gone not in alive


def kill_a_worker(server, traffic: Traffic, expected, at_s: float = 3.0, seconds: float = 15.0,
                  model: str = "basket") -> FaultResult:  # fmt: skip
    """SIGKILL one TorchServe model worker `at_s` into the traffic; recovery: until as many
    workers as before are READY again, none of them the killed one."""
    return _kill(
        "TorchServe", traffic, expected, at_s, seconds, lambda: worker_pids(server),
        lambda count, victim: _workers_ready(server, model, count, victim),
    )  # fmt: skip


def kill_a_stub(server, traffic: Traffic, expected, at_s: float = 3.0, seconds: float = 15.0,
                model: str = "basket") -> FaultResult:  # fmt: skip
    """SIGKILL one of Triton's Python backend stubs (a model instance) `at_s` into the
    traffic; recovery: until as many stubs as before run, none the killed one, and the model
    is ready."""

    def whole(count: int, victim: int) -> bool:
        pids = stub_pids(server)
        ready = http("GET", f"http://{server.url}/v2/models/{model}/ready", timeout=2)[0]
        return len(pids) >= count and victim not in pids and ready == 200

    return _kill("Triton", traffic, expected, at_s, seconds, lambda: stub_pids(server), whole)


def stub_pids(server) -> list[int]:
    """The Python backend stubs of a local Triton (one per model instance)."""
    return sorted(
        p.pid for p in _descendants(server) if "triton_python_backend_stub" in _cmdline(p)
    )


def _kill(name, traffic, expected, at_s, seconds, pids, whole) -> FaultResult:
    traffic.start()
    time.sleep(at_s)
    before = pids()
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = traffic.now()
    recovery = None
    while traffic.now() < seconds + 60:
        if whole(len(before), victim):
            recovery = traffic.now() - killed_at
            break
        time.sleep(0.1)
    time.sleep(max(0.0, seconds - traffic.now()))
    sent = traffic.stop()
    return _result("a model worker killed (SIGKILL)", name, sent, expected,
                   recovery_s=recovery, workers=len(before),
                   failed_statuses=sorted({s.status for s in sent if s.status != 200}))  # fmt: skip


def swap_the_model(server, traffic: Traffic, expected, archive: str, version: str,
                   at_s: float = 3.0, seconds: float = 15.0) -> FaultResult:  # fmt: skip
    """Register a new version of the model (`archive` in the server's model store) and make it
    the default `at_s` into the traffic, as the retrain DAG's `register` task does. Counted
    besides failures: answers of the old version sent after the first answer of the new one
    (the version must switch once and never flip back)."""
    traffic.start()
    time.sleep(at_s)
    began = traffic.now()
    register_model(server.management_url, archive, version)
    registered = traffic.now()
    time.sleep(max(0.0, seconds - traffic.now()))
    sent = traffic.stop()
    new = [s.ended_s for s in sent if s.status == 200 and s.model_version == version]
    switch = min(new) if new else None
    flips = [s for s in sent if switch is not None and s.status == 200
             and s.model_version != version and s.started_s > switch]  # fmt: skip
    return _result("a new model registered while serving", "TorchServe", sent, expected,
                   recovery_s=None if switch is None else switch - began,
                   register_s=round(registered - began, 2), flips_back=len(flips),
                   failed_statuses=sorted({s.status for s in sent if s.status != 200}),
                   versions=sorted({s.model_version for s in sent if s.model_version}))  # fmt: skip


class PrivateRedis:
    """A redis-server of its own on a free loopback port (keeps nothing on disk)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                open_store(self.url).info()
                return self
            except StoreUnavailable:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def restart_the_store(redis: PrivateRedis, data_dir, traffic: Traffic, expected,
                      at_s: float = 3.0, outage_s: float = 3.0,
                      seconds: float = 12.0) -> FaultResult:  # fmt: skip
    """Stop the server's Redis history store `at_s` into the traffic, start it again
    `outage_s` later and reload the snapshot (this Redis keeps nothing on disk). Counted:
    id requests answered 503 (expected while it is down) and 5xx other than 503 (never),
    full-history failures (never), and the seconds from the reload to the first id answer."""
    traffic.start()
    time.sleep(at_s)
    redis.stop()
    down = traffic.now()
    time.sleep(outage_s)
    redis.start()
    load_snapshot(data_dir, redis.url)
    back = traffic.now()
    time.sleep(max(0.0, seconds - traffic.now()))
    sent = traffic.stop()
    ids = [s for s in sent if s.kind == "id"]
    resumed = [s.ended_s for s in ids if s.status == 200 and s.started_s >= back]
    return _result("the Redis history store restarted", "TorchServe", sent, expected,
                   recovery_s=(min(resumed) - back) if resumed else None,
                   outage_s=round(back - down, 2),
                   id_503=sum(s.status == 503 for s in ids),
                   other_5xx=sum(s.status >= 500 and s.status != 503 for s in sent),
                   full_failed=sum(s.status != 200 for s in sent if s.kind == "full"))  # fmt: skip


def replace_the_snapshot(store_url: str, data_dir, traffic: Traffic, expected,
                         at_s: float = 3.0, seconds: float = 10.0) -> FaultResult:  # fmt: skip
    """Load a new snapshot into the server's SQLite store file while id requests arrive."""
    traffic.start()
    time.sleep(at_s)
    began = traffic.now()
    new = load_snapshot(data_dir, store_url).version
    loaded = traffic.now()
    time.sleep(max(0.0, seconds - traffic.now()))
    sent = traffic.stop()
    return _result("the SQLite store replaced by a new snapshot", "TorchServe", sent, expected,
                   load_s=round(loaded - began, 2),
                   answers_from_new=sum(s.snapshot == new for s in sent))  # fmt: skip


def server_rss(server) -> int:
    """Resident bytes of a local server and every process under it."""
    total = 0
    for process in [psutil.Process(server.process.pid), *_descendants(server)]:
        try:
            total += process.memory_info().rss
        except psutil.Error:  # exited meanwhile
            pass
    return total


def soak(server, traffic: Traffic, expected, seconds: float = 600.0,
         warm_up_s: float = 30.0, name: str = "TorchServe") -> FaultResult:  # fmt: skip
    """Traffic for `seconds`: the servers' RSS after the warm-up and at the end (growth), and
    p50/p99 for each minute (or each tenth of a shorter run)."""
    traffic.max_seconds = seconds + 1
    traffic.start()
    time.sleep(min(warm_up_s, seconds / 2))
    warm = server_rss(server)
    time.sleep(max(0.0, seconds - traffic.now()))
    end = server_rss(server)
    sent = traffic.stop()
    window = 60.0 if seconds >= 120 else seconds / 10
    edges = np.arange(0.0, seconds + window, window)
    windows = [latency_summary([s for s in sent if a <= s.started_s < b])
               for a, b in zip(edges[:-1], edges[1:], strict=True)]  # fmt: skip
    return _result(f"a soak of {seconds / 60:g} min", name, sent, expected,
                   rss_growth=round(end / warm - 1, 4), rss_warm_mib=round(warm / 2**20),
                   rss_end_mib=round(end / 2**20),
                   p50_ms_by_window=[round(w["p50_ms"], 2) for w in windows],
                   p99_ms_by_window=[round(w["p99_ms"], 2) for w in windows])  # fmt: skip


def publish_onto_a_full_disk(run_dir, mar, first_run, first_mar, mount_point) -> FaultResult:
    """Publish into a model store on a tmpfs mounted at `mount_point` that fills up: the first
    publish lands, the disk is filled, the next publish must fail loudly and leave the store's
    bytes as they were, and succeed once there is room again."""
    store = Path(mount_point) / "store"
    publish(first_run, first_mar, store)
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    filler = Path(mount_point) / "filler"
    filler.write_bytes(b"\0" * max(shutil.disk_usage(mount_point).free - 4096, 0))
    try:
        publish(run_dir, mar, store)
        raised = ""
    except OSError as error:
        raised = str(error)
    untouched = {p.name: p.read_bytes() for p in store.iterdir()} == before
    filler.unlink()
    later = publish(run_dir, mar, store).promoted
    failed = int(not raised) + int(not untouched) + int(not later)
    return FaultResult("the disk fills during a publish", "model store", 1, failed, 0, None,
                       {"raised": raised[:120], "store_untouched": untouched,
                        "next_publish_promoted": later})  # fmt: skip
