"""The profiles side by side, for the book's Reproduce page: every cell is computed from the
profile files, so the table cannot drift from what a profile runs."""

from __future__ import annotations

import pandas as pd

from .config import Profile, available_profiles, load_profile
from .estimate import human_count, parameter_count, training_tokens


def _tokens_per_model(profile: Profile, train) -> int:
    return training_tokens(train.iters, train.batch_size, train.grad_accum, profile.model.block_size)


def _evaluation(profile: Profile) -> str:
    e = profile.evals
    if e.limit is None and e.blimp_limit is None and e.futrell_limit is None and e.brain_limit is None:
        return "every item of every task"
    parts = [f"{e.limit:,} HellaSwag/MMLU items (seeded samples)" if e.limit is not None
             else "all HellaSwag/MMLU items",
             f"{e.blimp_limit if e.blimp_limit is not None else e.limit} pairs per BLiMP paradigm"
             if (e.blimp_limit or e.limit) else "all BLiMP pairs",
             f"{e.futrell_limit} of 10 stories" if e.futrell_limit else "all stories",
             f"{e.brain_limit} fMRI sentences" if e.brain_limit else "all fMRI sentences"]
    return ", ".join(parts)


def profile_row(profile: Profile) -> dict[str, str]:
    """One profile's row: model, parameters, outer loop, inner loop, models per type, evaluation."""
    m, ev, dv = profile.model, profile.evolve, profile.develop
    vocab = f"BPE {m.vocab_size:,}" if profile.data.tokenizer == "bpe" else f"{m.vocab_size:,}"
    inner = _tokens_per_model(profile, dv.train)
    unique = profile.data.inner_max_tokens
    k = ev.lineages
    dense = dv.seeds_of("dense")
    return {
        "profile": f"`{profile.name}`",
        "model (layers × width, context, vocabulary)": f"{m.n_layer} × {m.n_embd}, {m.block_size:,}, {vocab}",
        "parameters": human_count(parameter_count(profile.model)),
        "outer loop": f"{k} lineage{'s' if k > 1 else ''} × {ev.generations} generations × {ev.train.iters:,} "
                      f"iterations, {human_count(_tokens_per_model(profile, ev.train))} fresh tokens each",
        "inner loop, per model": f"{dv.train.iters:,} iterations, {human_count(inner)} tokens"
                                 + (f" ({inner / unique:.3g} passes over {human_count(unique)})" if unique else ""),
        "models per type": f"{len(dv.seeds)} (NoConnectome {len(dense)})",
        "evaluation": _evaluation(profile),
    }


#: the shipped profiles from smallest to largest (others follow in name order)
SIZE_ORDER = ("smoke", "cpu", "gpu", "paper")


def profiles_table(names: list[str] | None = None) -> pd.DataFrame:
    """:func:`profile_row` of every profile (default: every shipped one, smallest first), one row each."""
    if names is None:
        found = available_profiles()
        names = [n for n in SIZE_ORDER if n in found] + sorted(n for n in found if n not in SIZE_ORDER)
    return pd.DataFrame([profile_row(load_profile(n)) for n in names])


def profiles_markdown(names: list[str] | None = None) -> str:
    """:func:`profiles_table` as a Markdown table."""
    t = profiles_table(names)
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in t.itertuples(index=False)]
    return "\n".join(lines)
