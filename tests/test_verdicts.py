"""Verdicts: per-model values with their units, tests across units, placebo, testability."""

import numpy as np
import pandas as pd

from connectome_lib.registry import CLAIM_MEASURES
from connectome_lib.verdicts import (
    claim_table,
    item_outcomes,
    model_values,
    placebo_summary,
    scorecard_frame,
    verdict_markdown,
)

INITS = {"Connectome": "connectome", "RandomConnectome": "random", "RowMatchedRandom": "rowmatched",
         "NoConnectome": "dense"}


def _run(loss: dict[str, float], lineages=4, dense_seeds=8, lineage_sd=0.01, seed_sd=0.01, rng_seed=0):
    """Evaluation rows and units of a fake run: every model's final validation loss is its
    type's ``loss`` plus a lineage effect (the types that inherit a connectome) and seed noise."""
    rng = np.random.default_rng(rng_seed)
    rows, units = [], []
    lineage_effect = rng.normal(0, lineage_sd, lineages)
    for label, init in INITS.items():
        seeds = range(dense_seeds) if init == "dense" else range(lineages)
        for s in seeds:
            unit = f"s{s}" if init == "dense" else f"c{s}"
            v = loss[label] + (0 if init == "dense" else lineage_effect[s]) + rng.normal(0, seed_sd)
            model = f"{init}_s{s}"
            units.append({"model": model, "label": label, "init": init, "seed": s, "lineage": None, "unit": unit})
            for it, extra in ((50, 0.5), (100, 0.0)):
                rows.append(dict(model=model, init=init, label=label, seed=s, iteration=it, task="perplexity",
                                 metric="loss", value=v + extra, n=100))
    return pd.DataFrame(rows), pd.DataFrame(units)


def test_model_values_take_the_final_value_and_the_unit():
    res, units = _run({k: 5.0 for k in INITS})
    v = model_values(res, units)
    assert set(v["measure"]) == {"validation loss"} and len(v) == 4 * 3 + 8
    assert v["value"].max() < 5.2  # the final iteration, not the +0.5 earlier one
    assert set(v.loc[v["label"] == "Connectome", "unit"]) == {"c0", "c1", "c2", "c3"}


def test_a_planted_difference_holds_and_equal_types_cannot_be_told_apart():
    res, units = _run({"Connectome": 4.9, "RandomConnectome": 5.0, "RowMatchedRandom": 4.9, "NoConnectome": 5.0})
    claims = claim_table(model_values(res, units)).set_index("control")
    assert claims.loc["NoConnectome", "status"] == "holds"  # lower loss is better
    assert claims.loc["RandomConnectome", "status"] == "holds"
    assert claims.loc["RowMatchedRandom", "status"] == "cannot be told apart"
    assert claims.loc["NoConnectome", "unit_a"] == "lineage" and claims.loc["NoConnectome", "unit_b"] == "seed"
    assert (claims["n_a"] == 4).all() and claims.loc["NoConnectome", "n_b"] == 8
    assert claims.loc["NoConnectome", "p"] <= 0.05 < claims.loc["RowMatchedRandom", "p"]
    assert claims.loc["NoConnectome", "effect"] < 0 and claims.loc["NoConnectome", "ci_high"] < 0
    text = verdict_markdown(claims.reset_index(), "test")
    assert "Holds" in text and "excluded (95 %)" in text and "4 lineages vs 8 seeds" in text


def test_a_worse_connectome_does_not_hold():
    res, units = _run({"Connectome": 5.1, "RandomConnectome": 5.0, "RowMatchedRandom": 5.0, "NoConnectome": 5.0})
    status = claim_table(model_values(res, units)).set_index("control")["status"]
    assert status["NoConnectome"] == "does not hold"


def test_too_few_units_are_not_testable_whatever_the_effect():
    res, units = _run({"Connectome": 4.0, "RandomConnectome": 5.0, "RowMatchedRandom": 5.0, "NoConnectome": 5.0},
                      lineages=2, dense_seeds=2)
    claims = claim_table(model_values(res, units))
    assert set(claims["status"]) == {"not testable at this scale"}
    assert claims["testable"].str.contains("no p-value can reach").all()


