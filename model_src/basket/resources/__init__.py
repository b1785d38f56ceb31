"""Files shipped inside the package, so an installed wheel has them too: the expectation
suites, the TorchServe handler and the config.properties template.

They live in `basket/resources/`; in a checkout those entries are links to the top-level
`expectations/`, `handlers/basket_handler.py` and `config.properties`, which stay the
files to edit.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped(name: str) -> Path:
    """The path of `name` (a file or folder) under basket/resources/."""
    return Path(str(files("basket") / "resources" / name))
