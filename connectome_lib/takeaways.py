"""The "What this shows" paragraphs of the stage notebooks, in Markdown, generated from the
numbers they are given.

Every takeaway says plainly when the paper's claim does not hold at this scale. Orderings of
means are described, never tested: whether a difference is real is decided by the tests
across units of replication, lineages and seeds (:mod:`connectome_lib.verdicts`, the Findings page). The tables the
takeaways read come from :mod:`connectome_lib.readers` and :mod:`connectome_lib.analysis`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .registry import PAPER_ORDER, chance_level, higher_is_better, label_of
from .stats import seed_mean_se


def _fmt(mean: float, se: float | None = None, digits: int = 3) -> str:
    s = f"{mean:.{digits}f}"
    if se is not None and np.isfinite(se) and se > 0:
        s += f" ± {se:.{digits}f}"
    return s


def _ordering(stats: dict[str, tuple[float, float]], higher: bool, what: str) -> str:
    """One sentence on whether the *means* follow the paper's ordering (Connectome best, then
    NoConnectome, then RandomConnectome) for ``what``, from each model type's (mean, SE over
    seeds). It tests nothing: whether a difference is real is decided by the tests across
    lineages and seeds (:mod:`connectome_lib.verdicts`, the Findings page), not by seed SEs."""
    present = [m for m in PAPER_ORDER if m in stats and np.isfinite(stats[m][0])]
    if len(present) < 2:
        return f"Fewer than two model types have a value for {what}, so their ordering cannot be checked."
    better = (lambda a, b: a > b) if higher else (lambda a, b: a < b)
    ranked = sorted(present, key=lambda m: -stats[m][0] if higher else stats[m][0])
    listing = f"{ranked[0]} ({_fmt(*stats[ranked[0]])})"
    for a, b in zip(ranked, ranked[1:]):
        op = "=" if stats[a][0] == stats[b][0] else (">" if higher else "<")
        listing += f" {op} {b} ({_fmt(*stats[b])})"
    holds = all(not better(stats[b][0], stats[a][0]) for a, b in zip(present, present[1:]))
    one_seed = not any(np.isfinite(s) and s > 0 for _, s in (stats[m] for m in present))
    # neighbours in the paper's order whose means are closer than one standard error of their
    # difference: their order in the means says nothing
    close = [(a, b) for a, b in zip(present, present[1:])
             if abs(stats[a][0] - stats[b][0]) < math.hypot(np.nan_to_num(stats[a][1]), np.nan_to_num(stats[b][1]))]
    text = f"For {what} ({'higher' if higher else 'lower'} is better): {listing}. "
    text += (f"The means are {'in' if holds else '**not** in'} the paper's order ({', then '.join(PAPER_ORDER)})")
    if one_seed:
        text += "; with one seed there is no standard error."
    else:
        text += " (± standard error over seeds)."
        if close:
            text += (" " + "; ".join(f"{a} and {b}" for a, b in close)
                     + " are less than one standard error of their difference apart, so these means do not order them.")
    return text + (" Whether each difference is real is decided by the tests across lineages and seeds "
                   "(Findings page).")


def _summary_stats(summary_df: pd.DataFrame, task: str, metric: str) -> dict[str, tuple[float, float]]:
    d = summary_df[(summary_df["task"] == task) & (summary_df["metric"] == metric)]
    return {r.label: (float(r.mean), float(r.se)) for r in d.itertuples()}


def _profile_note(profile: str) -> str:
    return f"The numbers come from the **{profile}** profile (named in the set-up output above)."


def takeaway_data(corpora: pd.DataFrame, vocab_size: int, unigram_entropy: float, profile: str) -> str:
    """Stage 1: the corpus sizes, their ratio (the paper: billions of outer tokens, 100M inner)
    and the unigram entropy every later loss is compared with."""
    t = corpora.set_index("split")["tokens"].astype(int)
    lines = [_profile_note(profile)]
    if {"outer", "inner"} <= set(t.index) and t["inner"] > 0:
        lines.append(f"The outer (evolution) corpus holds {t['outer']:,} tokens and the inner (development) corpus "
                     f"{t['inner']:,}: the outer loop sees {t['outer'] / t['inner']:.1f}× more text "
                     "than the inner loop "
                     "(the paper: about 3.7 billion tokens per generation against 100 million).")
    if "val" in t.index:
        lines.append(f"The validation corpus ({t['val']:,} tokens) is held out from both.")
    lines.append(f"With a vocabulary of {vocab_size:,} tokens, the unigram entropy of the validation corpus is "
                 f"**{unigram_entropy:.3f} nats/token**: the loss of a model that knows only token frequencies. "
                 "A validation loss above this line means a model has learned less than the frequencies.")
    return "\n\n".join(lines)


def takeaway_evolution(summary_df: pd.DataFrame, final_density: float, profile: str, tolerance: float = 0.05) -> str:
    """Stage 2: does the validation loss of the pruned generations stay close to the dense
    generation 0 (the paper's observation), within ``tolerance`` (relative)?"""
    if summary_df.empty or "val_loss" not in summary_df:
        return _profile_note(profile) + "\n\nNo finished generation to summarise."
    s = summary_df.sort_values("generation")
    first, last = s.iloc[0], s.iloc[-1]
    rel = (last["val_loss"] - first["val_loss"]) / first["val_loss"]
    lines = [_profile_note(profile),
             f"After {len(s)} generations the connectome keeps **{final_density:.1%}** of the weights. "
             f"The final validation loss went from {first['val_loss']:.3f} "
             f"(generation {int(first['generation'])}, dense) "
             f"to {last['val_loss']:.3f} (generation {int(last['generation'])}), a change of {rel:+.1%}."]
    if abs(rel) <= tolerance or rel < 0:
        lines.append(f"The paper's observation — later generations reach a loss close to the dense generation 0 "
                     f"despite fewer weights — **holds** here (within {tolerance:.0%}).")
    else:
        lines.append(f"The paper's observation that later generations stay close to the dense generation 0 "
                     f"**does not hold** at this scale: the loss rose by more than {tolerance:.0%}.")
    if "distinct_tokens" in s:
        d = s["distinct_tokens"].astype(int)
        span = f"{d.min():,}" if d.min() == d.max() else f"{d.min():,}–{d.max():,}"
        lines.append(f"Each generation trained on {span} distinct outer-corpus tokens.")
    return "\n\n".join(lines)


#: the learning gate: a run's models count as trained only when NoConnectome (dense standard
#: init) ends at least this many nats/token below the unigram entropy of the validation corpus
LEARNING_GATE_NATS = 1.5


def learning_gate(final: pd.DataFrame, unigram_entropy: float, gate: float = LEARNING_GATE_NATS) -> dict:
    """Is NoConnectome trained? ``final`` has rows ``label, val_loss`` (one per seed); returns
    ``gap`` (unigram entropy minus NoConnectome's mean final loss), ``gate`` and ``met``
    (``None`` when the run has no NoConnectome model)."""
    dense = final.loc[final["label"] == label_of("dense"), "val_loss"]
    if dense.empty:
        return {"gap": float("nan"), "gate": gate, "met": None}
    gap = float(unigram_entropy - dense.mean())
    return {"gap": gap, "gate": gate, "met": bool(gap >= gate)}


def takeaway_development(final: pd.DataFrame, unigram_entropy: float, profile: str) -> str:
    """Stage 3: the learning-curve loss at the last iteration of each model type (rows label, val_loss, one per
    seed) against the paper's ordering, the unigram entropy and the learning gate."""
    ms = seed_mean_se(final, ["label"], value="val_loss")
    stats = {r.label: (float(r.mean), float(r.se)) for r in ms.itertuples()}
    what = "the learning-curve loss at the last iteration (nats/token)"
    lines = [_profile_note(profile), _ordering(stats, higher=False, what=what)]
    g = learning_gate(final, unigram_entropy)
    if g["met"] is not None:
        lines.append(f"**Learning gate {'met' if g['met'] else 'not met'}:** NoConnectome ends {g['gap']:.2f} nats "
                     f"below the unigram entropy; a run's models count as trained when it is at least {g['gate']:g}"
                     + ("." if g["met"] else " nats below. At this scale the comparison is between models that have "
                        "learned little beyond token frequencies."))
    above = [m for m, (v, _) in stats.items() if v >= unigram_entropy]
    if above:
        lines.append(f"{', '.join(above)} {'is' if len(above) == 1 else 'are'} still at or above the unigram entropy "
                     f"({unigram_entropy:.3f}): at this scale {'that model has' if len(above) == 1 else 'they have'} "
                     "not learned more than token frequencies.")
    else:
        lines.append(f"Every model type is below the unigram entropy ({unigram_entropy:.3f}), so all learned more than "
                     "token frequencies.")
    return "\n\n".join(lines)


def takeaway_controls(density: float, jaccard: float, flips: pd.DataFrame, profile: str, rel_tol: float = 0.1) -> str:
    """Stage 4: the random control's overlap with the connectome against chance d/(2-d), and
    how often survivors flip sign between generations."""
    chance = density / (2 - density)
    lines = [_profile_note(profile)]
    at_chance = abs(jaccard - chance) <= rel_tol * chance
    lines.append(f"Connectome and random control share {jaccard:.4f} of their connections (Jaccard); two independent "
                 f"masks of density {density:.3f} would share {chance:.4f}. The control is "
                 + ("**at chance**, as it should be by construction." if at_chance else
                    f"**not at chance** (more than {rel_tol:.0%} away): check the random control."))
    if len(flips):
        lines.append(f"Between generations, {flips['sign_flips'].min():.1%}–{flips['sign_flips'].max():.1%} of the "
                     "surviving weights changed sign; "
                     + ("signs are largely inherited (random signs would flip half)."
                        if flips["sign_flips"].max() < 0.25
                        else "a sizeable share of the signs are redrawn by training."))
    return "\n\n".join(lines)


def takeaway_nlp(summary_df: pd.DataFrame, profile: str, chance: dict[tuple[str, str], float] | None = None) -> str:
    """Stage 5: for each task, whether the models are above chance (by more than 2 SE) and
    whether the paper's ordering holds. ``chance`` (task, metric) -> level overrides the
    registry's chance levels (:func:`connectome_lib.registry.chance_level`)."""
    names = {("hellaswag", "acc_norm"): "HellaSwag (normalised accuracy)", ("mmlu", "acc"): "MMLU accuracy",
             ("blimp", "acc"): "BLiMP accuracy", ("perplexity", "loss"): "the validation loss"}
    if chance is None:
        chance = {key: c for key in names if (c := chance_level(*key)) is not None}
    lines = [_profile_note(profile)]
    for key, name in names.items():
        stats = _summary_stats(summary_df, *key)
        if not stats:
            continue
        text = _ordering(stats, higher=higher_is_better(*key), what=name)
        if key in chance:
            c = chance[key]
            above = [m for m, (v, se) in stats.items() if v - 2 * (se if np.isfinite(se) else 0) > c]
            text += (f" Above chance ({c:g}) by more than two standard errors: {', '.join(above)}." if above else
                     f" No model is clearly above chance ({c:g}), "
                     "so this scale cannot test the paper's claim on this task.")
        lines.append("- " + text)
    return "\n\n".join(lines[:1]) + "\n\n" + "\n".join(lines[1:])


def takeaway_behaviour(summary_df: pd.DataFrame, baselines: pd.Series, profile: str) -> str:
    """Stage 6: reading-time r of the final models against the paper's ordering, the untrained
    model and word length (``baselines``: metric -> value, e.g. ``untrained/futrell2018/r``,
    ``rt/r_n_chars``, ``rt/r_n_tokens``)."""
    stats = _summary_stats(summary_df, "futrell2018", "r")
    lines = [_profile_note(profile), _ordering(stats, higher=True, what="the reading-time correlation r")]
    partial = _summary_stats(summary_df, "futrell2018", "r_partial_length")
    if partial:
        lines.append(_ordering(partial, higher=True, what="r with word length partialled out"))
    refs = {"the untrained model": baselines.get("untrained/futrell2018/r"),
            "word length in characters": baselines.get("rt/r_n_chars"),
            "tokens per word": baselines.get("rt/r_n_tokens")}
    text = _against_strongest_baseline(stats, refs, "", "No trained model exceeds it: at this scale the models' "
                                       "surprisal adds nothing a baseline does not already give, and the reading-time "
                                       "claim cannot be tested.")
    if text:
        lines.append(text)
    return "\n\n".join(lines)


def _against_strongest_baseline(stats: dict, refs: dict, where: str, none_beat: str) -> str | None:
    """"The strongest baseline is X (r = ...). A, B exceed it." for a takeaway; ``None`` when there
    is nothing to compare (no model statistics or no finite baseline)."""
    refs = {k: float(v) for k, v in refs.items() if v is not None and np.isfinite(v)}
    if not (stats and refs):
        return None
    best_name, best = max(refs.items(), key=lambda kv: kv[1])
    beat = [m for m, (v, _) in stats.items() if v > best]
    return (f"The strongest baseline is {best_name} (r = {best:.3f}). "
            + (f"{where}{', '.join(beat)} exceed{'s' if len(beat) == 1 else ''} it." if beat else none_beat))


def takeaway_brain(summary_df: pd.DataFrame, baselines: pd.Series, profile: str) -> str:
    """Stage 7: brain predictivity (best layer and language units) against the paper's ordering,
    the untrained model and sentence length (``baselines``: ``untrained/tuckute2024/r_best``,
    ``brain/r_length``)."""
    lines = [_profile_note(profile)]
    for (task, metric), name in {("tuckute2024", "r_best"): "brain predictivity at the best layer",
                                 ("language_units", "r_top1pct"): "the top 1 % language units",
                                 ("language_units", "r_top10pct"): "the top 10 % language units"}.items():
        stats = _summary_stats(summary_df, task, metric)
        if stats:
            lines.append("- " + _ordering(stats, higher=True, what=name))
    stats = _summary_stats(summary_df, "tuckute2024", "r_best")
    refs = {"the untrained model": baselines.get("untrained/tuckute2024/r_best"),
            "sentence length": baselines.get("brain/r_length")}
    text = _against_strongest_baseline(stats, refs, "At the best layer ", "No trained model exceeds it at its best "
                                       "layer: at this scale the brain claim cannot be tested.")
    if text:
        lines.append(text)
    return lines[0] + "\n\n" + "\n".join(line for line in lines[1:] if line.startswith("- ")) + "\n\n" + \
        "\n\n".join(line for line in lines[1:] if not line.startswith("- "))


def takeaway_ablations(table: pd.DataFrame, tests: pd.DataFrame | None = None) -> str:
    """The ablation stage's "what this shows", from :func:`connectome_lib.ablation.ablation_table`
    and the paired tests of :func:`connectome_lib.ablation.ablation_tests` (every model against
    the Connectome model on the same validation windows and seeds, Holm-corrected): which
    component's replacement by the random control changes the loss, and what share of the
    Connectome-RandomConnectome gap it accounts for. Without ``tests`` it reports the losses
    and says that no difference was tested."""
    t = table.set_index("model")
    if "connectome" not in t.index or "random" not in t.index:
        return "The Connectome and RandomConnectome models are needed to read the ablation; they are missing."
    singles = [m for m in t.index if str(m).startswith("random_")]
    if not singles:
        return "No single-component ablation was run."
    part = lambda m: str(m).split("_", 1)[1].replace("_", " ")  # noqa: E731
    if tests is None or tests.empty:
        base = float(t.loc["connectome", "mean"])
        gap = float(t.loc["random", "mean"]) - base
        lines = [f"The RandomConnectome model ends {gap:+.3f} nats from the Connectome model."]
        for m in singles:
            d = float(t.loc[m, "mean"]) - base
            lines.append(f"Replacing the evolved **{part(m)}** mask by the random one changes the loss by {d:+.3f}.")
        lines.append("No paired test was run on these models, so none of these differences is tested.")
        return " ".join(lines)
    r = tests.set_index("a")

    def tested(m: str) -> str:
        x = r.loc[m]
        verdict = x["verdict"] if x["verdict"] != "indistinguishable" else "not distinguishable from the Connectome"
        return (f"{x['effect']:+.3f} (95 % CI [{x['ci_low']:+.3f}, {x['ci_high']:+.3f}], "
                f"Holm p = {x['p_items_holm']:.2g}, {verdict})")

    gap = float(r.loc["random", "effect"]) if "random" in r.index else float("nan")
    n = r.iloc[0]
    lines = [f"Every model is compared with the Connectome model of the same seed on the same "
             f"{int(n['n_items']):,} validation windows × {int(n['n_seeds'])} seed(s) "
             f"(paired sign-flip test, bootstrap CI "
             f"over windows, one Holm correction over the {len(r)} comparisons). The RandomConnectome model's loss "
             f"differs by {tested('random')}."]
    for m in singles:
        if m in r.index:
            share = float(r.loc[m, "effect"]) / gap if gap else float("nan")
            lines.append(f"Replacing the evolved **{part(m)}** mask by the random one: {tested(m)}"
                         + (f", {share:.0%} of the RandomConnectome gap." if np.isfinite(share) else "."))
    for m in [m for m in t.index if str(m).startswith("only_") and m in r.index]:
        share = 1 - float(r.loc[m, "effect"]) / gap if gap else float("nan")
        lines.append(f"Keeping **only the {part(m)}** evolved (the rest random): {tested(m)}"
                     + (f", recovering {share:.0%} of the gap." if np.isfinite(share) else "."))
    costly = [m for m in singles if m in r.index and r.loc[m, "verdict"] == "worse"]
    if costly:
        top = max(costly, key=lambda m: float(r.loc[m, "effect"]))
        lines.append(f"The component that matters most at this scale is the **{part(top)}**: its replacement costs the "
                     "most, by a tested difference.")
    else:
        lines.append("No single replacement makes the loss detectably worse: "
                     "the ablation cannot place the effect in one component at this scale.")
    return " ".join(lines)
