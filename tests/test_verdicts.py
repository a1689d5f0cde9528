"""Verdicts: per-item outcomes from the evaluation's tables, paired tests, plain-words claims."""

import numpy as np
import pandas as pd

from connectome_lib.registry import CLAIM_MEASURES
from connectome_lib.verdicts import claim_summary, item_outcomes, scorecard_frame, verdict_markdown, verdict_table


def _write_run(tmp_path, acc, n_items=400, seeds=(0, 1, 2)):
    """A fake run: HellaSwag per-item tables whose accuracy per model type is ``acc``. Model types
    with the same accuracy get the same items right but for a 5 % of items reshuffled, so that
    they are truly indistinguishable (independent draws would differ by sampling noise)."""
    rng = np.random.default_rng(0)
    draws = {}
    tables = tmp_path / "evals" / "tables"
    tables.mkdir(parents=True)
    rows = []
    inits = {"Connectome": "connectome", "RandomConnectome": "random", "NoConnectome": "dense"}
    for label, p in acc.items():
        for s in seeds:
            model = f"{inits[label]}_s{s}"
            if (p, s) not in draws:
                draws[(p, s)] = (rng.random(n_items) < p).astype(float)
            correct = draws[(p, s)].copy()
            swap = rng.choice(n_items, size=n_items // 20, replace=False)
            correct[swap] = rng.permutation(correct[swap])
            pd.DataFrame({"item": np.arange(n_items), "correct_acc_norm_chars": correct}).to_csv(
                tables / f"{model}_iter000100_hellaswag.csv", index=False)
            # an earlier checkpoint must be ignored (only final models count)
            pd.DataFrame({"item": np.arange(n_items), "correct_acc_norm_chars": 1.0}).to_csv(
                tables / f"{model}_iter000050_hellaswag.csv", index=False)
            for it in (50, 100):
                rows.append(dict(model=model, init=inits[label], label=label, seed=s, iteration=it,
                                 task="hellaswag", metric="acc_norm", value=correct.mean(), n=n_items))
    return pd.DataFrame(rows)


def test_item_outcomes_take_the_final_models_only(tmp_path):
    results = _write_run(tmp_path, {"Connectome": 0.5, "NoConnectome": 0.5, "RandomConnectome": 0.5})
    items = item_outcomes(tmp_path, results)
    assert set(items["measure"]) == {"HellaSwag acc_norm"}
    assert len(items) == 3 * 3 * 400 and items["value"].mean() < 0.9  # not the all-correct checkpoint


def test_planted_differences_give_the_right_verdicts_and_claims(tmp_path):
    results = _write_run(tmp_path, {"Connectome": 0.62, "NoConnectome": 0.50, "RandomConnectome": 0.50}, n_items=600)
    items = item_outcomes(tmp_path, results)
    v = verdict_table(items)
    row = v[(v["a"] == "Connectome") & (v["b"] == "NoConnectome")].iloc[0]
    assert row["verdict"] == "better" and row["agrees_with_paper"] == "yes"
    same = v[(v["a"] == "NoConnectome") & (v["b"] == "RandomConnectome")].iloc[0]
    assert same["verdict"] == "indistinguishable" and same["agrees_with_paper"] == "unresolved"
    claims = claim_summary(v)
    assert set(claims["status"]) == {"holds"} and (claims["effect"] > 0.05).all()
    text = verdict_markdown(claims, n_seeds=3, profile="test")
    assert "Holds at this scale" in text and "Does not hold" not in text


def test_a_worse_connectome_is_reported_as_not_holding(tmp_path):
    results = _write_run(tmp_path, {"Connectome": 0.40, "NoConnectome": 0.55, "RandomConnectome": 0.41}, n_items=600)
    claims = claim_summary(verdict_table(item_outcomes(tmp_path, results)))
    status = dict(zip(claims["claim"], claims["status"]))
    assert status["Connectome ≥ NoConnectome"] == "does not hold"
    assert status["Connectome ≥ RandomConnectome"] == "cannot be told apart"
    assert "no difference larger than" in verdict_markdown(claims, 3, "test")
    card = scorecard_frame(item_outcomes(tmp_path, results))
    assert set(card["paper_direction"]) == {"higher"} and len(card) == 3
    assert (card["ci_low"] <= card["mean"]).all() and (card["mean"] <= card["ci_high"]).all()


def test_claim_measures_are_named_once_and_keep_their_names():
    names = [m.claim for m in CLAIM_MEASURES]
    assert len(set(names)) == len(names)
    # committed results (verdicts.csv, claims.csv) and the nbval references use these names
    assert names == ["validation loss", "HellaSwag acc_norm", "MMLU acc", "BLiMP acc", "reading times r"]
    assert all(m.item_column for m in CLAIM_MEASURES)


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
