"""The numbers reported by Kotar & Tuckute (2025), as one tidy table for comparisons.

:func:`paper_results` returns one row per reported number with the columns

``model``
    ``Connectome``, ``RandomConnectome`` or ``NoConnectome`` (the ``label`` column of our
    evaluation results, :data:`connectome_lib.registry.PAPER_LABELS`).
``task``, ``metric``
    named as in our evaluation package's result rows (:mod:`connectome_lib.evals`) wherever a
    counterpart exists, so that ``merge(on=["model", "task", "metric", ...])`` works; see below.
``iteration``
    inner-loop iteration for learning-curve numbers; ``<NA>`` for numbers of the final model.
``layer``
    model layer (0 = embeddings, 1..12 = after each block) for layer-wise brain scores; else
    ``<NA>``. ``iteration`` and ``layer`` are nullable integers (pandas ``Int64``).
``value``, ``se``
    the number and its standard error over the inner-loop seeds (four per model type); ``se``
    is ``NaN`` where the paper's figure gives none that can be read.
``source``
    ``"panel B(ii) exact"`` for values printed in the figure, ``"read off figure ±0.002"``
    (losses: ``±0.02``) for values measured on the plotted curves and bars (by eye, from the
    published figure; PAPER.md records them), with a note where the reading is rougher.

Correspondence with our metrics (``task/metric`` of the result rows):

=========================================  ===================================================
paper number                               our metric
=========================================  ===================================================
HellaSwag accuracy (table)                 ``hellaswag/acc_norm``. The paper does not say whether
                                           its number is ``acc`` or ``acc_norm``; the official
                                           script's ``acc_norm`` is per *token*
                                           (ours: ``hellaswag/acc_norm_tokens``), while our
                                           headline ``acc_norm`` is per *character* by default
                                           (``evals.hellaswag_norm``). All three are reported.
MMLU accuracy (table)                      ``mmlu/acc`` (micro-average over the 14,042 test
                                           questions). The paper's prompt is ours with
                                           ``evals.mmlu_prompt=paper``; the default is the
                                           lm-evaluation-harness prompt.
validation loss at iteration 500..2000     ``perplexity/loss`` at that checkpoint (mean token
                                           cross-entropy in nats). The paper's validation text
                                           is FineWeb, ours Gutenberg: levels are not comparable,
                                           the ordering of the three models is.
reading-time r at iteration 0/peak/2000    ``futrell2018/r`` (Pearson r of word surprisal with
                                           mean RT over all 10,256 words). Brain-Score's variant
                                           is ``futrell2018/r_brainscore``.
brain predictivity, layer k                ``tuckute2024/r_layer{k}`` (last-token hidden state,
                                           cross-validated ridge to ``lang_LH_netw``).
language-selective units                   ``language_units/r_language_units`` here; ours are
                                           ``language_units/r_top1pct`` and ``r_top10pct`` (the
                                           paper does not say which fraction it used).
=========================================  ===================================================

:func:`paper_values` selects one task's numbers in the shape the plotting functions' ``paper=``
arguments take. All values come from
``shared/PAPER.md``; the paper itself is arXiv:2504.21047.
"""

from __future__ import annotations

import pandas as pd

from .registry import PAPER_LABELS

#: the model types the paper reports, in the registry's order
MODELS: tuple[str, ...] = PAPER_LABELS

COLUMNS = ["model", "task", "metric", "iteration", "layer", "value", "se", "source"]

EXACT = "panel B(ii) exact"
READ = "read off figure ±0.002"
READ_LOSS = "read off figure ±0.02"

# ---------------------------------------------------------------------------------- the numbers

#: HellaSwag and MMLU, mean ± SE over seeds (the figure's panel B(ii) prints them)
_NLP = {
    "Connectome": {"hellaswag": (0.2764, 0.0008), "mmlu": (0.2468, 0.0008)},
    "RandomConnectome": {"hellaswag": (0.2574, 0.0009), "mmlu": (0.2346, 0.0008)},
    "NoConnectome": {"hellaswag": (0.2691, 0.0011), "mmlu": (0.2412, 0.0008)},
}

