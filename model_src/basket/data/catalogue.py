"""A realistic grocery catalogue for the synthetic generator.

Departments, aisles and base product names follow the Instacart release; each
aisle carries a typical repurchase cycle in days (milk weekly, detergent
monthly). Products are the base names, then their organic versions, then brand
variants, so a small catalogue holds the familiar names ("Banana",
"Organic Strawberries", "Organic Whole Milk") and a large one reaches the
~50k products of the real data with unique names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from basket.data.aisles import AISLES, BRANDS


@dataclass(frozen=True)
class Catalogue:
    """Products with their aisle, department and repurchase cycle, as parallel arrays.

    Product ids are 1..n (index + 1); aisle and department ids start at 1.
    """

    product_names: np.ndarray  # (P,) str
    product_aisle: np.ndarray  # (P,) int, aisle id
    product_cycle_days: np.ndarray  # (P,) float
    aisle_names: np.ndarray  # (A,) str, aisle id - 1 -> name
    aisle_department: np.ndarray  # (A,) int, department id
    department_names: np.ndarray  # (D,) str


def max_products() -> int:
    """How many distinct product names the catalogue can produce."""
    n_bases = sum(len(bases) for aisles in AISLES.values() for _, bases in aisles.values())
    return n_bases * 2 * (1 + len(BRANDS))


def build_catalogue(n_products: int) -> Catalogue:
    """The first `n_products` products: base names, then organic, then branded variants."""
    if not 1 <= n_products <= max_products():
        raise ValueError(f"n_products must be within 1..{max_products()}, got {n_products}")
    department_names = np.array(list(AISLES), dtype=object)
    aisle_names, aisle_department, aisle_cycle, base_names, base_aisle = [], [], [], [], []
    for dept_index, aisles in enumerate(AISLES.values(), start=1):
        for aisle, (cycle, bases) in aisles.items():
            aisle_names.append(aisle)
            aisle_department.append(dept_index)
            aisle_cycle.append(cycle)
            base_names.extend(bases)
            base_aisle.extend([len(aisle_names)] * len(bases))
    base_names_arr = np.array(base_names, dtype=object)
    base_aisle_arr = np.array(base_aisle)
    variants = [""] + [f"{brand} " for brand in BRANDS]
    names, aisles = [], []
    for variant in variants:
        for organic in ("", "Organic "):
            names.append(variant + organic + base_names_arr)
            aisles.append(base_aisle_arr)
            if sum(len(n) for n in names) >= n_products:
                break
        if sum(len(n) for n in names) >= n_products:
            break
    product_names = np.concatenate(names)[:n_products]
    product_aisle = np.concatenate(aisles)[:n_products]
    cycles = np.asarray(aisle_cycle, dtype=np.float64)[product_aisle - 1]
    return Catalogue(
        product_names=product_names,
        product_aisle=product_aisle,
        product_cycle_days=cycles,
        aisle_names=np.array(aisle_names, dtype=object),
        aisle_department=np.array(aisle_department),
        department_names=department_names,
    )
