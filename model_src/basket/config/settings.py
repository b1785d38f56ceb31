"""Every setting of a run, read off its one definition: the typed config (`basket.config.run`).

A setting is a field of `RunConfig` or of a config nested in it, named by its dotted path
(`xgboost.rounds`). Its type and default are the field's; its doc is the comment the field
carries in the source (on its line, or the comment lines just above it), so the code stays
the one place to write it. From this list come:

- `basket train/retrain --set PATH=VALUE` (any setting, parsed by its type), beside the
  named flags of `TRAINING_FLAGS`, each of which is one setting;
- the docs' settings table (docs/reference/settings.md, written by scripts/gen_docs.py; a test
  keeps them equal).

    python -m basket.config.settings            # the markdown table
"""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import json
import sys
import textwrap
import tokenize
import types
import typing
from dataclasses import MISSING, dataclass, fields, is_dataclass
from functools import cache
from typing import Any

from basket.config.run import RunConfig


@dataclass(frozen=True)
class Setting:
    """One setting: its dotted path, Python type (as written), default and doc."""

    path: str
    type: Any  # the resolved annotation: int, float, str, bool, tuple[float, ...], int | None
    default: Any
    doc: str

    @property
    def type_name(self) -> str:
        return _type_name(self.type)

    def parse_item(self, text: str) -> Any:
        """One command-line word as a value of this setting (an item of it for a list)."""
        kind = self.type
        if typing.get_origin(kind) is tuple:
            kind = typing.get_args(kind)[0]
        try:
            return _parse(kind, text.strip())
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    def parse(self, text: str) -> Any:
        """`text` (from a command line) as a value of this setting's type; ValueError naming
        the setting otherwise. Tuples take comma-separated items; `none` gives None where the
        type allows it."""
        try:
            return _parse(self.type, text.strip())
        except ValueError as err:
            raise ValueError(f"setting {self.path} ({self.type_name}): {err}") from None


# The named flags of `basket train` and `basket retrain`: flag -> the setting it sets.
TRAINING_FLAGS = {
    "--models": "models",
    "--epochs": "train.epochs",
    "--train-batch-size": "train.batch_size",
    "--pos-weights": "train.pos_weights",
    "--targets-per-user": "train.targets_per_user",
    "--seed": "train.seed",
    "--device": "train.device",
    "--thresholds": "basket_thresholds",
    "--vocab-size": "vocab.top_n",
    "--embed-epochs": "embed.epochs",
    "--no-refit": "refit",
}


@cache
def all_settings() -> tuple[Setting, ...]:
    """Every setting of `RunConfig`, in definition order (nested configs in place)."""
    return tuple(_walk(RunConfig, ""))


def setting(path: str) -> Setting:
    """The setting at dotted `path`; ValueError listing the close ones when there is none."""
    found = {s.path: s for s in all_settings()}
    if path not in found:
        section = path.rpartition(".")[0]
        nearby = [p for p in found if p.startswith(section)] if section else list(found)
        raise ValueError(f"unknown setting {path!r}; known: {', '.join(nearby)}")
    return found[path]


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """ "xgboost.rounds=200" as ("xgboost.rounds", 200), the value parsed by the setting's type;
    ValueError naming the setting (or the unknown path) otherwise."""
    path, equals, text = assignment.partition("=")
    if not equals:
        raise ValueError(f"{assignment!r}: expected PATH=VALUE, e.g. xgboost.rounds=200")
    return path.strip(), setting(path.strip()).parse(text)


def overrides_from_assignments(assignments: list[str]) -> dict:
    """`["xgboost.rounds=200", "vocab.top_n=none"]` as nested config overrides."""
    return nested_overrides(dict(map(parse_assignment, assignments)))


def overrides_from_json(text: str) -> dict:
    """A JSON object {"xgboost.rounds": 200, "train.pos_weights": [5, 10]} (Airflow's
    `settings` param or Variable; empty: none) as nested config overrides, each value checked
    against its setting's type; ValueError naming the setting otherwise."""
    if not text.strip():
        return {}
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"settings {text!r} is not JSON: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"settings must be a JSON object of setting: value, got {text!r}")
    words = {
        path: ",".join(map(str, value)) if isinstance(value, list) else str(value)
        for path, value in values.items()
    }
    return nested_overrides({path: setting(path).parse(word) for path, word in words.items()})


def nested_overrides(values: dict[str, Any]) -> dict:
    """{"xgboost.rounds": 200} as {"xgboost": {"rounds": 200}}, what `load_config` takes."""
    nested: dict = {}
    for path, value in values.items():
        target = nested
        *sections, name = path.split(".")
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return nested


def merge_overrides(first: dict, then: dict) -> dict:
    """Nested overrides `first` with `then`'s on top."""
    merged = dict(first)
    for key, value in then.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged


def settings_markdown() -> str:
    """The docs' settings table: every setting with its type, default and doc."""
    lines = ["| setting | type | default | what it is |", "|---|---|---|---|"]
    for item in all_settings():
        default = json.dumps(item.default) if item.default is not None else "none"
        doc = item.doc.replace("|", "\\|")
        lines.append(f"| `{item.path}` | {item.type_name} | `{default}` | {doc} |")
    return "\n".join(lines)


def _walk(cls: type, prefix: str):
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for item in fields(cls):
        path = f"{prefix}{item.name}"
        default = (
            item.default_factory() if item.default_factory is not MISSING else item.default
        )  # fmt: skip
        if is_dataclass(default):
            yield from _walk(type(default), f"{path}.")
        else:
            yield Setting(path, hints[item.name], default, docs.get(item.name, ""))


@cache
def field_docs(cls: type) -> dict[str, str]:
    """{field: the comment written on its line, or on the comment lines just above it}."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.add(token.start[0])
    docs = {}
    body = ast.parse(source).body[0].body
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line = node.lineno
            if line in comments and line in code_lines:
                docs[node.target.id] = comments[line]
                continue
            above = []
            while line - 1 in comments and line - 1 not in code_lines:
                line -= 1
                above.insert(0, comments[line])
            docs[node.target.id] = " ".join(above)
    return docs


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(arg) for arg in typing.get_args(kind)).replace(
            "NoneType", "none"
        )
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(kind)[0])}"
    return getattr(kind, "__name__", str(kind))


def _parse(kind: Any, text: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(kind)
        if type(None) in args and text.lower() in ("none", "null", ""):
            return None
        return _parse(next(arg for arg in args if arg is not type(None)), text)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return tuple(_parse(item, part.strip()) for part in text.split(",") if part.strip())
    if kind is bool:
        if text.lower() in ("true", "yes", "1", "on"):
            return True
        if text.lower() in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"{text!r} is not true or false")
    if kind in (int, float):
        try:
            return kind(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"{text!r} is not a number of type {kind.__name__}") from None
    return text


if __name__ == "__main__":
    sys.stdout.write(settings_markdown() + "\n")