def test_the_placebo_splits_noconnectome_seeds_and_is_quiet_under_the_null():
    res, units = _run({k: 5.0 for k in INITS}, dense_seeds=8)
    p = placebo_summary(model_values(res, units)).set_index("label")
    assert p.loc["NoConnectome", "units"] == 8 and p.loc["NoConnectome", "splits"] == 35  # C(8,4) / 2
    assert not bool(p.loc["NoConnectome", "fires"])
    # 4 + 4 seeds: only the split along two clusters can reject (1 of 35 < 5 %): silent by construction
    assert not bool(p.loc["NoConnectome", "can_fire"]) and not bool(p.loc["Connectome", "can_fire"])


def test_claims_on_the_null_fire_at_most_at_the_nominal_rate():
    """Over many simulated runs with no difference, the claims table rejects in <= 5 % of tests."""
    rejections, tests = 0, 0
    for k in range(60):
        res, units = _run({k2: 5.0 for k2 in INITS}, rng_seed=100 + k)
        claims = claim_table(model_values(res, units))
        rejections += int(claims["status"].isin(["holds", "does not hold"]).sum())
        tests += len(claims)
    assert rejections / tests <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / tests)


def test_degenerate_models_and_measures_at_chance_are_not_testable():
    rows, units = [], []
    for label, init in INITS.items():
        for s in range(4):
            model = f"{init}_s{s}"
            units.append({"model": model, "label": label, "init": init, "seed": s, "lineage": s,
                          "unit": f"s{s}" if init == "dense" else f"c{s}"})
            rows.append(dict(model=model, init=init, label=label, seed=s, iteration=10, task="hellaswag",
                             metric="acc_norm_chars", value=0.25 + 0.001 * (s - 1.5), n=100))
            rows.append(dict(model=model, init=init, label=label, seed=s, iteration=10, task="mmlu",
                             metric="acc", value=0.6 if init == "connectome" else 0.3, n=100))
    values = model_values(pd.DataFrame(rows), pd.DataFrame(units))
    degenerate = pd.DataFrame([{"label": "NoConnectome", "task": "mmlu", "mean": 1.0}])
    claims = claim_table(values, degenerate).set_index(["measure", "control"])
    assert claims.loc[("HellaSwag acc_norm", "NoConnectome"), "testable"].startswith("no model type beats chance")
    assert claims.loc[("MMLU acc", "NoConnectome"), "testable"].startswith("degenerate")
    assert claims.loc[("MMLU acc", "RandomConnectome"), "testable"] == ""  # 0.6 vs 0.3: well beyond chance
    assert (claims["status"].loc["HellaSwag acc_norm"] == "not testable at this scale").all()


def _write_items(tmp_path, n_items=50):
    tables = tmp_path / "evals" / "tables"
    tables.mkdir(parents=True)
    rows = []
    for label, init in INITS.items():
        model = f"{init}_s0"
        for it, value in ((50, 1.0), (100, 0.5)):
            pd.DataFrame({"item": np.arange(n_items), "correct_acc_norm_chars": value}).to_csv(
                tables / f"{model}_iter{it:06d}_hellaswag.csv", index=False)
            rows.append(dict(model=model, init=init, label=label, seed=0, iteration=it, task="hellaswag",
                             metric="acc_norm", value=value, n=n_items))
    return pd.DataFrame(rows)


def test_item_outcomes_take_the_final_models_only(tmp_path):
    items = item_outcomes(tmp_path, _write_items(tmp_path))
    assert set(items["measure"]) == {"HellaSwag acc_norm"} and len(items) == 4 * 50
    assert items["value"].mean() == 0.5 and set(items["model"]) == {f"{i}_s0" for i in INITS.values()}
    card = scorecard_frame(items)
    assert set(card["paper_direction"]) == {"higher"} and len(card) == 4


def test_claim_measures_are_named_once_and_keep_their_names():
    names = [m.claim for m in CLAIM_MEASURES]
    assert len(set(names)) == len(names)
    # committed results (claims.csv) and the nbval references use these names
    assert names == ["validation loss", "HellaSwag acc_norm", "MMLU acc", "BLiMP acc", "reading times r",
                     "reading times r, length partialled", "reading times r over training"]


