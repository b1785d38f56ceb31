"""The `basket` command's exit codes, in one table: the CLI returns them, the docs' exit-code
page is generated from it, and scripts may test for them."""

from __future__ import annotations

import inspect
from enum import IntEnum


class ExitCode(IntEnum):
    """What a `basket` command's exit status means. Each member's comment is its documentation
    (`python -m basket.commands.exit_codes` prints the table)."""

    OK = 0  # done
    CHECK_FAILED = 1  # the data broke a critical validation rule; nothing downstream was written
    BAD_INPUT = 2  # a usage error, or a file, row, setting or value refused (the message names it)
    UNAVAILABLE = 3  # a service the command needs did not answer (the history store): try again
    INTERNAL = 70  # a defect in basket: rerun with --debug and report the traceback
    INTERRUPTED = 130  # stopped by Ctrl-C (SIGINT)


def exit_code_table() -> str:
    """The Markdown table of every exit code and its meaning, read off `ExitCode`'s comments."""
    source = inspect.getsource(ExitCode)
    rows = ["| code | name | meaning |", "|---:|---|---|"]
    for code in ExitCode:
        line = next(
            line for line in source.splitlines() if line.strip().startswith(f"{code.name} =")
        )
        rows.append(f"| {int(code)} | `{code.name}` | {line.split('#', 1)[1].strip()} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(exit_code_table())
