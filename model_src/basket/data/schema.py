"""The Instacart layout: file names, columns and their types, in one place.

Everything that names a table or a column imports it from here, so a rename is
one edit. Types are the narrowest that hold the public Kaggle release.
"""

from __future__ import annotations

import pyarrow as pa

ORDERS = "orders"
PRIOR_LINES = "order_products__prior"
TRAIN_LINES = "order_products__train"
PRODUCTS = "products"
AISLES = "aisles"
DEPARTMENTS = "departments"

# Column names used across the package.
ORDER_ID = "order_id"
USER_ID = "user_id"
EVAL_SET = "eval_set"
ORDER_NUMBER = "order_number"
ORDER_DOW = "order_dow"
ORDER_HOUR = "order_hour_of_day"
DAYS_SINCE_PRIOR = "days_since_prior_order"
PRODUCT_ID = "product_id"
ADD_TO_CART = "add_to_cart_order"
REORDERED = "reordered"
PRODUCT_NAME = "product_name"
AISLE_ID = "aisle_id"
AISLE = "aisle"
DEPARTMENT_ID = "department_id"
DEPARTMENT = "department"

EVAL_SETS = ("prior", "train", "test")

_LINE_SCHEMA = pa.schema(
    [
        (ORDER_ID, pa.int32()),
        (PRODUCT_ID, pa.int32()),
        (ADD_TO_CART, pa.int16()),
        (REORDERED, pa.int8()),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    ORDERS: pa.schema(
        [
            (ORDER_ID, pa.int32()),
            (USER_ID, pa.int32()),
            (EVAL_SET, pa.string()),
            (ORDER_NUMBER, pa.int16()),
            (ORDER_DOW, pa.int8()),
            (ORDER_HOUR, pa.int8()),
            (DAYS_SINCE_PRIOR, pa.float32()),
        ]
    ),
    PRIOR_LINES: _LINE_SCHEMA,
    TRAIN_LINES: _LINE_SCHEMA,
    PRODUCTS: pa.schema(
        [
            (PRODUCT_ID, pa.int32()),
            (PRODUCT_NAME, pa.string()),
            (AISLE_ID, pa.int16()),
            (DEPARTMENT_ID, pa.int16()),
        ]
    ),
    AISLES: pa.schema([(AISLE_ID, pa.int16()), (AISLE, pa.string())]),
    DEPARTMENTS: pa.schema([(DEPARTMENT_ID, pa.int16()), (DEPARTMENT, pa.string())]),
}

REQUIRED_TABLES = (ORDERS, PRIOR_LINES, PRODUCTS)
OPTIONAL_TABLES = (TRAIN_LINES, AISLES, DEPARTMENTS)
