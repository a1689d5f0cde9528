"""Tuckute2024 and the ridge mapping: known answers, determinism, bad ROI, regression."""

import numpy as np
import pytest
from evals_helpers import tiny_connectome_gpt, tokenizer

from connectome_lib.evals.ridge import ridge_cv_score
from connectome_lib.evals.tuckute2024 import evaluate_tuckute2024, load_tuckute2024
from connectome_lib.paths import DataMissingError


def test_ridge_recovers_a_linear_answer_and_not_noise():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10))
    y = X @ rng.normal(size=10) + 0.01 * rng.normal(size=200)
    assert ridge_cv_score(X, y).r > 0.99
    noise = ridge_cv_score(rng.normal(size=(200, 10)), rng.normal(size=200))
    assert abs(noise.r) < 0.2 and len(noise.fold_r) == 5


def test_ridge_is_deterministic_and_checks_shapes():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(50, 80)), rng.normal(size=50)
    assert ridge_cv_score(X, y).fold_r == ridge_cv_score(X, y).fold_r
    with pytest.raises(ValueError, match="rows"):
        ridge_cv_score(X, y[:-1])
    with pytest.raises(ValueError, match="too few"):
        ridge_cv_score(X[:6], y[:6])


def test_data_and_unknown_roi(tmp_path):
    df = load_tuckute2024()
    assert len(df) == 1000 and "lang_LH_netw" in df
    assert len(load_tuckute2024(roi="lang_LH_IFG", limit=20)) == 20
    with pytest.raises(ValueError, match="unknown ROI 'V1'.*lang_LH_netw"):
        load_tuckute2024(roi="V1")
    with pytest.raises(DataMissingError):
        load_tuckute2024(data_dir=tmp_path)


def test_regression_first_100_sentences_and_identical_rerun():
    model, tok = tiny_connectome_gpt(0), tokenizer()
    a = evaluate_tuckute2024(model, tok, limit=100, progress=False)
    b = evaluate_tuckute2024(model, tok, limit=100, progress=False)
    assert a.as_dict() == b.as_dict()
    # An untrained tiny model predicts nothing: its r is noise around 0 whose exact value depends
    # on the machine's BLAS (0.0529 on one machine, -0.0920 on another, from the same code), so
    # it is checked as a bound, not pinned to a value that only holds on the machine that wrote it.
    assert all(abs(v) < 0.3 for k, v in a.as_dict().items() if k.startswith("r_"))
    assert [k for k in a.as_dict() if k.startswith("r_layer")] == ["r_layer0", "r_layer1", "r_layer2"]
    c = evaluate_tuckute2024(model, tok, limit=100, roi="lang_LH_AntTemp", progress=False)
    assert c.metadata["roi"] == "lang_LH_AntTemp"
