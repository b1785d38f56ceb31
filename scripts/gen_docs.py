"""The generated parts of the docs, made from their one source and checked by the tests.

Each generated block sits between two markers in a Markdown file:

    <!-- generated: NAME -->
    ...
    <!-- end generated -->

NAME is one of the generators below: the CLI reference from `basket`'s argument parser, the
settings table from the typed config, the exit codes from `ExitCode`, the Python API from
`basket.PUBLIC_API`, Triton's tensors from the repository's config, and every benchmark
figure from `bench/results/*.json`.

    python scripts/gen_docs.py           # rewrite the blocks in place
    python scripts/gen_docs.py --check   # exit 1 naming each block that differs
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import re
import sys
from pathlib import Path

import basket
from basket.commands.cli import build_parser
from basket.commands.exit_codes import exit_code_table
from basket.config.settings import settings_markdown
from basket.serving.store.base import STORE_URL_ENV
from basket.serving.triton.repository import TritonConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(<!-- generated: ([\w-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def cli_reference() -> str:
    """Every `basket` command with its usage and arguments, read off the parser."""
    os.environ.pop(STORE_URL_ENV, None)  # the --store default reads it: document the bare one
    parser = build_parser()
    out = [_command_section("basket", parser, parser.description, level=2)]
    for name, sub, what in _subcommands(parser):
        out.append(_command_section(f"basket {name}", sub, what, level=3))
        for inner, leaf, leaf_what in _subcommands(sub):
            out.append(_command_section(f"basket {name} {inner}", leaf, leaf_what, level=4))
    return "\n".join(out)


def _subcommands(parser: argparse.ArgumentParser):
    """(name, parser, its help line) of each subcommand of `parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, sub, helps.get(name, "")


def _command_section(title: str, parser: argparse.ArgumentParser, what: str, level: int) -> str:
    usage = " ".join(parser.format_usage().split())
    rows = ["| argument | default | what it is |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        name = ", ".join(action.option_strings) or action.dest
        if action.option_strings and action.nargs != 0:
            name += " " + (action.metavar or action.dest.upper().rpartition(".")[2])
        if action.choices and not isinstance(action.choices, dict):
            name += " {" + ",".join(map(str, action.choices)) + "}"
        unset = action.default is None or action.default is False or action.default == []
        default = "" if unset or action.default == argparse.SUPPRESS else action.default
        default = "required" if getattr(action, "required", False) else default
        meaning = (action.help or "").replace("%%", "%").replace("|", "\\|")
        rows.append(f"| `{name}` | {f'`{default}`' if default != '' else ''} | {meaning} |")
    text = [f"{'#' * level} `{title}`", "", (what or "").replace("%%", "%"), "", f"`{usage}`"]
    if len(rows) > 2:
        text += ["", *rows]
    return "\n".join(text) + "\n"


def python_api() -> str:
    """Each name of `basket.PUBLIC_API`: where it lives, its signature and its docstring."""
    out = []
    for name, target in basket.PUBLIC_API.items():
        module, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(module), attribute)
        kind = "class" if inspect.isclass(value) else "function"
        try:
            signature = f"{attribute}{inspect.signature(value)}"
        except (TypeError, ValueError):
            signature = attribute
        doc = inspect.getdoc(value) or ""
        out += [f"### `basket.{name}`", "", f"{kind} in `{module}`", "", "```python",
                signature, "```", "", doc, ""]  # fmt: skip
    return "\n".join(out)


def triton_tensors() -> str:
    """Triton's inputs and outputs, read off the config the repository is written with."""
    config = TritonConfig().pbtxt()
    rows = ["| direction | tensor | type | shape | optional |", "|---|---|---|---|---|"]
    for direction in ("input", "output"):
        block = re.search(rf"^{direction} \[\n(.*?)\n\]", config, re.S | re.M).group(1)
        for line in block.splitlines():
            name = re.search(r'name: "(\w+)"', line).group(1)
            kind = re.search(r"data_type: TYPE_(\w+)", line).group(1)
            dims = re.search(r"dims: \[ ([^\]]*) \]", line).group(1)
            optional = "yes" if "optional: true" in line else ""
            rows.append(f"| {direction} | `{name}` | {kind} | [{dims}] | {optional} |")
    return "\n".join(rows)


def _results() -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def benchmarks() -> str:
    """For each benchmark, its latest run's table and targets, then one line per earlier run."""
    out = []
    for result in _results():
        latest = result["runs"][-1]
        out += [f"## {result['title']}", "",
                f"`{latest['command']}` — {latest['date']}, commit `{latest['commit']}`, "
                f"{latest['machine']}", ""]  # fmt: skip
        if latest["parameters"]:
            out += ["Parameters: " + ", ".join(
                f"{key} {_cell(value)}" for key, value in latest["parameters"].items()), ""]  # fmt: skip
        out += ["| " + " | ".join(latest["columns"]) + " |",
                "|" + "---|" * len(latest["columns"])]  # fmt: skip
        out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in latest["rows"]]
        if latest["targets"]:
            out += ["", "| target | measured | |", "|---|---|---|"]
            out += [f"| {t['name']} | {t['measured']} | {'met' if t['met'] else '**not met**'} |"
                    for t in latest["targets"]]  # fmt: skip
        if latest["notes"]:
            out += ["", latest["notes"]]
        if len(result["runs"]) > 1:
            out += ["", "Earlier runs:", "", "| date | commit | machine | targets met |",
                    "|---|---|---|---|"]  # fmt: skip
            for run in reversed(result["runs"][:-1]):
                met = sum(t["met"] for t in run["targets"])
                out.append(f"| {run['date']} | `{run['commit']}` | {run['machine']} | "
                           f"{met} of {len(run['targets'])} |")  # fmt: skip
        out.append("")
    return "\n".join(out) if out else "No benchmark has recorded a result yet."


def benchmark_status() -> str:
    """One row per benchmark: how many of its targets its latest run met (no figures)."""
    rows = ["| benchmark | targets met in its latest run |", "|---|---|"]
    for result in _results():
        targets = result["runs"][-1]["targets"]
        met = sum(t["met"] for t in targets)
        rows.append(
            f"| {result['title']} | {f'{met} of {len(targets)}' if targets else 'no target'} |"
        )
    return "\n".join(rows)


GENERATORS = {
    "cli": cli_reference,
    "settings": settings_markdown,
    "exit-codes": exit_code_table,
    "python-api": python_api,
    "triton-tensors": triton_tensors,
    "benchmarks": benchmarks,
    "benchmark-status": benchmark_status,
}


def regenerate(text: str, made: dict[str, str]) -> str:
    """`text` with every generated block replaced by its generator's output."""

    def fill(match: re.Match) -> str:
        name = match.group(2)
        if name not in GENERATORS:
            raise SystemExit(f"unknown generated block {name!r}; known: {', '.join(GENERATORS)}")
        if name not in made:
            made[name] = GENERATORS[name]().rstrip("\n") + "\n"
        return match.group(1) + made[name] + match.group(4)

    return BLOCK.sub(fill, text)


def main() -> int:
    """Rewrite the generated blocks, or with --check report those that differ (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 on a difference"
    )
    args = parser.parse_args()
    made: dict[str, str] = {}
    stale = []
    for path in DOCS:
        text = path.read_text()
        new = regenerate(text, made)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print("generated blocks differ in: " + ", ".join(map(str, stale))
              + " (run: python scripts/gen_docs.py)", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
