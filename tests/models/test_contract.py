"""One contract, run against every candidate of the registry: what `retrain`, batch scoring, the
TorchServe handler and Triton rely on, whichever kind wins."""

from __future__ import annotations

import numpy as np
import pytest

from basket.config.candidates import CANDIDATE_NAMES
from basket.config.run import load_config
from basket.models.base import Recommender, recommend_in_chunks
from basket.models.ranking import top_k
from basket.models.registry import MODEL_KINDS, load_model
from basket.training.tuning import CANDIDATES, decoding_options, refit_set, tune, tuning_set

TINY = load_config(
    overrides={
        "train": {"epochs": 1, "batch_size": 64, "targets_per_user": 1, "pos_weights": [5.0]},
        "predictor": {"order_hidden": 16, "embed_dim": 8, "gate_hidden": 8},
        "embed": {"dim": 8},
        "xgboost": {"rounds": 20, "targets_per_user": 1},
        "tifu": {"neighbours": 20},
    }
)
USERS = 40


@pytest.fixture(scope="module")
def embeddings(prepared):
    return np.random.default_rng(0).normal(size=(len(prepared.vocab), 8)).astype(np.float32)


@pytest.fixture(scope="module")
def inputs(prepared):
    return prepared.splits.eval_inputs.select_users(np.arange(USERS))


@pytest.fixture(scope="module", params=sorted(CANDIDATES))
def tuned(request, prepared, embeddings):
    """(name, model): each candidate tuned on the validation baskets, decoding chosen there."""
    return request.param, tune(request.param, tuning_set(prepared, embeddings), TINY).model


def test_the_registry_and_the_config_name_the_same_candidates():
    assert set(CANDIDATES) == set(CANDIDATE_NAMES)


def test_a_candidate_is_a_recommender_of_a_registered_kind(tuned):
    name, model = tuned
    assert isinstance(model, Recommender), name
    assert MODEL_KINDS[model.kind] is type(model)
    assert model.decoding in ("threshold", "expected_f1")


def test_scores_cover_the_vocabulary_for_every_user(tuned, prepared, inputs):
    _, model = tuned
    scores = model.score(inputs)
    assert scores.shape == (USERS, len(prepared.vocab)) and scores.dtype == np.float32
    assert np.isfinite(scores).all()


def test_every_product_a_customer_bought_can_be_recommended(tuned, prepared, inputs):
    """The whole catalogue: a rare product a customer bought is never out of reach. The neural
    nets' output layer holds only the most bought products (here fewer than the vocabulary);
    their repeat gate scores the customer's others."""
    name, model = tuned
    if name in ("cnngru", "attentiongru"):
        assert model.head < len(prepared.vocab)
    scores = model.score(inputs)
    offsets, bought = inputs.bought()
    rows = np.repeat(np.arange(inputs.n_users), np.diff(offsets))
    columns = model.vocab.index_of(bought)
    assert (columns >= 0).all(), "every product bought is in the vocabulary"
    assert (scores[rows, columns] > 0).all(), name


def test_recommend_ranks_by_score_and_decodes_the_basket_by_the_models_decoding(tuned, inputs):
    _, model = tuned
    scores = model.score(inputs)
    answer = model.recommend(inputs, k=10)
    np.testing.assert_array_equal(answer.user_ids, inputs.user_ids)
    expected = model.vocab.product_ids[top_k(scores, 10)[0]]
    np.testing.assert_array_equal(answer.product_ids, expected)
    assert (np.diff(answer.scores, axis=1) <= 0).all()
    sizes = np.diff(answer.basket_offsets)
    if model.decoding == "threshold":
        np.testing.assert_array_equal(sizes, (scores >= model.threshold).sum(axis=1))
    else:
        assert (sizes >= 1).all()


@pytest.mark.parametrize("k", [10, 100])
def test_the_answer_equals_the_one_from_the_whole_score_matrix(tuned, inputs, k):
    """Models that answer from their nonzero scores (no users x catalogue matrix) give exactly
    the answer of the matrix, short rows (fewer scored products than k) included."""
    name, model = tuned
    kept = model.decoding, model.threshold
    try:
        for model.decoding, model.threshold in (("threshold", 0.05), ("expected_f1", 0.5)):
            answer, reference = model.recommend(inputs, k), recommend_in_chunks(model, inputs, k)
            np.testing.assert_array_equal(answer.product_ids, reference.product_ids, name)
            np.testing.assert_array_equal(answer.scores, reference.scores, name)
            np.testing.assert_array_equal(answer.basket_offsets, reference.basket_offsets)
            np.testing.assert_array_equal(answer.basket_product_ids, reference.basket_product_ids)
    finally:
        model.decoding, model.threshold = kept


def test_the_decoding_choice_reads_the_same_baskets_as_from_the_whole_score_matrix(
    tuned, prepared, embeddings
):
    """Choosing a decoding on validation scores in the model's own form (no customers x
    catalogue matrix at Instacart scale) and finds every option's F1 the matrix gives."""
    name, model = tuned
    inputs, targets = tuning_set(prepared, embeddings).validation()
    thresholds = TINY.basket_thresholds
    own = decoding_options(model, inputs, targets, thresholds)
    model.score_form = "dense"  # this instance only: score through the whole matrix
    try:
        dense = decoding_options(model, inputs, targets, thresholds)
    finally:
        del model.score_form
    assert own == dense, name
    assert len(own) == len({*thresholds, model.threshold}) + 1


def test_save_and_load_give_the_same_answers(tuned, inputs, tmp_path):
    name, model = tuned
    loaded = load_model(model.save(tmp_path / name, extra={"name": name}))
    assert type(loaded) is type(model)
    assert (loaded.threshold, loaded.decoding) == (model.threshold, model.decoding)
    np.testing.assert_allclose(loaded.score(inputs), model.score(inputs), rtol=1e-6, atol=1e-7)
    first, again = model.recommend(inputs, 10), loaded.recommend(inputs, 10)
    np.testing.assert_array_equal(first.product_ids, again.product_ids)
    np.testing.assert_array_equal(first.basket_product_ids, again.basket_product_ids)
    assert not list((tmp_path / name).glob("*.pkl")), "nothing is pickled"


def test_a_refit_is_deterministic_and_keeps_the_decoding(
    tuned, prepared, embeddings, inputs, tmp_path
):
    name, model = tuned
    answers = []
    for attempt in range(2):  # each refit starts from the tuned model as saved
        refit = load_model(model.save(tmp_path / f"{name}-{attempt}"))
        refit.fit(refit_set(prepared, embeddings))
        assert (refit.threshold, refit.decoding) == (model.threshold, model.decoding)
        answers.append(refit.score(inputs))
    np.testing.assert_array_equal(answers[0], answers[1], err_msg=name)