def _ablation_items(shift: dict[str, float], n_windows: int = 200, seeds=(0, 1, 2)) -> pd.DataFrame:
    """Per-window losses: the Connectome's plus a per-model shift and window noise."""
    rng = np.random.default_rng(0)
    base = {s: rng.normal(5.0, 0.5, n_windows) for s in seeds}
    rows = []
    for model, d in {"connectome": 0.0, **shift}.items():
        for s in seeds:
            loss = base[s] + d + (rng.normal(0, 0.05, n_windows) if model != "connectome" else 0)
            rows.append(pd.DataFrame({"model": model, "seed": s, "item": np.arange(n_windows), "loss": loss}))
    return pd.concat(rows, ignore_index=True)


def _ablation_table(items: pd.DataFrame) -> pd.DataFrame:
    per_seed = items.groupby(["model", "seed"], sort=False)["loss"].mean().groupby(level=0, sort=False)
    return pd.DataFrame({"model": list(per_seed.groups), "mean": per_seed.mean().to_numpy(),
                         "se": per_seed.sem().to_numpy()})


def test_ablation_takeaway_names_the_component_a_paired_test_finds():
    from connectome_lib.ablation import ablation_tests
    from connectome_lib.takeaways import takeaway_ablations

    items = _ablation_items({"random": 0.4, "random_wte": 0.0, "random_blocks": 0.01, "random_lm_head": 0.35,
                             "only_lm_head": 0.05})
    tests = ablation_tests(items)
    assert tests.set_index("a").loc["random_lm_head", "verdict"] == "worse"
    assert tests.set_index("a").loc["random_wte", "verdict"] == "indistinguishable"
    text = takeaway_ablations(_ablation_table(items), tests)
    assert "600 validation windows" not in text and "200 validation windows × 3 seed(s)" in text
    assert "The component that matters most at this scale is the **lm head**" in text
    assert "87% of the RandomConnectome gap" in text and "recovering 87% of the gap" in text
    assert "Holm p" in text

    noise = _ablation_items({"random": 0.4, "random_wte": 0.002, "random_blocks": -0.002, "random_lm_head": 0.0})
    assert "cannot place the effect" in takeaway_ablations(_ablation_table(noise), ablation_tests(noise))


def test_ablation_takeaway_without_tests_warns_nothing_and_says_so():
    import warnings

    from connectome_lib.takeaways import takeaway_ablations

    table = pd.DataFrame({"model": ["connectome", "random", "random_wte", "random_blocks", "random_lm_head"],
                          "label": ["Connectome", "RandomConnectome"] + ["ablation"] * 3,
                          "mean": [5.0, 5.4, 5.02, 5.01, 5.35], "se": [np.nan] * 5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would print a machine path on the page
        text = takeaway_ablations(table)
    assert "+0.350" in text and "**lm head**" in text and "none of these differences is tested" in text


def _claims(statuses):
    from connectome_lib.registry import CONTROLS

    return pd.DataFrame([{"measure": f"m{i}", "control": c, "status": st}
                         for c, row in zip(CONTROLS, statuses) for i, st in enumerate(row)])


def test_bottom_line_says_plainly_whether_the_claim_stands():
    from connectome_lib.verdicts import bottom_line

    t, n, c, h, d = "not testable at this scale", "not testable at this scale", "cannot be told apart", "holds", \
        "does not hold"
    assert "can be neither confirmed nor refuted" in bottom_line(_claims([[t, n], [t, n], [t, n]]))
    line = bottom_line(_claims([[c, t], [c, c], [c, t]]))
    assert line.startswith("**At this scale the paper's claim does not hold**")
    line = bottom_line(_claims([[d, c], [h, c], [c, t]]))
    assert "loses to NoConnectome" in line and "does not hold" in line
    line = bottom_line(_claims([[c, t], [h, c], [c, c]]))
    assert line.startswith("**At this scale the paper's claim holds against RandomConnectome** but not against "
                           "NoConnectome and RowMatchedRandom")
    assert "Against RandomConnectome: holds on 1 (“m0”); cannot be told apart on 1 (“m1”)." in line
