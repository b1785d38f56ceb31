"""Reference baselines against hand-computed cases: P-TopFreq and TIFU-KNN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from basket.config.candidates import BY_NAME
from basket.config.run import load_config
from basket.data.history import Histories
from basket.data.vocab import VocabConfig, Vocabulary
from basket.models.base import TrainingSet
from basket.models.tifu_knn import TifuConfig, TifuKNN, tifu_vectors
from basket.models.top_freq import PTopFreq
from basket.testing.histories import histories_from
from basket.training.tuning import tune_tifu_knn, tuning_set

PRODUCTS = pd.DataFrame({"product_id": range(1, 8), "product_name": [f"p{i}" for i in range(1, 8)]})


def vocab_of(*bought) -> Vocabulary:
    return Vocabulary.build(np.array(bought), PRODUCTS, VocabConfig(top_n=None))


def test_top_freq_ranks_by_frequency_then_recency_then_popularity():
    # Product 1 in 3 of 4 orders; 2 and 3 twice each, 3 more recently; 4 once; popularity 5 > 6.
    history = histories_from([[[1, 2], [1, 2, 3], [4], [1, 3]]])
    vocab = vocab_of(5, 5, 5, 6, 6, 1, 2, 3, 4)
    answer = PTopFreq(vocab).recommend(history, k=6)
    assert answer.product_ids[0].tolist() == [1, 3, 2, 4, 5, 6]


def test_top_freq_basket_holds_products_in_half_the_orders():
    history = histories_from([[[1, 2], [1, 2, 3], [4], [1, 3]]])
    answer = PTopFreq(vocab_of(1, 2, 3, 4), threshold=0.5).recommend(history, k=3)
    assert sorted(answer.basket_product_ids.tolist()) == [1, 2, 3]


def test_tifu_vector_matches_the_papers_weights():
    """4 baskets, groups of 2 from the newest: groups {b4, b3} and {b2, b1}."""
    history = histories_from([[[1], [2], [1, 3], [3]]])
    vocab = vocab_of(1, 2, 3)
    config = TifuConfig(group_size=2, within_decay=0.5, group_decay=0.25, neighbours=0, alpha=1.0)
    vector = tifu_vectors(history, vocab, config).toarray()[0]
    # newest group: b4 weight 1, b3 weight 0.5, averaged over 2; older group x 0.25, same inside; / 2 groups
    expected = {
        1: (0.5 * 1 / 2) / 2 + 0.25 * (0.5 / 2) / 2,  # in b3 (newest group) and b1 (older group)
        2: 0.25 * (1 / 2) / 2,  # b2 is the newest of the older group
        3: (1 / 2 + 0.5 / 2) / 2,  # b4 and b3
    }
    for product, weight in expected.items():
        assert vector[vocab.index_of(np.array([product]))[0]] == pytest.approx(weight)


def test_tifu_mixes_the_nearest_neighbours_and_never_the_user_itself():
    database = histories_from([[[1, 2]], [[1, 2, 3]], [[4]]], user_ids=[10, 11, 12])
    vocab = vocab_of(1, 2, 3, 4)
    model = TifuKNN(vocab, TifuConfig(group_size=1, neighbours=1, alpha=0.5))
    model.fit(TrainingSet(database, None, vocab))
    scores = model.score(database.select_users(np.array([0])))[0]
    # user 10's nearest other user is 11 (shares 1 and 2), not itself and not 12:
    # 0.5 x own [1, 1, 0, 0] + 0.5 x user 11's [1, 1, 1, 0]
    index = vocab.index_of(np.array([1, 2, 3, 4]))
    assert scores[index].tolist() == pytest.approx([1.0, 1.0, 0.5, 0.0])


def test_tifu_round_trips_without_pickle(tmp_path):
    from basket.models.registry import load_model

    database = histories_from([[[1, 2]], [[1, 2, 3]], [[4]]])
    vocab = vocab_of(1, 2, 3, 4)
    model = TifuKNN(vocab, TifuConfig(neighbours=1)).fit(TrainingSet(database, None, vocab))
    loaded = load_model(model.save(tmp_path / "tifu"))
    np.testing.assert_allclose(loaded.score(database), model.score(database))


def test_tifu_settings_are_searched_on_validation_and_the_best_is_kept(prepared):
    grid = {
        "group_size": [2, 3], "within_decay": [], "group_decay": [0.5, 1.0],
        "neighbours": [10, 50], "alpha": [0.5, 0.9], "passes": 1, "users": 200,
    }  # fmt: skip
    config = load_config(overrides={"tifu_grid": grid})
    tuned = tune_tifu_knn(BY_NAME["tifu_knn"], tuning_set(prepared, None), config)
    table = tuned.grid
    assert len(table) >= 6 and table["chosen"].sum() == 1
    chosen = table[table["chosen"]].iloc[0]
    assert chosen["recall@10"] == table["recall@10"].max()
    settings = {name: chosen[name] for name in ("group_size", "neighbours", "alpha")}
    assert {name: getattr(tuned.model.config, name) for name in settings} == settings
    assert tuned.model.database.shape[0] == prepared.splits.valid_inputs.n_users


def _brute_force_tifu(model: TifuKNN, queries: Histories) -> np.ndarray:
    """TIFU-KNN's score the slow, obvious way: dense cosine similarities, a full sort."""
    own = tifu_vectors(queries, model.vocab, model.config).toarray()
    database = model.database.toarray()
    unit = lambda m: m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)  # noqa: E731
    similarity = unit(own) @ unit(database).T
    similarity[queries.user_ids[:, None] == model.database_users[None, :]] = -np.inf
    k = model.config.neighbours
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return model.config.alpha * own + (1 - model.config.alpha) * database[nearest].mean(axis=1)


def test_tifu_neighbour_search_is_exact(prepared):
    """The chunked torch search finds the same neighbours as a dense brute force (on data
    where no two similarities tie at the k-th place, which a continuous decay makes likely)."""
    data = tuning_set(prepared, None)
    config = TifuConfig(group_size=3, within_decay=0.83, group_decay=0.71, neighbours=7, alpha=0.6)
    model = TifuKNN(data.vocab, config).fit(data)
    queries = data.inputs.select_users(np.arange(0, data.inputs.n_users, 3))
    np.testing.assert_allclose(
        model.score(queries), _brute_force_tifu(model, queries), rtol=1e-5, atol=1e-6
    )


def test_tifu_neighbours_come_from_a_bounded_pool_and_never_include_the_customer(prepared):
    data = tuning_set(prepared, None)
    n_users = data.inputs.n_users
    config = TifuConfig(neighbours=5, alpha=0.5, pool=n_users // 4)
    model = TifuKNN(data.vocab, config).fit(data)
    assert model.database.shape[0] == n_users // 4
    assert set(model.database_users) <= set(data.inputs.user_ids)
    # Customers inside the pool and outside it are scored the same way, never with themselves.
    np.testing.assert_allclose(
        model.score(data.inputs), _brute_force_tifu(model, data.inputs), rtol=1e-5, atol=1e-6
    )
