"""model.json, the one description of a model dir, read in one place and typed.

Every model kind writes it (`basket.models.base.write_model_dir`); the registry,
packaging, publishing, batch scoring, the online scorer and the comparison read
it through `ModelMeta`, so a missing file or field gives the same clear error
everywhere and the defaults (an unversioned model, a threshold decoding) are
defined once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNVERSIONED = "unversioned"


@dataclass(frozen=True)
class ModelMeta:
    """What model.json says; `fields` keeps every field (the kind-specific ones too)."""

    fields: dict[str, Any]
    source: str = "model.json"

    @classmethod
    def read(cls, model_dir: Path | str) -> ModelMeta:
        """The model.json of `model_dir`; FileNotFoundError naming the dir when it is missing."""
        path = Path(model_dir) / "model.json"
        if not path.is_file():
            raise FileNotFoundError(f"{model_dir} is not a model dir: model.json is missing")
        return cls.parse(path.read_text(), str(path))

    @classmethod
    def parse(cls, text: str | bytes, source: str = "model.json") -> ModelMeta:
        """From model.json's text (e.g. read out of an archive); ValueError naming `source`
        when it is not a JSON object with a `kind`."""
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source} is not JSON: {error}") from error
        if not isinstance(fields, dict) or "kind" not in fields:
            raise ValueError(f"{source} does not name the model's kind")
        return cls(fields, source)

    @property
    def kind(self) -> str:
        return str(self.fields["kind"])

    @property
    def name(self) -> str | None:
        """The candidate's name (e.g. "xgboost"), None for models saved outside a run."""
        return self.fields.get("name")

    @property
    def version(self) -> str:
        return str(self.fields.get("version", UNVERSIONED))

    @property
    def threshold(self) -> float:
        return float(self.fields["threshold"])

    @property
    def decoding(self) -> str:
        return str(self.fields.get("decoding", "threshold"))

    @property
    def fit(self) -> str:
        """ "tuned" or "refit"."""
        return str(self.fields.get("fit", "tuned"))

    @property
    def decoding_on_validation(self) -> dict[str, float] | None:
        return self.fields.get("decoding_on_validation")

    def __getitem__(self, key: str) -> Any:
        """A kind-specific field; KeyError naming the file when it is missing."""
        if key not in self.fields:
            raise KeyError(f"{self.source} has no {key!r}")
        return self.fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A kind-specific field, or `default`."""
        return self.fields.get(key, default)
