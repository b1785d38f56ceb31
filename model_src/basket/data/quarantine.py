"""Rows that validation quarantined (`basket.validation.validate`, warning rules), kept out of training
and scoring: RUN/validation/quarantine/TABLE.parquet holds them, with the rule they broke.

Only order lines can be quarantined today (a line's product missing from the catalogue);
they are matched by (order_id, product_id), which is unique per line.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from basket.data import schema as s
from basket.data.load import Tables

LINE_TABLES = {s.PRIOR_LINES: "prior_lines", s.TRAIN_LINES: "train_lines"}


def _line_keys(lines: pd.DataFrame) -> np.ndarray:
    order = pd.to_numeric(lines[s.ORDER_ID], errors="coerce").fillna(-1).to_numpy(np.int64)
    product = pd.to_numeric(lines[s.PRODUCT_ID], errors="coerce").fillna(-1).to_numpy(np.int64)
    return (order << 32) | (product & 0xFFFFFFFF)


def read_quarantine(folder: Path | str | None) -> dict[str, np.ndarray]:
    """{Tables field: keys of its quarantined lines} of `folder`; empty when there is none."""
    if folder is None:
        return {}
    return {
        field_name: _line_keys(pd.read_parquet(path, columns=[s.ORDER_ID, s.PRODUCT_ID]))
        for table, field_name in LINE_TABLES.items()
        if (path := Path(folder) / f"{table}.parquet").exists()
    }


def drop_quarantined(tables: Tables, quarantined: dict[str, np.ndarray]) -> Tables:
    """`tables` without the lines of `quarantined` (`read_quarantine`)."""
    changes = {
        field_name: lines[~np.isin(_line_keys(lines), keys)].reset_index(drop=True)
        for field_name, keys in quarantined.items()
        if (lines := getattr(tables, field_name)) is not None
    }
    return replace(tables, **changes) if changes else tables
