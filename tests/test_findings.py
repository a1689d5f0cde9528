"""The tables and texts of the Findings page (connectome_lib.findings), on a small exported
result folder written here."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from connectome_lib import findings, registry
from connectome_lib.paper_numbers import paper_results

LABELS = list(registry.LABELS)


def _summary_rows():
    rows = []
    for i, label in enumerate(LABELS):
        for task, metric, mean in [("hellaswag", "acc_norm", 0.26), ("mmlu", "acc", 0.24), ("blimp", "acc", 0.6),
                                   ("perplexity", "loss", 5.0), ("futrell2018", "r", 0.3),
                                   ("futrell2018", "r_partial_length", 0.1), ("language_units", "r_top1pct", 0.2),
                                   ("language_units", "r_top10pct", 0.21), ("tuckute2024", "r_best", 0.25)]:
            rows.append({"label": label, "task": task, "metric": metric, "mean": mean + i / 100, "se": 0.001,
                         "n_seeds": 2})
        rows.append({"label": label, "task": "mmlu", "metric": "degenerate",
                     "mean": 1.0 if label == "NoConnectome" else 0.0, "se": 0.0, "n_seeds": 2})
    return pd.DataFrame(rows)


def _evals():
    rows = []
    for seed in (0, 1):
        for metric, v in [("untrained/futrell2018/r", 0.2), ("rt/r_n_tokens", 0.25), ("rt/r_n_chars", 0.3),
                          ("brain/r_length", 0.1234), ("untrained/tuckute2024/r_best", 0.15),
                          ("untrained/tuckute2024/r_layer2", 0.1), ("untrained/tuckute2024/r_layer10", 0.12)]:
            rows.append({"model": f"untrained_s{seed}", "init": "untrained", "label": "Untrained", "seed": seed,
                         "iteration": 0, "task": "baselines", "metric": metric, "value": v + seed / 100, "n": 10})
        for label, init in zip(LABELS, registry.INITS):
            for it in (0, 100):
                rows.append({"model": f"{init}_s{seed}", "init": init, "label": label, "seed": seed, "iteration": it,
                             "task": "futrell2018", "metric": "r", "value": 0.3, "n": 10})
    return pd.DataFrame(rows)


def _provenance(profile="smoke"):
    from connectome_lib.config import load_profile

    return {"profile": profile, "description": "tiny", "hardware": "cpu", "date": "2025-01-01", "commit": "abc1234",
            "torch": "2", "transformers": "4", "config": load_profile(profile).to_dict()}


@pytest.fixture
def results_dir(tmp_path):
    (tmp_path / "provenance.json").write_text(json.dumps(_provenance()))
    _summary_rows().to_csv(tmp_path / "summary.csv", index=False)
    _evals().to_csv(tmp_path / "eval_results.csv", index=False)
    return tmp_path


def test_load_reads_the_results_and_averages_the_baselines(results_dir):
    d = findings.load(results_dir)
    assert d.profile == "smoke" and d.n_seeds == len(d.config["develop"]["seeds"])
    assert d.claims.empty and d.items.empty
    assert d.baselines["brain/r_length"] == pytest.approx(0.1284)
    assert set(d.paper["model"]) == set(registry.PAPER_LABELS)


def test_provenance_and_timings(results_dir):
    prov = _provenance()
    text = findings.provenance_markdown(prov)
    assert "**These numbers come from the `smoke` profile** (tiny)" in text and "commit `abc1234`" in text
    assert findings.timings_markdown(results_dir) is None
    (results_dir / "timings.json").write_text(json.dumps({
        "command": "bash scripts/reproduce.sh", "commit": "0123456789", "total_seconds_including_setup_and_book": 600,
        "stage_seconds": {"data": 60, "evolution": 120}}))
    t = findings.timings_markdown(results_dir)
    assert t.startswith("Wall time of `bash scripts/reproduce.sh` at commit `0123456`: **10 min** in all")
    assert "data 1.0 min, evolution 2.0 min." in t and "again" not in t


def test_verdict_notes_without_per_item_results(results_dir):
    d = findings.load(results_dir)
    notes = findings.verdict_notes(d)
    assert len(notes) == 2  # the current profile: no drift warning
    assert notes[0].startswith(":::{caution}") and "NoConnectome on mmlu (100% of seeds)" in notes[0]
    assert "no claim of the paper is confirmed or refuted" in notes[1]
    assert findings.claim_details(d.claims) is None and findings.calibration_table(d.claims) is None


def test_drift_warning_names_the_changed_settings():
    prov = _provenance()
    assert findings.drift_warning(prov) is None
    prov["config"]["model"]["n_layer"] = 99
    w = findings.drift_warning(prov)
    assert w.startswith(":::{warning}") and "`model.n_layer`" in w


def test_verdict_box_details_and_calibration_with_claims():
    claims = pd.DataFrame([{"measure": "validation loss", "claim": "Connectome ≥ NoConnectome",
                            "control": "NoConnectome",
                            "unit_a": "lineage", "n_a": 4, "unit_b": "seed", "n_b": 8, "mean_a": 4.9, "mean_b": 5.0,
                            "effect": -0.1, "ci_low": -0.15, "ci_high": -0.05, "p": 0.004, "min_p": 0.00404,
                            "excluded_beyond": 0.15, "placebo_rate": 0.0, "placebo_splits": 35,
                            "placebo_can_fire": True, "testable": "", "status": "holds", "higher_is_better": False}])
    box = findings.verdict_box(claims, "cpu")
    assert box.startswith(":::{admonition} What holds at this scale") and "**Holds**" in box
    assert "4 lineages vs 8 seeds" in box
    t = findings.claim_details(claims)
    assert t.index.names == ["measure", "claim"] and t.iloc[0]["verdict"] == "holds"
    cal = findings.calibration_table(claims, n_sim=200)
    assert cal.iloc[0, 0] <= 0.05 + 2 * (0.05 * 0.95 / 200) ** 0.5


def test_placebo_spread_and_tokens_texts():
    placebo = pd.DataFrame([{"measure": "validation loss", "label": "NoConnectome", "units": 8, "splits": 35,
                             "rejections": 0, "rate": 0.0, "can_fire": True, "fires": False},
                            {"measure": "validation loss", "label": "Connectome", "units": 4, "splits": 3,
                             "rejections": 0, "rate": 0.0, "can_fire": False, "fires": False}])
    text = findings.placebo_markdown(placebo, pd.DataFrame())
    assert "fires for none" in text and "silent by construction" in text
    values = pd.DataFrame({"measure": "validation loss", "label": ["Connectome"] * 2 + ["NoConnectome"] * 2,
                           "model": ["a", "b", "c", "d"], "seed": 0, "unit": ["c0", "c1", "s0", "s1"],
                           "value": [4.0, 4.2, 5.0, 5.0]})
    assert "0.1414 (Connectome)" in findings.spread_markdown(values, pd.DataFrame())
    assert list(findings.lineage_losses(values).index) == ["c0", "c1", "s0", "s1"]
    t = pd.DataFrame([{"unit": "c0", "tokens": 50.0, "fraction": 0.5}, {"unit": "c1", "tokens": 70.0, "fraction": 0.7},
                      {"unit": "mean", "tokens": float("nan"), "fraction": 0.6, "ci_low": 0.4, "ci_high": 0.8}])
    assert "c0 50%, c1 70%" in findings.tokens_to_target_markdown(t.assign(target=4.5))


def test_nlp_table_takes_chance_from_the_registry_and_marks_degenerate_models():
    t = findings.nlp_table(_summary_rows(), paper_results())
    assert t.loc[("blimp acc", "Connectome"), "chance"] == registry.chance_level("blimp", "acc") == 0.5
    assert t.loc[("mmlu acc", "Connectome"), "chance"] == 0.25
    assert t.loc[("hellaswag acc_norm", "Connectome"), "paper"] == "0.2764 ± 0.0008"
    assert t.loc[("blimp acc", "Connectome"), "paper"] == "—"  # not in the paper
    assert t.loc[("mmlu acc", "NoConnectome"), "ours"].startswith("degenerate (0.2700 ± 0.0010")  # 4th type
    assert t.loc[("mmlu acc", "Connectome"), "ours"] == "0.2400 ± 0.0010"
    assert list(t.index.get_level_values("model")[:4]) == LABELS
    assert t.loc[("mmlu acc", "RowMatchedRandom"), "paper"] == "—"  # ours, not the paper's


def test_present_measures_and_chance_lines():
    s = _summary_rows()
    assert findings.present_measures(s[s.task != "blimp"], findings.NLP_MEASURES) == [("hellaswag", "acc_norm"),
                                                                                      ("mmlu", "acc")]
    assert findings.chance_lines(findings.NLP_MEASURES + (("futrell2018", "r"),)) == {
        ("hellaswag", "acc_norm"): 0.25, ("mmlu", "acc"): 0.25, ("blimp", "acc"): 0.5}


def test_reading_time_tables(results_dir):
    d = findings.load(results_dir)
    t = findings.reading_time_table(d.summary, d.paper)
    assert list(t.index) == LABELS
    assert list(t.columns) == ["r", "r_partial_length", "paper r (final)"]
    assert t.loc["Connectome", "paper r (final)"] == 0.34
    b = findings.reading_time_baselines(d.baselines)
    assert list(b.index) == list(findings.READING_TIME_BASELINES.values())
    assert b.loc["tokens per word", "r"] == 0.255 and np.isnan(b.loc["unigram log-frequency", "r"])
    curves = findings.paper_reading_time_curves(d.paper)
    assert list(curves.columns) == list(registry.PAPER_LABELS) and 2000 in curves.index
    assert set(findings.reading_time_curves(d.evals)["iteration"]) == {0, 100}
    assert findings.paper_reading_times(d.paper)["iteration"].dtype == int


def test_brain_and_language_units(results_dir):
    d = findings.load(results_dir)
    assert findings.sentence_length_r(d.baselines) == "0.128"
    assert findings.sentence_length_r(pd.Series(dtype=float)) == "nan"
    p = findings.paper_brain_by_layer(d.paper)
    assert p["layer"].dtype == int and set(p["layer"]) == set(range(13))
    t = findings.language_units_table(d.summary, d.paper)
    assert list(t.columns) == ["r_top10pct", "r_top1pct", "paper"] and list(t.index) == LABELS
    assert t.loc["Connectome", "paper"] == "0.235 ± 0.015"
    assert findings.untrained_best_layer(d.baselines) == {("language_units", "r_top1pct"): pytest.approx(0.155)}


def test_final_numbers_shows_every_declared_measure_the_run_has():
    t = findings.final_numbers(_summary_rows())
    assert list(t.index) == [f"{task} {metric}" for task, metric in findings.FINAL_MEASURES]
    assert list(t.columns) == LABELS and t.loc["perplexity loss", "Connectome"] == "5.0000 ± 0.0010"
    with pytest.raises(KeyError, match="registry"):
        findings.final_numbers(_summary_rows(), measures=[("nosuch", "metric")])


def test_at_a_glance_is_generated_from_the_results(results_dir):
    d = findings.load(results_dir)
    box = findings.at_a_glance(d)
    cfg = d.config
    assert box.startswith(":::{admonition} At a glance") and box.endswith(":::")
    # what was run, from the recorded profile: the smoke model's size and the inner-loop tokens
    assert f"{cfg['model']['n_layer']} layers × {cfg['model']['n_embd']}" in box
    tokens = cfg["develop"]["train"]["iters"] * cfg["develop"]["train"]["batch_size"] * cfg["model"]["block_size"]
    assert f"{tokens / 1e3:.3g}k tokens per model" in box
    assert "predates the tests across units" in box
    d.claims = pd.DataFrame([
        {"measure": "validation loss", "claim": "Connectome ≥ NoConnectome", "control": "NoConnectome",
         "unit_a": "lineage", "n_a": 4, "unit_b": "seed", "n_b": 8, "status": "holds"},
        {"measure": "MMLU acc", "claim": "Connectome ≥ NoConnectome", "control": "NoConnectome", "unit_a": "lineage",
         "n_a": 4, "unit_b": "seed", "n_b": 8, "status": "not testable at this scale"},
    ])
    box = findings.at_a_glance(d)
    assert "**At this scale the paper's claim holds against NoConnectome**" in box
    assert "Against NoConnectome: holds on 1 (“validation loss”); not testable on 1." in box
    assert "Unit of replication" in box


def test_parameter_count_matches_a_built_model():
    from connectome_lib.config import load_profile
    from connectome_lib.estimate import parameter_count
    from connectome_lib.model import count_parameters
    from connectome_lib.stages import build_model

    p = load_profile("smoke")
    assert parameter_count(p.model) == count_parameters(build_model(p, 0))


def test_learning_gate_markdown_reads_the_exported_record(results_dir):
    from connectome_lib.export import learning_gate_record

    d = findings.load(results_dir)
    assert "not recorded" in findings.learning_gate_markdown(d)
    rec = learning_gate_record(d.summary, np.array([0, 1, 2, 3] * 10))  # 4 equiprobable tokens: ln 4
    assert rec["unigram_entropy"] == pytest.approx(np.log(4))
    nocon = d.summary[(d.summary["label"] == "NoConnectome") & (d.summary["metric"] == "loss")]["mean"].item()
    assert rec["final_loss"] == pytest.approx(nocon) and rec["met"] is False  # 5.02 nats is above ln 4
    d.provenance["learning_gate"] = rec
    text = findings.learning_gate_markdown(d)
    assert f"{nocon:.3f} nats/token" in text and "misses the gate" in text


def test_calibration_markdown_judges_rates_with_the_simulation_error():
    t = pd.DataFrame({"false-positive rate under the null": [0.0375, 0.0575]},
                     index=pd.MultiIndex.from_tuples([(4, 4), (4, 8)], names=["Connectome units", "control units"]))
    t.attrs["n_sim"] = 400
    text = findings.calibration_markdown(t)
    assert "4 vs 8 units: 0.058" in text and "standard error is about 0.011" in text
    assert "consistent with a test that rejects a true null at most 5%" in text
    t.iloc[1, 0] = 0.09  # beyond 0.05 + 2 x 0.011
    assert "1 design(s) reject more often than 5% allows** (4 vs 8)" in findings.calibration_markdown(t)
    assert findings.calibration_markdown(None) is None


def test_loss_definitions_name_both_losses_with_their_windows(results_dir):
    """The learning-curve loss and the final validation loss are named and given side by side."""
    from types import SimpleNamespace

    d = findings.load(results_dir)
    assert findings.loss_definitions_markdown(d) is None  # no learning curves exported
    curves = pd.DataFrame([{"label": label, "unit": "c0", "iteration": it, "val_loss": 6.0 - it / 100}
                           for label in ("Connectome", "NoConnectome") for it in (0, 100)])
    d.training_curves = curves
    text = findings.loss_definitions_markdown(d)
    windows = registry.learning_curve_windows(SimpleNamespace(**d.config["develop"]["train"]))
    assert f"*{registry.LEARNING_CURVE_LOSS}*" in text and f"*{registry.FINAL_LOSS}*" in text
    assert f"first {windows:,} windows" in text
    final = d.summary[(d.summary["label"] == "Connectome") & (d.summary["metric"] == "loss")
                      & (d.summary["task"] == "perplexity")]["mean"].item()
    assert f"Connectome 5.000 and {final:.3f}" in text
