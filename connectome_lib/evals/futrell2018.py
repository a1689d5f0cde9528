"""Futrell2018: word surprisal vs. self-paced reading times on the Natural Stories corpus.

Data: ``all_stories.tok`` gives the 10,256 words in reading order (``word, zone, item``);
``processed_wordinfo.tsv`` gives each word's mean reading time over subjects (``meanItemRT``),
sorted alphabetically, so it is re-sorted by (``item``, ``zone``) and joined on those keys (the
words are checked to match).

Surprisal: each story's text is its words joined by single spaces; it is tokenised with offsets
and fed to the model after one ``<|endoftext|>`` token (so the first token is conditioned on
it). Each token belongs to the word containing its last character (GPT-2 tokens carry the
preceding space, never cross a word). A word's surprisal is the sum of its tokens' surprisals,
in bits. Stories longer than the window are scored with the sliding window of
:func:`~connectome_lib.evals.scoring.sliding_windows` (default stride = half the window: every
token after the first window keeps at least half a window of left context).

Metrics (Pearson r over all stories pooled):

* ``r`` -- surprisal vs. mean RT over every word (the paper's score);
* ``r_brainscore`` -- the same without each sentence's first word (Brain-Score's variant).
  A word is sentence-initial when it is a story's first word or follows a word ending in
  ``.``, ``?`` or ``!`` (possibly followed by closing quotes/brackets);
* ``r_n_tokens``, ``r_n_chars`` -- the RT correlation of the word's token count and character
  length alone: a randomly initialised model's summed surprisal tracks the token count, so
  these baselines put ``r`` in context;
* ``r_partial_length`` -- surprisal vs. RT after regressing both (linearly, with intercept) on
  ``n_chars`` and ``n_tokens``.

``limit`` keeps the first N stories.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy.stats import pearsonr
from tqdm import tqdm

from .results import TaskResult
from .scoring import token_surprisals
from ..paths import data_path

SENTENCE_END = re.compile(r"[.?!][\"'\u2019\u201d)\]]*$")


def load_natural_stories(data_dir=None, limit: int | None = None) -> pd.DataFrame:
    """Words in reading order with their mean RT: ``item, zone, word, rt``."""
    read = dict(sep="\t", quoting=3, keep_default_na=False)
    words = pd.read_csv(data_path("naturalstories_words", data_dir), **read)
    rts = pd.read_csv(data_path("naturalstories_rt", data_dir), **read).sort_values(["item", "zone"])
    df = words.merge(rts, on=["item", "zone"], how="left", suffixes=("", "_rt"), validate="one_to_one")
    if df["meanItemRT"].isna().any() or not (df["word"] == df["word_rt"]).all():
        raise ValueError("Natural Stories word file and reading-time file do not match row for row")
    df = df.rename(columns={"meanItemRT": "rt"})[["item", "zone", "word", "rt"]]
    if limit is not None:
        df = df[df["item"].isin(sorted(df["item"].unique())[:limit])]
    return df.reset_index(drop=True)


def sentence_initial(words: pd.Series) -> np.ndarray:
    """True for a story's first word and for every word after one that ends a sentence."""
    prev_ends = np.r_[True, [bool(SENTENCE_END.search(w)) for w in words.iloc[:-1]]]
    return prev_ends


def word_token_map(tokenizer, words: list[str]) -> tuple[list[int], np.ndarray]:
    """Tokenise ``" ".join(words)``; return the token ids and each token's word index."""
    text = " ".join(words)
    char_word = np.full(len(text), -1)
    pos = 0
    for i, w in enumerate(words):
        char_word[pos : pos + len(w)] = i
        pos += len(w) + 1
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    token_word = np.array([char_word[max(e - 1, s)] for s, e in enc["offset_mapping"]])
    if (token_word < 0).any():
        raise ValueError("a token covers no word character (unexpected whitespace token)")
    return list(enc["input_ids"]), token_word


def story_surprisals(model, tokenizer, words: list[str], stride: int | None = None, batch_size: int = 8, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Per-word surprisal (bits) and token count for one story (see the module docstring)."""
    ids, token_word = word_token_map(tokenizer, words)
    s = token_surprisals(model, [tokenizer.eos_token_id] + ids, stride=stride, batch_size=batch_size, dtype=dtype)
    bits = s / np.log(2)
    surprisal = np.bincount(token_word, weights=bits, minlength=len(words))
    n_tokens = np.bincount(token_word, minlength=len(words))
    if (n_tokens == 0).any():
        raise ValueError("a word received no token")
    return surprisal, n_tokens


def residualise(y: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    """Residuals of ``y`` after ordinary least squares on ``covariates`` plus an intercept."""
    X = np.column_stack([np.ones(len(y)), covariates])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return y - X @ beta


def reading_time_metrics(table: pd.DataFrame, res: TaskResult) -> None:
    """Add the r metrics of the module docstring computed from a per-word table."""
    n = len(table)
    rt = table["rt"].to_numpy(float)
    s = table["surprisal_bits"].to_numpy(float)
    res.add("r", pearsonr(s, rt)[0], n)
    keep = ~table["sentence_initial"].to_numpy(bool)
    res.add("r_brainscore", pearsonr(s[keep], rt[keep])[0], int(keep.sum()))
    res.add("r_n_tokens", pearsonr(table["n_tokens"].to_numpy(float), rt)[0], n)
    res.add("r_n_chars", pearsonr(table["n_chars"].to_numpy(float), rt)[0], n)
    cov = table[["n_chars", "n_tokens"]].to_numpy(float)
    res.add("r_partial_length", pearsonr(residualise(s, cov), residualise(rt, cov))[0], n)


def evaluate_futrell2018(
    model,
    tokenizer,
    data_dir=None,
    limit: int | None = None,
    stride: int | None = None,
    batch_size: int = 8,
    dtype: str = "float32",
    progress: bool = True,
) -> TaskResult:
    """Reading-time predictivity of surprisal; returns metrics and the per-word ``table``
    (item, zone, word, surprisal_bits, n_tokens, n_chars, rt, sentence_initial)."""
    words = load_natural_stories(data_dir, limit)
    parts = []
    for item, story in tqdm(words.groupby("item", sort=True), desc="futrell2018", disable=not progress, leave=False):
        surprisal, n_tokens = story_surprisals(model, tokenizer, story["word"].tolist(), stride, batch_size, dtype)
        story = story.copy()
        story["surprisal_bits"] = surprisal
        story["n_tokens"] = n_tokens
        story["n_chars"] = story["word"].str.len()
        story["sentence_initial"] = sentence_initial(story["word"])
        parts.append(story)
    table = pd.concat(parts, ignore_index=True)[
        ["item", "zone", "word", "surprisal_bits", "n_tokens", "n_chars", "rt", "sentence_initial"]
    ]
    res = TaskResult(
        "futrell2018",
        metadata={"n_words": len(table), "n_stories": int(table["item"].nunique()), "stride": stride, "limit": limit},
        table=table,
    )
    reading_time_metrics(table, res)
    return res
