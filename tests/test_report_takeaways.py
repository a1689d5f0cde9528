"""Tests of the stage-page helpers and "What this shows" takeaways in connectome_lib.report,
on small synthetic connectomes and tables (no run folder needed except where built here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from connectome_lib import layout, report
from connectome_lib.connectome import Connectome

NAME = "transformer.h.0.mlp.c_fc.weight"


def _conn(mask: np.ndarray, signs: np.ndarray) -> Connectome:
    return Connectome({NAME: torch.tensor(mask, dtype=torch.bool)}, {NAME: torch.tensor(signs, dtype=torch.int8)})


def _generations():
    """Three nested generations of a 2x5 tensor: 10 -> 8 -> 4 kept; one survivor's sign flips
    between gen 0 and 1 (1 of 8 shared), none between gen 1 and 2."""
    m0 = np.ones((2, 5), bool)
    s0 = np.ones((2, 5), np.int8)
    m1 = m0.copy(); m1[0, :2] = False
    s1 = s0.copy(); s1[1, 4] = -1
    m2 = m1.copy(); m2[1, :4] = False
    return [_conn(m0, s0), _conn(m1, s1 * m1), _conn(m2, s1 * m2)]


def test_sign_flips_counts_kept_share_and_flipped_signs():
    t = report.sign_flips(_generations())
    assert list(t["generation"]) == [1, 2]
    assert t["kept_of_previous"].tolist() == pytest.approx([0.8, 0.5])
    assert t["sign_flips"].tolist() == pytest.approx([1 / 8, 0.0])


def test_sign_flips_pools_survivors_over_tensors_as_the_analysis_does():
    """A big tensor with no flip and a small one whose only survivor flips: pooled over the 11
    survivors 1/11 flip (a mean over the two tensors would say 0.5), the same number as the
    ``all`` row of analysis.sign_agreement shows on the analyses page."""
    from connectome_lib import analysis

    big, small = "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.attn.c_proj.weight"
    m_big, m_small = torch.ones(2, 5, dtype=torch.bool), torch.tensor([[True, False]])
    s_big = torch.ones(2, 5, dtype=torch.int8)
    before = Connectome({big: m_big, small: m_small}, {big: s_big, small: torch.tensor([[1, 0]], dtype=torch.int8)})
    after = Connectome({big: m_big, small: m_small}, {big: s_big, small: torch.tensor([[-1, 0]], dtype=torch.int8)})
    flips = report.sign_flips([before, after])["sign_flips"].item()
    assert flips == pytest.approx(1 / 11)
    pooled = analysis.sign_agreement(before, after).set_index("kind").loc["all", "agreement"]
    assert flips == pytest.approx(1 - pooled)


def test_sign_flips_takes_a_mapping_and_needs_two_generations():
    gens = dict(zip([3, 4, 5], _generations()))
    assert list(report.sign_flips(gens)["generation"]) == [4, 5]
    with pytest.raises(ValueError, match="two generations"):
        report.sign_flips(_generations()[:1])


def test_connectome_overview_density_and_positive_share():
    mask = np.array([[1, 1, 0, 0]], bool)
    c = Connectome({NAME: torch.tensor(mask)}, {NAME: torch.tensor([[1, -1, 0, 0]], dtype=torch.int8)})
    t = report.connectome_overview({"Connectome": c})
    assert t.loc["overall density", "Connectome"] == pytest.approx(0.5)
    assert t.loc["mean share of positive signs", "Connectome"] == pytest.approx(0.5)


def test_density_by_kind_sums_counts_per_kind_and_generation():
    d = pd.DataFrame({"generation": [0, 0, 1, 1], "kind": ["c_fc", "c_fc", "c_fc", "wte"],
                      "numel": [10, 30, 40, 10], "kept": [8, 24, 16, 5]})
    t = report.density_by_kind(d)
    assert t.loc["c_fc", "after gen 0"] == pytest.approx(0.8)
    assert t.loc["c_fc", "after gen 1"] == pytest.approx(0.4)
    assert t.loc["wte", "after gen 1"] == pytest.approx(0.5)
    assert np.isnan(t.loc["wte", "after gen 0"])
    with pytest.raises(ValueError, match="kind"):
        report.density_by_kind(d.drop(columns="kind"))


def test_paper_values_filters_and_rejects_unknown():
    p = report.paper_values("tuckute2024")
    assert set(p["task"]) == {"tuckute2024"} and p["layer"].notna().all()
    assert set(report.paper_values("perplexity", "loss")["iteration"].dropna()) == {500, 1000, 1500, 2000}
    with pytest.raises(ValueError, match="no number"):
        report.paper_values("nosuchtask")


def test_untrained_by_layer_orders_layers_numerically():
    b = pd.Series({"untrained/tuckute2024/r_layer10": 0.3, "untrained/tuckute2024/r_layer2": 0.2,
                   "untrained/tuckute2024/r_best": 0.9, "brain/r_length": 0.1})
    s = report.untrained_by_layer(b)
    assert list(s.index) == [2, 10] and s.tolist() == [0.2, 0.3]


def test_eval_table_and_initial_weights_read_the_run_layout(tmp_path):
    from safetensors.numpy import save_file

    tables = layout.evals_dir(tmp_path) / "tables"
    tables.mkdir(parents=True)
    pd.DataFrame({"rt": [1.0]}).to_csv(tables / "connectome_s0_iter000040_futrell2018.csv", index=False)
    assert report.eval_table(tmp_path, "connectome_s0", 40, "futrell2018")["rt"].tolist() == [1.0]
    with pytest.raises(FileNotFoundError, match="iter000041"):
        report.eval_table(tmp_path, "connectome_s0", 41, "futrell2018")
    for i, init in enumerate(layout.INITS):
        folder = layout.checkpoint_dir(layout.develop_dir(tmp_path, init, 0), 0)
        folder.mkdir(parents=True)
        save_file({NAME: np.full((2, 2), float(i), np.float32)}, str(folder / "model.safetensors"))
    w = report.initial_weights(tmp_path, NAME, 0)
    assert list(w) == list(layout.INIT_LABELS.values())
    assert w["NoConnectome"].tolist() == [[2.0, 2.0], [2.0, 2.0]]
    with pytest.raises(KeyError, match="no tensor"):
        report.initial_weights(tmp_path, "lm_head.weight", 0)


def test_corpus_token_counts_bincounts_the_split(monkeypatch):
    import connectome_lib.data as data

    monkeypatch.setattr(data, "load_corpus_tokens", lambda split, cfg, progress=True: np.array([0, 2, 2], np.uint16))
    assert report.corpus_token_counts(None, "inner", 4).tolist() == [1, 0, 2, 0]
    with pytest.raises(ValueError, match="vocab size 2"):
        report.corpus_token_counts(None, "inner", 2)


# ------------------------------------------------------------------------------ takeaways
def _summary(task, metric, values):
    return pd.DataFrame([{"label": l, "task": task, "metric": metric, "mean": m, "se": se, "n_seeds": 3}
                         for l, (m, se) in values.items()])


def test_ordering_holds_when_separated_and_not_when_reversed():
    good = report._ordering({"Connectome": (3.5, 0.01), "NoConnectome": (3.9, 0.01), "RandomConnectome": (5.4, 0.01)},
                            higher=False, what="loss")
    assert "**holds** in the means" in good and "decided by the paired tests" in good
    bad = report._ordering({"Connectome": (5.0, 0.01), "NoConnectome": (3.9, 0.01), "RandomConnectome": (5.4, 0.01)},
                           higher=False, what="loss")
    assert "**does not hold**" in bad
    close = report._ordering({"Connectome": (0.30, 0.02), "NoConnectome": (0.29, 0.02)}, higher=True, what="r")
    assert "**holds**" in close and "standard error over seeds" in close
    one_seed = report._ordering({"Connectome": (0.3, float("nan")), "NoConnectome": (0.2, float("nan"))},
                                higher=True, what="r")
    assert "one seed" in one_seed


def test_takeaway_data_quotes_sizes_ratio_and_entropy():
    corpora = pd.DataFrame({"split": ["outer", "inner", "val"], "tokens": [1000, 100, 50]})
    md = report.takeaway_data(corpora, 1024, 5.4321, "smoke")
    assert "**smoke**" in md and "1,000" in md and "10.0×" in md and "5.432" in md


def test_takeaway_evolution_holds_or_not():
    s = pd.DataFrame({"generation": [0, 1, 2], "val_loss": [4.0, 4.05, 4.1], "distinct_tokens": [10, 10, 12]})
    assert "**holds**" in report.takeaway_evolution(s, 0.64, "cpu")
    s["val_loss"] = [4.0, 4.5, 5.0]
    md = report.takeaway_evolution(s, 0.64, "cpu")
    assert "**does not hold**" in md and "+25.0%" in md and "64.0%" in md
    assert "No finished generation" in report.takeaway_evolution(pd.DataFrame(), 1.0, "cpu")


def test_takeaway_development_flags_models_above_unigram():
    final = pd.DataFrame({"label": ["Connectome", "Connectome", "NoConnectome", "NoConnectome", "RandomConnectome",
                                    "RandomConnectome"], "val_loss": [5.0, 5.1, 5.5, 5.6, 6.5, 6.6]})
    md = report.takeaway_development(final, 6.0, "smoke")
    assert "**holds**" in md and "RandomConnectome is still at or above the unigram entropy" in md
    md = report.takeaway_development(final, 7.0, "smoke")
    assert "Every model type is below" in md
    # the learning gate: NoConnectome's mean (5.55) at least 1.5 nats below the unigram entropy
    assert "**Learning gate not met:** NoConnectome ends 1.45 nats" in report.takeaway_development(final, 7.0, "x")
    assert "**Learning gate met:** NoConnectome ends 1.55 nats" in report.takeaway_development(final, 7.1, "x")


def test_learning_gate_measures_the_dense_models_distance_to_unigram():
    final = pd.DataFrame({"label": ["NoConnectome", "NoConnectome", "Connectome"], "val_loss": [4.0, 4.2, 9.0]})
    g = report.learning_gate(final, 5.6)
    assert g["gap"] == pytest.approx(1.5) and g["met"] is True and g["gate"] == report.LEARNING_GATE_NATS
    assert report.learning_gate(final, 5.5)["met"] is False
    assert report.learning_gate(final[final.label == "Connectome"], 5.5)["met"] is None


def test_takeaway_controls_checks_chance_overlap_and_flips():
    flips = pd.DataFrame({"generation": [1, 2], "sign_flips": [0.02, 0.05]})
    d = 0.5
    md = report.takeaway_controls(d, d / (2 - d), flips, "cpu")
    assert "**at chance**" in md and "largely inherited" in md
    assert "**not at chance**" in report.takeaway_controls(d, 0.9, flips.assign(sign_flips=0.4), "cpu")


def test_takeaway_nlp_says_when_no_model_beats_chance():
    s = pd.concat([_summary("mmlu", "acc", {"Connectome": (0.25, 0.01), "NoConnectome": (0.24, 0.01)}),
                   _summary("blimp", "acc", {"Connectome": (0.70, 0.01), "NoConnectome": (0.60, 0.01)})])
    md = report.takeaway_nlp(s, "smoke")
    assert "No model is clearly above chance (0.25)" in md
    assert "Above chance (0.5) by more than two standard errors: Connectome, NoConnectome" in md


def test_takeaway_behaviour_and_brain_compare_with_the_strongest_baseline():
    s = _summary("futrell2018", "r", {"Connectome": (0.30, 0.01), "NoConnectome": (0.20, 0.01)})
    b = pd.Series({"untrained/futrell2018/r": 0.25, "rt/r_n_chars": 0.35, "rt/r_n_tokens": 0.1})
    md = report.takeaway_behaviour(s, b, "cpu")
    assert "word length in characters (r = 0.350)" in md and "No trained model exceeds it" in md
    s = _summary("tuckute2024", "r_best", {"Connectome": (0.30, 0.01), "RandomConnectome": (0.10, 0.01)})
    md = report.takeaway_brain(s, pd.Series({"brain/r_length": 0.2, "untrained/tuckute2024/r_best": 0.15}), "cpu")
    assert "sentence length (r = 0.200)" in md and "Connectome exceeds it" in md and "**holds**" in md


def test_learning_curves_against_tokens_with_a_baseline_line():
    import matplotlib

    matplotlib.use("Agg")
    from connectome_lib import plots

    curves = pd.DataFrame({"label": ["Connectome"] * 4, "seed": [0, 0, 1, 1], "iteration": [0, 1, 0, 1],
                           "tokens": [0, 512, 0, 512], "val_loss": [7.0, 6.0, 7.2, 6.2]})
    fig = plots.learning_curves(curves, x="tokens", baselines={"unigram entropy": 6.5, "missing": None})
    ax = fig.axes[0]
    assert ax.get_xlabel() == "inner-loop tokens seen"
    flat = [l for l in ax.get_lines() if len(set(l.get_ydata())) == 1 and l.get_label() == "unigram entropy"]
    assert len(flat) == 1 and flat[0].get_ydata()[0] == 6.5
    assert "missing" not in [t.get_text() for t in ax.get_legend().get_texts()]


def test_ordering_marks_ties_and_behaviour_reports_the_partial_r():
    tie = report._ordering({"Connectome": (0.25, 0.01), "RandomConnectome": (0.25, 0.0)}, higher=True, what="acc")
    assert "Connectome (0.250 ± 0.010) = RandomConnectome (0.250)" in tie
    s = pd.concat([_summary("futrell2018", "r", {"Connectome": (0.30, 0.01)}),
                   _summary("futrell2018", "r_partial_length", {"Connectome": (0.10, 0.01), "NoConnectome": (0.12, 0.01)})])
    md = report.takeaway_behaviour(s, pd.Series(dtype=float), "cpu")
    assert "r with word length partialled out" in md and "NoConnectome (0.120 ± 0.010)" in md


def test_language_unit_tables_reads_each_model_types_first_seed(tmp_path):
    tables = layout.evals_dir(tmp_path) / "tables"
    tables.mkdir(parents=True)
    final = []
    for init, label in (("connectome", "Connectome"), ("dense", "NoConnectome")):
        for seed in (1, 2):
            model = f"{init}_s{seed}"
            pd.DataFrame({"layer": [1, 2], "unit": [0, 0], "t": [float(seed), -1.0]}).to_csv(
                tables / f"{model}_iter000800_language_units.csv", index=False)
            final.append({"model": model, "init": init, "label": label, "seed": seed, "iteration": 800,
                          "task": "language_units", "metric": "r_top1pct", "value": 0.1, "n": 10})
    final = pd.DataFrame(final)
    t = report.language_unit_tables(tmp_path, final)
    assert set(t["label"]) == {"Connectome", "NoConnectome"} and set(t["seed"]) == {1}
    assert t["t"].tolist() == [1.0, -1.0, 1.0, -1.0]
    assert set(report.language_unit_tables(tmp_path, final, seed=2)["t"]) == {2.0, -1.0}
    assert report.language_unit_tables(tmp_path, final[final.task == "other"]).empty
    (tables / "dense_s1_iter000800_language_units.csv").unlink()
    with pytest.raises(FileNotFoundError, match="dense_s1"):
        report.language_unit_tables(tmp_path, final)
