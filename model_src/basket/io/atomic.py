"""Writing files and folders so that a reader sees the old version or the new one, never half.

Everything is written beside its target (same filesystem, so the final rename is
atomic on POSIX) under a hidden temporary name, then renamed into place. A process
killed mid-way leaves at most a hidden `.NAME.*` leftover, which nothing reads
and the next write of the same target does not depend on.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `target`; when the block ends without error, fsync it and
    rename it over `target`. On error the temporary file is removed and `target` untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    # mkstemp makes the file private (0600); the target gets the usual mode, so a server
    # running as another user (TorchServe in its container) can read what was published.
    os.chmod(temp, 0o666 & ~_umask())
    try:
        yield Path(temp)
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


@contextmanager
def atomic_dir(target: Path | str) -> Iterator[Path]:
    """Yield an empty temporary folder beside `target`; when the block ends without error it
    takes `target`'s place (an existing `target` is replaced as a whole, never merged)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's folder is private (0700)
    try:
        yield staging
        if target.exists():
            # Two renames: the old folder is moved aside, then the new one takes its name.
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.retired.", dir=target.parent))
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def copy_atomically(source: Path | str, target: Path | str) -> Path:
    """Copy `source` to `target` through `atomic_file`; returns `target`."""
    with atomic_file(target) as temp:
        shutil.copyfile(source, temp)
    return Path(target)


def write_json_atomically(target: Path | str, record) -> Path:
    """`record` as indented JSON at `target`, through `atomic_file`; returns `target`."""
    with atomic_file(target) as temp:
        temp.write_text(json.dumps(record, indent=1, default=str))
    return Path(target)
