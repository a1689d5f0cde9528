"""BLiMP: per-paradigm limit, equality with a direct loss after <|endoftext|>, regression."""

import numpy as np
import pytest

from connectome_lib.evals.blimp import evaluate_blimp, load_blimp
from connectome_lib.paths import DataMissingError
from evals_helpers import direct_loglik, tiny_connectome_gpt, tiny_gpt2, tokenizer


def test_limit_is_per_paradigm():
    recs = load_blimp(limit=2)
    assert len(recs) == 67 * 2
    assert len({r["UID"] for r in recs}) == 67


def test_scores_equal_a_direct_per_sentence_loss():
    model, tok = tiny_gpt2(), tokenizer()
    res = evaluate_blimp(model, tok, limit=1, batch_size=7, progress=False)
    recs = load_blimp(limit=1)
    eos = [tok.eos_token_id]
    correct = {
        r["UID"]: float(direct_loglik(model, eos, tok(r["sentence_good"])["input_ids"])
                        > direct_loglik(model, eos, tok(r["sentence_bad"])["input_ids"]))
        for r in recs
    }
    for uid, c in correct.items():
        assert res.value(f"acc/{uid}") == c
    assert res.value("acc") == pytest.approx(np.mean(list(correct.values())))


def test_regression_two_pairs_per_paradigm_tiny_connectome_gpt():
    res = evaluate_blimp(tiny_connectome_gpt(0), tokenizer(), limit=2, progress=False)
    assert round(res.value("acc"), 4) == 0.4851
    assert res.value("acc/adjunct_island") == 1.0


def test_missing_file(tmp_path):
    with pytest.raises(DataMissingError, match="blimp"):
        load_blimp(data_dir=tmp_path)
