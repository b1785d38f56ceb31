"""The embedded history store: one SQLite file, no server (`sqlite:///path/histories.sqlite`).

Each snapshot is a table of (user_id, record); `snapshots` lists the finished ones and
`current_snapshot` names the one served. A snapshot's nightly answers, once batch scoring has
stored some, are a table of (user_id, answer) named in `snapshot_answers`. A load fills a new table, then moves the pointer
in one transaction and drops the other tables (a half-written one left by a load that
died included). A read is one transaction: the pointer and the records come from the same
state of the file.

Servers open it read-only and never create or change it, and they need only read access
to it: the file keeps SQLite's rollback journal, not WAL, whose readers must be able to
write a shared-memory file beside it (a server running as another user than the loader,
as the image's does on the model store volume, could not read a WAL store: "attempt to
write a readonly database"). A load writes in transactions of `WRITE_CHUNK` customers, so
a reader waits a few milliseconds for a commit at most, within the read timeout.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from basket.serving.store.base import SnapshotInfo, StoreRead, StoreUnavailable, no_snapshot

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    version TEXT PRIMARY KEY, history_table TEXT NOT NULL, created TEXT NOT NULL,
    users INTEGER NOT NULL, source TEXT NOT NULL, fingerprint TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS current_snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1), version TEXT NOT NULL REFERENCES snapshots(version));
CREATE TABLE IF NOT EXISTS snapshot_answers (
    version TEXT PRIMARY KEY, answers_table TEXT NOT NULL);
"""
# SQLite's default limit on bound parameters is 32,766; stay well below it.
IN_CHUNK = 900
# Customers per write transaction of a load (a few MB): short commits, so readers barely wait.
WRITE_CHUNK = 2000


