"""Talking to a running TorchServe: HTTP calls and its management API.

`register_model` is what the nightly DAG's `register` task calls to load a newly
published archive into a running server (with the management key when token
authorization is on). The local server the tests start is
`basket.testing.torchserve_server.LocalTorchServe`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    timeout: float = 30.0,
    token: str | None = None,
):
    """(status, parsed JSON or text) of one HTTP call; 4xx/5xx are returned, not raised.
    `token`: a TorchServe key, sent as `Authorization: Bearer` (token authorization on)."""
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return status, raw.decode(errors="replace")


# Seconds an old version keeps its workers after it stopped taking requests, for the batch in
# hand (a server-side batch is scored in tens of milliseconds).
DRAIN_GRACE_S = 1.0


def register_model(
    management_url: str,
    archive: str,
    version: str | None = None,
    model_name: str = "basket",
    workers: int = 2,
    token: str | None = None,
) -> dict:
    """Load `archive` (a file name in the server's model store, or a URL) into a running
    TorchServe, make its version (`version`, or the one that appeared) the default and
    unload the versions served before.

    Returns {"registered": version, "unloaded": [versions]}. Raises RuntimeError with
    TorchServe's message when it refuses, OSError when the server is unreachable. `token`
    is the server's management key when token authorization is on (key_file.json).
    """
    base = f"{management_url}/models/{model_name}"
    status, known = http("GET", f"{base}/all", token=token)
    before = {m.get("modelVersion") for m in known} if status == 200 else set()
    query = urllib.parse.urlencode(
        {"url": archive, "model_name": model_name, "initial_workers": workers,
         "synchronous": "true"}
    )  # fmt: skip
    status, body = http("POST", f"{management_url}/models?{query}", timeout=300, token=token)
    if status not in (200, 201, 409):  # 409: this version is already registered
        raise RuntimeError(f"TorchServe refused {archive} ({status}): {body}")
    status, models = http("GET", f"{base}/all", token=token)
    versions = {m.get("modelVersion") for m in models} if status == 200 else set()
    version = version or next(iter(sorted(versions - before)), None)
    if version not in versions:
        raise RuntimeError(f"TorchServe lists no version of {model_name} after registering")
    status, body = http("PUT", f"{base}/{version}/set-default", token=token)
    if status != 200:
        raise RuntimeError(f"TorchServe refused to make {version} the default ({status}): {body}")
    unloaded = sorted(v for v in versions if v != version)
    for old in unloaded:
        _drain(f"{base}/{old}", token)
        http("DELETE", f"{base}/{old}", token=token)
    return {"registered": version, "unloaded": unloaded}


def _drain(version_url: str, token: str | None, timeout_s: float = 10.0) -> None:
    """Wait until a version no longer the default has no request queued, and then for the
    batch its workers may still be scoring (DRAIN_GRACE_S): unloading it at once failed the
    requests it held (seen under traffic: 7 of 7,619 requests of a swap)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = http("GET", version_url, timeout=2, token=token)
        queued = [m.get("jobQueueStatus", {}).get("pendingRequests", 0) for m in body] if (
            status == 200 and isinstance(body, list)) else [0]  # fmt: skip
        if not any(queued):
            break
        time.sleep(0.1)
    time.sleep(DRAIN_GRACE_S)
