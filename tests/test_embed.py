"""Product embeddings: deterministic, and they find the generator's planted bundles."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from basket.models.embed import EmbedConfig, embed_products, read_embeddings

CONFIG = EmbedConfig(epochs=25)


def test_embeddings_file_has_the_ev_layout_and_is_deterministic(prepared, tmp_path):
    first = embed_products(
        prepared.splits.eval_inputs, prepared.vocab, tmp_path / "a.parquet", CONFIG
    )
    second = embed_products(
        prepared.splits.eval_inputs, prepared.vocab, tmp_path / "b.parquet", CONFIG
    )
    frame = pd.read_parquet(first)
    assert list(frame.columns) == ["product_id"] + [f"e{i}" for i in range(64)]
    assert len(frame) == len(prepared.vocab)
    pd.testing.assert_frame_equal(frame, pd.read_parquet(second))


def test_bundled_products_end_up_closer_than_random_pairs(prepared, synth_dir, tmp_path):
    path = embed_products(
        prepared.splits.eval_inputs, prepared.vocab, tmp_path / "e.parquet", CONFIG
    )
    vectors = read_embeddings(path, prepared.vocab)
    vectors = vectors - vectors.mean(axis=0)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    bundles = np.array(json.loads((synth_dir / "synth_truth.json").read_text())["bundles"])
    first, second = prepared.vocab.index_of(bundles[:, 0]), prepared.vocab.index_of(bundles[:, 1])
    known = (first >= 0) & (second >= 0)
    bundle_cosine = (vectors[first[known]] * vectors[second[known]]).sum(axis=1).mean()
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(vectors), (2, 2000))
    random_cosine = (vectors[a] * vectors[b]).sum(axis=1).mean()
    assert known.sum() > 20
    assert bundle_cosine > random_cosine + 0.2
