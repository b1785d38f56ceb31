"""Histories, targets and splits: correct baskets, in order, and no leak of the target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from basket.data import build_histories, holdout_last, load_tables, make_splits
from basket.testing.histories import scoring_users


@pytest.fixture(scope="module")
def tables(synth_dir):
    return load_tables(synth_dir)


@pytest.fixture(scope="module")
def histories(tables):
    return build_histories(tables)


def _baskets_by_hand(tables, user_id):
    """The user's known baskets, oldest first, from the raw tables (the slow, obvious way)."""
    lines = pd.concat([tables.prior_lines, tables.train_lines])
    orders = tables.orders[tables.orders["user_id"] == user_id].sort_values("order_number")
    baskets = []
    for order_id in orders["order_id"]:
        basket = lines[lines["order_id"] == order_id].sort_values("add_to_cart_order")
        if len(basket):
            baskets.append(basket["product_id"].tolist())
    return baskets


def test_histories_hold_each_users_baskets_in_time_and_cart_order(tables, histories):
    for position in (0, 17, histories.n_users - 1):
        user_id = histories.user_ids[position]
        expected = _baskets_by_hand(tables, user_id)
        assert [b.tolist() for b in histories.baskets(position)] == expected


def test_every_user_and_line_is_kept(tables, histories):
    assert histories.n_users == tables.orders["user_id"].nunique()
    assert len(histories.product_ids) == len(tables.prior_lines) + len(tables.train_lines)


def test_next_order_context_comes_from_the_test_order(tables, histories):
    test = tables.orders[tables.orders["eval_set"] == "test"].set_index("user_id")
    with_test = histories.next_dow >= 0
    assert with_test.sum() == len(test)
    users = histories.user_ids[with_test]
    np.testing.assert_array_equal(
        histories.next_dow[with_test], test.loc[users, "order_dow"].to_numpy()
    )
    assert scoring_users(histories).sum() == len(test)


def test_holdout_last_targets_the_last_basket_and_keeps_the_rest(histories):
    inputs, targets = holdout_last(histories)
    for position in (0, 5):
        baskets = histories.baskets(position)
        target = targets.product_ids[targets.offsets[position] : targets.offsets[position + 1]]
        assert target.tolist() == baskets[-1].tolist()
        assert [b.tolist() for b in inputs.baskets(position)] == [b.tolist() for b in baskets[:-1]]
    assert not set(targets.order_ids) & set(inputs.order_ids)


def test_validation_split_never_sees_the_evaluation_basket(histories):
    splits = make_splits(histories)
    eval_orders = set(splits.eval_targets.order_ids)
    assert not eval_orders & set(splits.eval_inputs.order_ids)
    assert not eval_orders & set(splits.valid_inputs.order_ids)
    assert not eval_orders & set(splits.valid_targets.order_ids)
    np.testing.assert_array_equal(splits.valid_inputs.user_ids, splits.eval_inputs.user_ids)
    # The validation input's context is the validation target order's own context.
    last_valid = splits.eval_inputs.order_offsets[1:] - 1
    np.testing.assert_array_equal(
        splits.valid_inputs.next_dow, splits.eval_inputs.order_dow[last_valid]
    )


def test_without_train_labels_the_target_is_the_last_prior_order(tables):
    unlabelled = type(tables)(tables.orders, tables.prior_lines, tables.products)
    histories = build_histories(unlabelled)
    _, targets = holdout_last(histories)
    prior = tables.orders[tables.orders["eval_set"] == "prior"]
    last_prior = prior.loc[
        prior.groupby("user_id")["order_number"].idxmax(), ["user_id", "order_id"]
    ]
    expected = last_prior.set_index("user_id").loc[targets.user_ids, "order_id"].to_numpy()
    np.testing.assert_array_equal(targets.order_ids, expected)


def test_select_users_keeps_their_whole_history(histories):
    picked = histories.select_users(np.array([3, 1]))
    assert picked.user_ids.tolist() == [histories.user_ids[3], histories.user_ids[1]]
    assert [b.tolist() for b in picked.baskets(0)] == [b.tolist() for b in histories.baskets(3)]
