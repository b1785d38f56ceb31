"""Rows that validation quarantined (`basket.validate`, warning rules), kept out of training
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


def drop_quarantined(tables: Tables, folder: Path | str | None) -> Tables:
    """`tables` without the lines quarantined in `folder`; `tables` itself when there is none."""
    if folder is None or not Path(folder).is_dir():
        return tables
    changes = {}
    for table, field_name in LINE_TABLES.items():
        path = Path(folder) / f"{table}.parquet"
        lines = getattr(tables, field_name)
        if lines is None or not path.exists():
            continue
        quarantined = _line_keys(pd.read_parquet(path, columns=[s.ORDER_ID, s.PRODUCT_ID]))
        keep = ~np.isin(_line_keys(lines), quarantined)
        changes[field_name] = lines[keep].reset_index(drop=True)
    return replace(tables, **changes) if changes else tables