class SQLiteStore:
    """A history store in the SQLite file `path` (see the module docstring)."""

    def __init__(self, path: Path | str, timeout_s: float, writable: bool = False):
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.timeout_s = timeout_s
        self.writable = writable
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            if self.writable:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                target, uri = str(self.path), False
            elif not self.path.is_file():
                raise StoreUnavailable(f"history store {self.url}: no such file")
            else:
                target, uri = f"file:{self.path.resolve()}?mode=ro", True
            # isolation_level=None: transactions are begun and ended here, explicitly.
            connection = sqlite3.connect(
                target, timeout=self.timeout_s, uri=uri, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            if self.writable:
                connection.execute("PRAGMA journal_mode=DELETE")
                connection.executescript(SCHEMA)
            self._connection = connection
        return self._connection

    def _run(self, work):
        """`work(connection)` under the lock; SQLite errors become `StoreUnavailable` and drop
        the connection (the next call opens it again)."""
        with self._lock:
            try:
                return work(self._connect())
            except sqlite3.Error as error:
                self.close()
                raise StoreUnavailable(f"history store {self.url}: {error}") from error

    def read(self, user_ids: Sequence[int]) -> StoreRead:
        def work(db: sqlite3.Connection) -> StoreRead:
            db.execute("BEGIN")
            try:
                version, table = self._current(db)
                answers_table = _answers_table(db, version)
                records, answers = {}, {}
                ids = [int(u) for u in user_ids]
                # With answers: one query, each customer's record and answer (or NULL) joined.
                select = (
                    f'SELECT h.user_id, h.record, a.answer FROM "{table}" h '
                    f'LEFT JOIN "{answers_table}" a ON a.user_id = h.user_id'
                    if answers_table
                    else f'SELECT h.user_id, h.record, NULL FROM "{table}" h'
                )
                for start in range(0, len(ids), IN_CHUNK):
                    chunk = ids[start : start + IN_CHUNK]
                    rows = db.execute(
                        f"{select} WHERE h.user_id IN ({','.join('?' * len(chunk))})", chunk
                    )
                    for user, record, answer in rows:
                        records[user] = bytes(record)
                        if answer is not None:
                            answers[user] = bytes(answer)
            finally:
                db.execute("COMMIT")
            return StoreRead(version, records, answers)

        return self._run(work)

    def _current(self, db: sqlite3.Connection) -> tuple[str, str]:
        try:
            row = db.execute(
                "SELECT s.version, s.history_table FROM current_snapshot c "
                "JOIN snapshots s ON s.version = c.version WHERE c.id = 1"
            ).fetchone()
        except sqlite3.OperationalError as error:  # a file no load has written to
            if "no such table" in str(error):
                raise no_snapshot(self.url) from None
            raise
        if row is None:
            raise no_snapshot(self.url)
        return row

    def replace(
        self, batches: Iterable[tuple[Sequence[int], Sequence[bytes]]], info: SnapshotInfo
    ) -> None:
        table = f"histories_{uuid.uuid4().hex}"
        self._run(lambda db: db.execute(
            f'CREATE TABLE "{table}" (user_id INTEGER PRIMARY KEY, record BLOB NOT NULL)'
        ))  # fmt: skip
        users = 0
        for user_ids, records in batches:
            for start in range(0, len(user_ids), WRITE_CHUNK):
                chunk = slice(start, start + WRITE_CHUNK)
                self._run(lambda db, u=user_ids[chunk], r=records[chunk]: _insert(db, table, u, r))
            users += len(user_ids)
        info = replace(info, users=users)

        def switch(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?)",
                    (info.version, table, info.created, info.users, info.source,
                     info.fingerprint),
                )  # fmt: skip
                db.execute("INSERT OR REPLACE INTO current_snapshot VALUES (1, ?)", (info.version,))
                db.execute("DELETE FROM snapshots WHERE version != ?", (info.version,))
                db.execute("DELETE FROM snapshot_answers WHERE version != ?", (info.version,))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            # Older snapshots' tables and their answers, and any a load that died left.
            for (old,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND "
                "(name LIKE 'histories_%' OR name LIKE 'answers_%') AND name != ?",
                (table,),
            ).fetchall():
                db.execute(f'DROP TABLE "{old}"')

        self._run(switch)

    def write_current(
        self, version: str, user_ids: Sequence[int], records: Sequence[bytes]
    ) -> bool:
        return self._write_if_current(version, lambda db, history_table: history_table,
                                      user_ids, records)  # fmt: skip

    def write_answers(
        self, version: str, user_ids: Sequence[int], answers: Sequence[bytes]
    ) -> bool:
        def answers_table(db: sqlite3.Connection, _history_table: str) -> str:
            table = _answers_table(db, version)
            if table is None:
                table = f"answers_{uuid.uuid4().hex}"
                db.execute(
                    f'CREATE TABLE "{table}" (user_id INTEGER PRIMARY KEY, answer BLOB NOT NULL)'
                )
                db.execute("INSERT INTO snapshot_answers VALUES (?, ?)", (version, table))
            return table

        return self._write_if_current(version, answers_table, user_ids, answers)

    def _write_if_current(self, version: str, table_of, user_ids, values) -> bool:
        """Write (user id, value) rows into the table `table_of(db, history table)` names, in
        one transaction, if snapshot `version` is still the current one (True), else nothing."""

        def work(db: sqlite3.Connection) -> bool:
            db.execute("BEGIN IMMEDIATE")
            try:
                current, history_table = self._current(db)
                if current != version:
                    db.execute("ROLLBACK")
                    return False
                db.executemany(
                    f'INSERT OR REPLACE INTO "{table_of(db, history_table)}" VALUES (?, ?)',
                    zip((int(u) for u in user_ids), values, strict=True),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return True

        return self._run(work)

    def info(self) -> SnapshotInfo | None:
        def work(db: sqlite3.Connection) -> SnapshotInfo | None:
            try:
                version, _ = self._current(db)
            except StoreUnavailable:
                return None
            row = db.execute(
                "SELECT version, created, users, source, fingerprint FROM snapshots "
                "WHERE version = ?",
                (version,),
            ).fetchone()
            return SnapshotInfo(*row)

        return self._run(work)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _answers_table(db: sqlite3.Connection, version: str) -> str | None:
    """The table of snapshot `version`'s nightly answers; None when it has none (or the file
    predates answers and a read-only reader cannot add their index table)."""
    try:
        row = db.execute(
            "SELECT answers_table FROM snapshot_answers WHERE version = ?", (version,)
        ).fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return None
        raise
    return row[0] if row else None


def _insert(db: sqlite3.Connection, table: str, user_ids, records) -> None:
    db.execute("BEGIN")
    db.executemany(
        f'INSERT INTO "{table}" VALUES (?, ?)',
        zip((int(u) for u in user_ids), records, strict=True),
    )
    db.execute("COMMIT")
