"""What machine a benchmark ran on, printed beside every figure."""

from __future__ import annotations

import os
import platform


def describe_machine() -> str:
    """One line: CPU model, cores, memory, Python."""
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                memory = f", {int(line.split()[1]) / 2**20:.0f} GiB"
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"