#: validation loss at inner-loop iterations 500, 1000, 1500, 2000
_VAL_ITERS = (500, 1000, 1500, 2000)
_VAL_LOSS = {
    "Connectome": (3.97, 3.66, 3.61, 3.58),
    "NoConnectome": (4.35, 3.96, 3.91, 3.90),
    "RandomConnectome": (5.93, 5.59, 5.48, 5.43),
}

#: reading-time r: (iteration, value, which point of the curve)
_READING = {
    "Connectome": ((0, 0.360, "start"), (300, 0.380, "peak"), (2000, 0.340, "end")),
    "NoConnectome": ((0, 0.348, "start"), (400, 0.375, "peak"), (2000, 0.344, "end")),
    "RandomConnectome": ((0, 0.340, "start"), (300, 0.375, "peak"), (2000, 0.376, "end")),
}

#: brain predictivity (Pearson r) by layer 1..12
_BRAIN = {
    "Connectome": (0.216, 0.256, 0.263, 0.279, 0.273, 0.279, 0.287, 0.297, 0.314, 0.316, 0.304, 0.294),
    "NoConnectome": (0.199, 0.225, 0.241, 0.254, 0.261, 0.257, 0.272, 0.279, 0.285, 0.286, 0.287, 0.285),
    "RandomConnectome": (0.152, 0.175, 0.175, 0.176, 0.180, 0.185, 0.195, 0.208, 0.218, 0.223, 0.225, 0.226),
}

#: brain predictivity of the language-selective units, mean ± SE
_UNITS = {
    "Connectome": (0.235, 0.015),
    "RandomConnectome": (0.164, 0.008),
    "NoConnectome": (0.228, 0.008),
}


def _row(model, task, metric, value, source, se=None, iteration=None, layer=None) -> dict:
    return dict(model=model, task=task, metric=metric, iteration=iteration, layer=layer,
                value=float(value), se=float("nan") if se is None else float(se), source=source)


def paper_results() -> pd.DataFrame:
    """Every number of the paper as a tidy table (see the module docstring for the columns)."""
    rows: list[dict] = []
    for model in MODELS:
        (hs, hs_se), (mm, mm_se) = _NLP[model]["hellaswag"], _NLP[model]["mmlu"]
        rows.append(_row(model, "hellaswag", "acc_norm", hs, EXACT, se=hs_se))
        rows.append(_row(model, "mmlu", "acc", mm, EXACT, se=mm_se))
        for it, v in zip(_VAL_ITERS, _VAL_LOSS[model]):
            rows.append(_row(model, "perplexity", "loss", v, READ_LOSS, iteration=it))
        for it, v, point in _READING[model]:
            src = READ if point != "peak" else f"{READ} (peak of the curve)"
            rows.append(_row(model, "futrell2018", "r", v, src, iteration=it))
        rows.append(_row(model, "tuckute2024", "r_layer0", 0.0, "read off figure ≈ 0", layer=0))
        for k, v in enumerate(_BRAIN[model], start=1):
            src = READ
            if model == "NoConnectome" and k == 12:
                src = "read off figure ≈ (last point, rougher)"
            rows.append(_row(model, "tuckute2024", f"r_layer{k}", v, src, layer=k))
        u, u_se = _UNITS[model]
        rows.append(_row(model, "language_units", "r_language_units", u, READ, se=u_se))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["iteration"] = df["iteration"].astype("Int64")
    df["layer"] = df["layer"].astype("Int64")
    return df


def paper_values(task: str, metric: str | None = None) -> pd.DataFrame:
    """The paper's numbers for one task (and metric), from :func:`paper_results`, in the shape
    the plotting functions' ``paper=`` arguments take (model, task, metric, iteration, layer,
    value, se). ``ValueError`` when the paper reports no such number."""
    p = paper_results()
    p = p[p["task"] == task]
    if metric is not None:
        p = p[p["metric"] == metric]
    if p.empty:
        raise ValueError(f"the paper reports no number for task {task!r}" + (f", metric {metric!r}" if metric else ""))
    return p.reset_index(drop=True)
