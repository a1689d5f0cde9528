"""connectome_lib.effects: per-book gaps, the gap over training and tokens to target, on tables
with known answers."""

import numpy as np
import pandas as pd
import pytest

from connectome_lib import effects


def test_window_books_take_the_book_of_the_first_scored_token():
    books = np.array([0] * 9 + [1] * 8 + [2] * 8)
    assert effects.window_books(3, 8, books).tolist() == [0, 1, 2]  # tokens 1, 9, 17
    with pytest.raises(ValueError, match="validation tokens"):
        effects.window_books(4, 8, books)


def test_book_gaps_are_unit_means_per_book():
    units = pd.DataFrame({"model": ["connectome_s0", "connectome_s1", "dense_s0", "dense_s1"],
                          "unit": ["c0", "c1", "s0", "s1"]})
    rows = []
    for model, label, shift in (("connectome_s0", "Connectome", -0.1), ("connectome_s1", "Connectome", -0.3),
                                ("dense_s0", "NoConnectome", 0.0), ("dense_s1", "NoConnectome", 0.0)):
        for item in range(4):  # windows 0-1 in book 0, 2-3 in book 1; the gap only in book 1
            rows.append({"measure": "validation loss", "model": model, "label": label, "item": item,
                         "value": 5.0 + (shift if item >= 2 else 0.0)})
    losses = effects.book_losses(pd.DataFrame(rows), units, np.array([0, 0, 1, 1]), {0: "A", 1: "B"})
    gaps = effects.book_gaps(losses).set_index("title")
    assert gaps.loc["A", "gap"] == pytest.approx(0.0) and gaps.loc["B", "gap"] == pytest.approx(-0.2)
    assert gaps.loc["B", "ci_low"] < -0.2 < gaps.loc["B", "ci_high"] and gaps.loc["B", "n_a"] == 2


def test_tokens_to_target_interpolates_and_gives_an_interval_over_lineages():
    rows = []
    for unit, curve in (("c0", [6.0, 5.0, 4.0]), ("c1", [6.0, 4.5, 4.0])):
        rows += [{"label": "Connectome", "unit": unit, "iteration": i, "tokens": t, "val_loss": v}
                 for i, t, v in zip((0, 1, 2), (0, 100, 200), curve)]
    rows += [{"label": "NoConnectome", "unit": "s0", "iteration": i, "tokens": t, "val_loss": v}
             for i, t, v in zip((0, 1, 2), (0, 100, 200), (6.0, 5.5, 4.5))]
    t = effects.tokens_to_target(pd.DataFrame(rows)).set_index("unit")
    assert t["target"].iloc[0] == 4.5
    assert t.loc["c0", "tokens"] == pytest.approx(150) and t.loc["c1", "tokens"] == pytest.approx(100)
    assert t.loc["mean", "fraction"] == pytest.approx(0.625) and t.loc["mean", "ci_low"] < 0.625


def test_gap_over_training_puts_the_papers_gap_beside_ours():
    from connectome_lib.paper_numbers import paper_results

    rows = [{"label": lab, "unit": f"c{s}" if lab == "Connectome" else f"s{s}", "seed": s, "iteration": it,
             "tokens": 10 * it, "val_loss": v + 0.01 * s}
            for lab, v in (("Connectome", 4.0), ("NoConnectome", 4.2)) for s in (0, 1) for it in (0, 100)]
    g = effects.gap_over_training(pd.DataFrame(rows), paper_results())
    ours = g[(g["source"] == "ours") & (g["control"] == "NoConnectome")]
    assert ours["gap"].tolist() == pytest.approx([-0.2, -0.2])
    paper = g[(g["source"] == "paper") & (g["control"] == "NoConnectome")].set_index("iteration")["gap"]
    assert paper[2000] == pytest.approx(3.58 - 3.90)
