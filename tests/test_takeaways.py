"""The "What this shows" takeaways of the stage notebooks (connectome_lib.takeaways), on small
synthetic summary tables."""

from __future__ import annotations

import pandas as pd
import pytest

from connectome_lib import takeaways


def _summary(task, metric, values):
    return pd.DataFrame([{"label": label, "task": task, "metric": metric, "mean": m, "se": se, "n_seeds": 3}
                         for label, (m, se) in values.items()])


def test_ordering_holds_when_separated_and_not_when_reversed():
    good = takeaways._ordering(
        {"Connectome": (3.5, 0.01), "NoConnectome": (3.9, 0.01), "RandomConnectome": (5.4, 0.01)},
        higher=False, what="loss",
    )
    assert "The means are in the paper's order" in good and "decided by the tests across lineages and seeds" in good
    assert "do not order them" not in good
    bad = takeaways._ordering({"Connectome": (5.0, 0.01), "NoConnectome": (3.9, 0.01), "RandomConnectome": (5.4, 0.01)},
                           higher=False, what="loss")
    assert "The means are **not** in the paper's order" in bad
    close = takeaways._ordering({"Connectome": (0.30, 0.02), "NoConnectome": (0.29, 0.02)}, higher=True, what="r")
    assert "in the paper's order" in close and "standard error over seeds" in close
    assert "Connectome and NoConnectome are less than one standard error of their difference apart" in close
    one_seed = takeaways._ordering({"Connectome": (0.3, float("nan")), "NoConnectome": (0.2, float("nan"))},
                                higher=True, what="r")
    assert "one seed" in one_seed


def test_takeaway_data_quotes_sizes_ratio_and_entropy():
    corpora = pd.DataFrame({"split": ["outer", "inner", "val"], "tokens": [1000, 100, 50]})
    md = takeaways.takeaway_data(corpora, 1024, 5.4321, "smoke")
    assert "**smoke**" in md and "1,000" in md and "10.0×" in md and "5.432" in md


def test_takeaway_evolution_holds_or_not():
    s = pd.DataFrame({"generation": [0, 1, 2], "val_loss": [4.0, 4.05, 4.1], "distinct_tokens": [10, 10, 12]})
    assert "**holds**" in takeaways.takeaway_evolution(s, 0.64, "cpu")
    s["val_loss"] = [4.0, 4.5, 5.0]
    md = takeaways.takeaway_evolution(s, 0.64, "cpu")
    assert "**does not hold**" in md and "+25.0%" in md and "64.0%" in md
    assert "No finished generation" in takeaways.takeaway_evolution(pd.DataFrame(), 1.0, "cpu")


def test_takeaway_development_flags_models_above_unigram():
    final = pd.DataFrame({"label": ["Connectome", "Connectome", "NoConnectome", "NoConnectome", "RandomConnectome",
                                    "RandomConnectome"], "val_loss": [5.0, 5.1, 5.5, 5.6, 6.5, 6.6]})
    md = takeaways.takeaway_development(final, 6.0, "smoke")
    assert "in the paper's order" in md and "RandomConnectome is still at or above the unigram entropy" in md
    md = takeaways.takeaway_development(final, 7.0, "smoke")
    assert "Every model type is below" in md
    # the learning gate: NoConnectome's mean (5.55) at least 1.5 nats below the unigram entropy
    assert "**Learning gate not met:** NoConnectome ends 1.45 nats" in takeaways.takeaway_development(final, 7.0, "x")
    assert "**Learning gate met:** NoConnectome ends 1.55 nats" in takeaways.takeaway_development(final, 7.1, "x")


def test_learning_gate_measures_the_dense_models_distance_to_unigram():
    final = pd.DataFrame({"label": ["NoConnectome", "NoConnectome", "Connectome"], "val_loss": [4.0, 4.2, 9.0]})
    g = takeaways.learning_gate(final, 5.6)
    assert g["gap"] == pytest.approx(1.5) and g["met"] is True and g["gate"] == takeaways.LEARNING_GATE_NATS
    assert takeaways.learning_gate(final, 5.5)["met"] is False
    assert takeaways.learning_gate(final[final.label == "Connectome"], 5.5)["met"] is None


def test_takeaway_controls_checks_chance_overlap_and_flips():
    flips = pd.DataFrame({"generation": [1, 2], "sign_flips": [0.02, 0.05]})
    d = 0.5
    md = takeaways.takeaway_controls(d, d / (2 - d), flips, "cpu")
    assert "**at chance**" in md and "largely inherited" in md
    assert "**not at chance**" in takeaways.takeaway_controls(d, 0.9, flips.assign(sign_flips=0.4), "cpu")


def test_takeaway_nlp_says_when_no_model_beats_chance():
    s = pd.concat([_summary("mmlu", "acc", {"Connectome": (0.25, 0.01), "NoConnectome": (0.24, 0.01)}),
                   _summary("blimp", "acc", {"Connectome": (0.70, 0.01), "NoConnectome": (0.60, 0.01)})])
    md = takeaways.takeaway_nlp(s, "smoke")
    assert "No model is clearly above chance (0.25)" in md
    assert "Above chance (0.5) by more than two standard errors: Connectome, NoConnectome" in md


def test_takeaway_behaviour_and_brain_compare_with_the_strongest_baseline():
    s = _summary("futrell2018", "r", {"Connectome": (0.30, 0.01), "NoConnectome": (0.20, 0.01)})
    b = pd.Series({"untrained/futrell2018/r": 0.25, "rt/r_n_chars": 0.35, "rt/r_n_tokens": 0.1})
    md = takeaways.takeaway_behaviour(s, b, "cpu")
    assert "word length in characters (r = 0.350)" in md and "No trained model exceeds it" in md
    s = _summary("tuckute2024", "r_best", {"Connectome": (0.30, 0.01), "RandomConnectome": (0.10, 0.01)})
    md = takeaways.takeaway_brain(s, pd.Series({"brain/r_length": 0.2, "untrained/tuckute2024/r_best": 0.15}), "cpu")
    assert "sentence length (r = 0.200)" in md and "Connectome exceeds it" in md and "in the paper's order" in md


def test_ordering_marks_ties_and_behaviour_reports_the_partial_r():
    tie = takeaways._ordering({"Connectome": (0.25, 0.01), "RandomConnectome": (0.25, 0.0)}, higher=True, what="acc")
    assert "Connectome (0.250 ± 0.010) = RandomConnectome (0.250)" in tie
    s = pd.concat([_summary("futrell2018", "r", {"Connectome": (0.30, 0.01)}),
                   _summary("futrell2018", "r_partial_length",
                            {"Connectome": (0.10, 0.01), "NoConnectome": (0.12, 0.01)})])
    md = takeaways.takeaway_behaviour(s, pd.Series(dtype=float), "cpu")
    assert "r with word length partialled out" in md and "NoConnectome (0.120 ± 0.010)" in md
