"""Baselines that put every number in context.

* **Untrained model** -- the evaluated model's architecture with a fresh random initialisation
  (``torch.manual_seed(seed)`` then ``AutoModelForCausalLM.from_config(model.config)``),
  evaluated on ``untrained_tasks`` (Futrell2018 and Tuckute2024 by default); its metrics are
  reported as ``untrained/<task>/<metric>``.
* **Reading times without a language model** -- Pearson r with mean RT of the word's length in
  characters (``rt/r_n_chars``), in tokens (``rt/r_n_tokens``) and of its unigram
  log-frequency (``rt/r_logfreq``) counted in the corpus alone (``frequency_corpora``, by default
  validation + inner-loop books; lower-cased letter words, add-one smoothing; a hyphenated word
  gets the sum of its parts' log-probabilities). A randomly initialised model's summed surprisal
  is close to ``n_tokens`` times a constant, so ``untrained/futrell2018/r`` lands near
  ``rt/r_n_tokens``: the trained models' ``r`` must be read against these numbers, and
  ``futrell2018``'s ``r_partial_length`` (surprisal after partialling out length) is the cleaner
  comparison.
* **Brain without a language model** -- sentence length in words and in tokens as ridge
  predictors (``brain/r_n_words``, ``brain/r_n_tokens``, ``brain/r_length`` for both together),
  with the same cross-validation as Tuckute2024.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Iterable

import numpy as np
import torch
from scipy.stats import pearsonr
from transformers import AutoModelForCausalLM

from ..jsonl import iter_jsonl
from ..paths import data_path
from .futrell2018 import load_natural_stories, word_token_map
from .results import TaskResult
from .ridge import alpha_grid, ridge_cv_score
from .tuckute2024 import DEFAULT_ROI, load_tuckute2024

WORD = re.compile(r"[a-z]+(?:['\u2019][a-z]+)*")


def untrained_like(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised model with the same config, on the same device, in eval mode."""
    torch.manual_seed(seed)
    fresh = AutoModelForCausalLM.from_config(model.config)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    return fresh.to(device).eval()


def count_words(texts: Iterable[str]) -> Counter:
    """Lower-cased word counts (letters with inner apostrophes)."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(WORD.findall(text.lower()))
    return counts


def corpus_word_counts(data_dir=None, corpora=("corpus_val", "corpus_inner")) -> Counter:
    counts: Counter = Counter()
    for key in corpora:
        records = iter_jsonl(data_path(key, data_dir), require=("text",))
        counts.update(count_words(rec["text"] for rec in records))
    return counts


def log_frequency(words: Iterable[str], counts: Counter) -> np.ndarray:
    """Add-one smoothed unigram log-probability of each word (sum over hyphen/punct parts)."""
    total, vocab = sum(counts.values()), len(counts) + 1
    out = []
    for w in words:
        parts = WORD.findall(w.lower()) or [""]
        out.append(sum(np.log((counts.get(p, 0) + 1) / (total + vocab)) for p in parts))
    return np.array(out)


def reading_time_baselines(tokenizer, data_dir=None, limit=None, counts: Counter | None = None) -> dict[str, float]:
    """Model-free RT predictors' Pearson r with mean RT (see the module docstring)."""
    words = load_natural_stories(data_dir, limit)
    n_tokens = np.concatenate([
        np.bincount(word_token_map(tokenizer, g["word"].tolist())[1], minlength=len(g))
        for _, g in words.groupby("item", sort=True)
    ])
    rt = words["rt"].to_numpy(float)
    out = {
        "rt/r_n_chars": pearsonr(words["word"].str.len().to_numpy(float), rt)[0],
        "rt/r_n_tokens": pearsonr(n_tokens.astype(float), rt)[0],
    }
    if counts is not None:
        out["rt/r_logfreq"] = pearsonr(log_frequency(words["word"], counts), rt)[0]
    return out


def brain_length_baselines(
    tokenizer, data_dir=None, limit=None, roi=DEFAULT_ROI, folds=5, seed=0, alphas=None
) -> dict[str, float]:
    """Sentence length (words, tokens, both) as ridge predictors of the ROI response."""
    df = load_tuckute2024(data_dir, limit, roi, min_rows=2 * folds)
    y = df[roi].to_numpy(float)
    n_words = df["sentence"].str.split().str.len().to_numpy(float)
    n_tok = np.array([len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in df["sentence"]], float)
    alphas = alpha_grid() if alphas is None else alphas
    return {
        "brain/r_n_words": ridge_cv_score(n_words[:, None], y, folds, seed, alphas).r,
        "brain/r_n_tokens": ridge_cv_score(n_tok[:, None], y, folds, seed, alphas).r,
        "brain/r_length": ridge_cv_score(np.column_stack([n_words, n_tok]), y, folds, seed, alphas).r,
    }


def evaluate_baselines(
    model,
    tokenizer,
    run_task: Callable[[str, torch.nn.Module], TaskResult],
    data_dir=None,
    futrell_limit: int | None = None,
    brain_limit: int | None = None,
    roi: str = DEFAULT_ROI,
    folds: int = 5,
    seed: int = 0,
    alphas=None,
    frequency_corpora=("corpus_val", "corpus_inner"),
    untrained_tasks=("futrell2018", "tuckute2024"),
    counts: Counter | None = None,
) -> TaskResult:
    """All baselines of the module docstring; ``run_task(name, model)`` evaluates one task."""
    res = TaskResult("baselines", metadata={"untrained_seed": seed, "untrained_tasks": list(untrained_tasks),
                                            "frequency_corpora": list(frequency_corpora)})
    if counts is None and frequency_corpora:
        counts = corpus_word_counts(data_dir, frequency_corpora)
    for k, v in reading_time_baselines(tokenizer, data_dir, futrell_limit, counts).items():
        res.add(k, v)
    for k, v in brain_length_baselines(tokenizer, data_dir, brain_limit, roi, folds, seed, alphas).items():
        res.add(k, v)
    fresh = untrained_like(model, seed)
    for task in untrained_tasks:
        sub = run_task(task, fresh)
        for m in sub.metrics:
            res.add(f"untrained/{task}/{m.metric}", m.value, m.n)
    del fresh
    return res
