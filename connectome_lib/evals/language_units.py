"""Language-selective units (AlKhamissi et al. 2025) and their brain predictivity.

No localizer stimuli ship with the data, so they are **generated** here, deterministically:

* *sentences* -- real sentences from the validation corpus (``corpus_val``): paragraphs are
  split after ``.``, ``?`` or ``!`` followed by whitespace; a sentence is kept when it has 8-20
  words, starts with a capital letter, ends in ``.``/``?``/``!`` and otherwise holds only
  letters, spaces and ``,;:'-``; ``n_sentences`` of them are drawn with a seeded RNG;
* *non-word strings* -- one per sentence, with the same number of words, each word replaced by
  a pronounceable non-word of the same character length (lower-case letters alternating
  consonant/vowel, starting with either at random; seeded RNG).

Units are all hidden dimensions of every layer ``1 .. L`` (the residual stream after each block;
the embedding layer is excluded), each stimulus represented by the **mean over its tokens**.
Each unit gets a Welch t-statistic (sentences > non-words, ``scipy.stats.ttest_ind`` with
``equal_var=False``); units are ranked pooled over all layers and the top fractions (1 % and
10 % by default) are the language units. Their **last-token** activations on the 1,000
Tuckute2024 sentences are then mapped to the brain with the same cross-validated ridge as
:mod:`~connectome_lib.evals.tuckute2024`. Metrics: ``r_top{p}pct``, ``n_units_top{p}pct`` and,
for reference, ``r_all_units`` (all units of layers 1..L together). The per-unit table
(``layer``, ``unit``, ``t``; NaN where a unit is constant) is what the unit maps draw
(:func:`connectome_lib.plots.language_unit_map`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import ttest_ind

from ..jsonl import iter_jsonl
from ..paths import data_path
from .results import TaskResult
from .ridge import alpha_grid, ridge_cv_score
from .scoring import sentence_features
from .tuckute2024 import DEFAULT_ROI, load_tuckute2024

CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"
_SPLIT = re.compile(r"(?<=[.?!])\s+")
_CLEAN = re.compile(r"^[A-Z][A-Za-z ,;:'\-]*[.?!]$")


@dataclass
class Localizer:
    sentences: list[str]
    nonwords: list[str]
    source: str = "generated from corpus_val (no localizer stimuli ship with the data)"


def candidate_sentences(texts, min_words: int = 8, max_words: int = 20) -> list[str]:
    """Clean sentences of ``min_words``-``max_words`` words, in corpus order, without duplicates."""
    seen, out = set(), []
    for text in texts:
        for para in text.split("\n"):
            for s in _SPLIT.split(para.strip()):
                s = " ".join(s.split())
                if _CLEAN.match(s) and min_words <= len(s.split()) <= max_words and s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


def nonword(length: int, rng: np.random.Generator) -> str:
    """A pronounceable non-word: alternating consonants and vowels, random start."""
    pools = (CONSONANTS, VOWELS)
    k = int(rng.integers(2))
    chars = []
    for _ in range(length):
        pool = pools[k]
        chars.append(pool[int(rng.integers(len(pool)))])
        k = 1 - k
    return "".join(chars)


def nonword_string(sentence: str, rng: np.random.Generator) -> str:
    """The sentence with every word replaced by a non-word of the same character length."""
    return " ".join(nonword(len(w), rng) for w in sentence.split())


def build_localizer(data_dir=None, n_sentences: int = 240, seed: int = 0, texts=None) -> Localizer:
    """Draw the localizer stimuli (see the module docstring); ``texts`` overrides the corpus."""
    if texts is None:
        records = iter_jsonl(data_path("corpus_val", data_dir), require=("text",))
        texts = (rec["text"] for rec in records)
    cands = candidate_sentences(texts)
    if len(cands) < n_sentences:
        raise ValueError(f"only {len(cands)} usable sentences for a localizer of {n_sentences}")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(cands), size=n_sentences, replace=False)
    sentences = [cands[i] for i in pick]
    return Localizer(sentences, [nonword_string(s, rng) for s in sentences])


def selectivity(sent_feats: list[np.ndarray], nonword_feats: list[np.ndarray]) -> np.ndarray:
    """Welch t (sentences > non-words) of every unit, layers concatenated; NaN -> -inf."""
    a, b = np.concatenate(sent_feats, axis=1), np.concatenate(nonword_feats, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = ttest_ind(a, b, axis=0, equal_var=False).statistic
    return np.where(np.isfinite(t), t, -np.inf)


def top_units(t: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the ``ceil(fraction * n)`` units with the largest t (stable order)."""
    k = max(1, math.ceil(fraction * len(t)))
    return np.argsort(-t, kind="stable")[:k]


def fraction_label(fraction: float) -> str:
    return f"top{fraction * 100:g}pct"


def evaluate_language_units(
    model,
    tokenizer,
    data_dir=None,
    limit: int | None = None,
    fractions=(0.01, 0.10),
    n_sentences: int = 240,
    roi: str = DEFAULT_ROI,
    folds: int = 5,
    seed: int = 0,
    alphas: np.ndarray | None = None,
    batch_size: int = 16,
    dtype: str = "float32",
    progress: bool = True,
    localizer: Localizer | None = None,
) -> TaskResult:
    """Localise language units, then score their brain predictivity; see the module docstring."""
    loc = localizer or build_localizer(data_dir, n_sentences, seed)
    sent = sentence_features(model, tokenizer, loc.sentences, "mean", batch_size, dtype, progress,
                             "localizer sentences")[1:]
    nonw = sentence_features(model, tokenizer, loc.nonwords, "mean", batch_size, dtype, progress,
                             "localizer non-words")[1:]
    t = selectivity(sent, nonw)
    width = sent[0].shape[1]
    df = load_tuckute2024(data_dir, limit, roi, min_rows=2 * folds)
    y = df[roi].to_numpy(float)
    brain = np.concatenate(
        sentence_features(model, tokenizer, df["sentence"].tolist(), "last", batch_size, dtype, progress,
                          "tuckute2024")[1:],
        axis=1,
    )
    alphas = alpha_grid() if alphas is None else alphas
    res = TaskResult(
        "language_units",
        metadata={
            "localizer": loc.source, "n_localizer_sentences": len(loc.sentences), "roi": roi, "folds": folds,
            "seed": seed, "n_units": len(t),
            "unit_features": "mean over tokens, layers 1..L (localizer); last token (brain)",
            "examples": list(zip(loc.sentences[:3], loc.nonwords[:3])),
        },
    )
    for frac in fractions:
        idx = top_units(t, frac)
        label = fraction_label(frac)
        res.add(f"r_{label}", ridge_cv_score(brain[:, idx], y, folds, seed, alphas).r, len(df))
        res.add(f"n_units_{label}", len(idx))
        res.metadata[f"units_per_layer_{label}"] = np.bincount(idx // width + 1, minlength=len(sent) + 1)[1:].tolist()
    res.add("r_all_units", ridge_cv_score(brain, y, folds, seed, alphas).r, len(df))
    res.table = unit_table(t, width)
    return res


def unit_table(t: np.ndarray, width: int) -> pd.DataFrame:
    """One row per unit: its ``layer`` (1..L), ``unit`` (hidden dimension) and Welch ``t``
    (NaN for a unit whose t is undefined, which :func:`selectivity` ranks last)."""
    idx = np.arange(len(t))
    return pd.DataFrame({"layer": idx // width + 1, "unit": idx % width, "t": np.where(np.isfinite(t), t, np.nan)})
