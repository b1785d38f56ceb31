"""The history store for many workers and hosts: Redis (`redis://:password@host:6379/2`,
`rediss://` for TLS; `?prefix=NAME` sets the key prefix, default `basket:histories`).

Keys under PREFIX:
    PREFIX:current          the current snapshot's version
    PREFIX:snapshot:V       hash: user id -> record, one per snapshot
    PREFIX:answers:V        hash: user id -> nightly answer, for snapshot V
    PREFIX:info:V           hash: the snapshot's `SnapshotInfo`

A read is one Lua script, which Redis runs atomically: it reads the pointer and the
records and answers of that snapshot in one step, so a reader can never see half of a load, nor a
snapshot that a load is dropping. A load writes PREFIX:snapshot:NEW in pipelined chunks,
then sets PREFIX:current (one atomic SET) and unlinks the other snapshots.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from basket.serving.store.base import SnapshotInfo, StoreRead, StoreUnavailable, no_snapshot, redact

DEFAULT_PREFIX = "basket:histories"
READ = """
local version = redis.call('GET', KEYS[1])
if not version then return {} end
return {version, redis.call('HMGET', ARGV[1] .. version, unpack(ARGV, 3)),
        redis.call('HMGET', ARGV[2] .. version, unpack(ARGV, 3))}
"""
WRITE_IF_CURRENT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1
"""
# Records per pipelined HSET while loading; user ids per scripted read (Lua's unpack limit).
WRITE_CHUNK = 2000
READ_CHUNK = 4000
# Customers per conditional write (two values each, under Lua's `unpack` limit of ~8,000).
SCRIPT_CHUNK = 2000


class RedisStore:
    """A history store in Redis (see the module docstring)."""

    def __init__(self, url: str, timeout_s: float):
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parts.query)
        self.prefix = query.pop("prefix", [DEFAULT_PREFIX])[0]
        plain = parts._replace(query=urllib.parse.urlencode(query, doseq=True)).geturl()
        self.url = redact(url)
        # One quick retry, no backoff: a server answers 503 in about `timeout_s` when the store
        # is down, and the client reconnects by itself once it is back.
        self.client = redis.Redis.from_url(
            plain, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
        )  # fmt: skip
        self._read = self.client.register_script(READ)
        self._write_if_current_script = self.client.register_script(WRITE_IF_CURRENT)

    def _key(self, *parts: str) -> str:
        return ":".join([self.prefix, *parts])

    def _call(self, work):
        try:
            return work()
        except redis.RedisError as error:
            raise StoreUnavailable(f"history store {self.url}: {error}") from error

    def read(self, user_ids: Sequence[int]) -> StoreRead:
        ids = [int(u) for u in user_ids]
        version, records, answers = None, {}, {}
        for start in range(0, max(len(ids), 1), READ_CHUNK):
            chunk = ids[start : start + READ_CHUNK]
            reply = self._call(
                lambda c=chunk: self._read(
                    keys=[self._key("current")],
                    args=[self._key("snapshot", ""), self._key("answers", ""), *c],
                )
            )
            if not reply:
                raise no_snapshot(self.url)
            # A load may switch snapshots between two chunks: start again on the new one.
            if version is not None and reply[0].decode() != version:
                return self.read(user_ids)
            version = reply[0].decode()
            if chunk:
                records.update(
                    (u, r) for u, r in zip(chunk, reply[1], strict=True) if r is not None
                )
                answers.update(
                    (u, a) for u, a in zip(chunk, reply[2], strict=True) if a is not None
                )
        return StoreRead(version, records, answers)

    def replace(
        self, batches: Iterable[tuple[Sequence[int], Sequence[bytes]]], info: SnapshotInfo
    ) -> None:
        target = self._key("snapshot", info.version)
        users = 0
        for user_ids, records in batches:
            users += len(user_ids)
            for start in range(0, len(user_ids), WRITE_CHUNK):
                mapping = dict(
                    zip(
                        (int(u) for u in user_ids[start : start + WRITE_CHUNK]),
                        records[start : start + WRITE_CHUNK],
                        strict=True,
                    )
                )
                self._call(lambda m=mapping: self.client.hset(target, mapping=m))

        def switch() -> None:
            fields = {key: str(value) for key, value in info.as_dict().items()}
            fields["users"] = str(users)
            self.client.hset(self._key("info", info.version), mapping=fields)
            self.client.set(self._key("current"), info.version)
            # Older snapshots, and any a load that died left half-written.
            keep = {target, self._key("info", info.version)}
            stale = [
                key
                for pattern in (
                    self._key("snapshot", "*"),
                    self._key("answers", "*"),
                    self._key("info", "*"),
                )
                for key in self.client.scan_iter(match=pattern, count=1000)
                if key.decode() not in keep
            ]
            if stale:
                self.client.unlink(*stale)

        self._call(switch)

    def write_current(
        self, version: str, user_ids: Sequence[int], records: Sequence[bytes]
    ) -> bool:
        return self._write_if_current(self._key("snapshot", version), version, user_ids, records)

    def write_answers(
        self, version: str, user_ids: Sequence[int], answers: Sequence[bytes]
    ) -> bool:
        return self._write_if_current(self._key("answers", version), version, user_ids, answers)

    def _write_if_current(self, key: str, version: str, user_ids, values) -> bool:
        """HSET (user id, value) pairs into `key` if snapshot `version` is still current, in
        calls of `SCRIPT_CHUNK` customers (Lua's `unpack` takes a few thousand values); False,
        with what was written before kept, if a load replaced the snapshot meanwhile."""
        ids = [int(u) for u in user_ids]
        for start in range(0, len(ids), SCRIPT_CHUNK):
            pairs = [item for pair in zip(ids[start : start + SCRIPT_CHUNK],
                                          values[start : start + SCRIPT_CHUNK], strict=True)
                     for item in pair]  # fmt: skip
            written = self._call(
                lambda p=pairs: self._write_if_current_script(
                    keys=[self._key("current"), key], args=[version, *p]
                )
            )
            if not written:
                return False
        return True

    def info(self) -> SnapshotInfo | None:
        def work() -> SnapshotInfo | None:
            version = self.client.get(self._key("current"))
            if version is None:
                return None
            fields = self.client.hgetall(self._key("info", version.decode()))
            values = {key.decode(): value.decode() for key, value in fields.items()}
            return SnapshotInfo(**{**values, "users": int(values["users"])})

        return self._call(work)

    def close(self) -> None:
        self.client.close()
