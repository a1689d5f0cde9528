"""Futrell2018: word surprisal vs. self-paced reading times on the Natural Stories corpus.

Data: ``all_stories.tok`` gives the 10,256 words in reading order (``word, zone, item``);
``processed_wordinfo.tsv`` gives each word's mean reading time over subjects (``meanItemRT``,
milliseconds), sorted alphabetically, so it is re-sorted by (``item``, ``zone``) and joined on
those keys (the words are checked to match).

Two definitions of the score are computed, both Pearson r between word surprisal and mean RT
pooled over all stories, with the raw RT in ms (no log, no other transform):

``r`` (ours). Each story's text is its words joined by single spaces; it is tokenised with
offsets and fed to the model after one prefix token (the tokenizer's BOS, else EOS token,
:func:`~connectome_lib.evals.scoring.prefix_token_id`; GPT-2: ``<|endoftext|>``), so every
token, the story's first included, has a surprisal. Each token belongs to the word containing
its last character (GPT-2 tokens carry the preceding space, never cross a word); a token that
is only the separating space -- possible with a small byte-level BPE, never with GPT-2 --
belongs to the word after it. A word's surprisal is the sum of its tokens' surprisals, in bits.
Every word is kept (10,256).

``r_official`` -- the official script (``evals/reading_suprisal.py`` of
TuKoResearch/GenerationalConnectomes). Each story's text (words joined by single spaces) is
tokenised as is (``tokenizer(text)``) and fed in one pass with nothing before it, so the first
token gets no surprisal. A token belongs to the word whose character span ``[start, end)``
contains the token's offset midpoint ``(start + end) / 2``; a token whose midpoint lies in no
word (a lone space) or whose span is empty is dropped. A word's surprisal is the sum of its
scored tokens' surprisals in nats (the unit does not change r); a word with no scored token is
left out -- with GPT-2 each story's first word whenever it is a single token, so 10,248 of the
10,256 words remain (two stories start with a multi-token word, which keeps the surprisal of
its later tokens). Two things differ from the script and are unavoidable here:

* the script runs a story longer than the model's window in one pass anyway (its rotary model
  accepts any length); our models refuse inputs past their window, so such a story is scored
  with the same sliding window as ``r`` (only then, and identical to one pass otherwise);
* the script averages the Brain-Score assembly's per-subject RTs (subjects with more than six
  RTs); this data set holds the per-word means only (``meanItemRT``: RTs 100-3000 ms, subjects
  with at least 5 of 6 comprehension answers right, the assembly's own filters).

How they differ: ``r_official`` leaves out the first word of each story (8 of 10,256 words), and
conditions the first token of each story on nothing instead of ``<|endoftext|>``, which changes
the surprisal of the story's first few tokens; everything after is the same model computation
(issue 9 measured the two r's 0.0011 apart on one small model).

Further metrics (all from ``r``'s per-word surprisal):

* ``r_brainscore`` -- the same without each sentence's first word (Brain-Score's variant).
  A word is sentence-initial when it is a story's first word or follows a word ending in
  ``.``, ``?`` or ``!`` (possibly followed by closing quotes/brackets);
* ``r_n_tokens``, ``r_n_chars`` -- the RT correlation of the word's token count and character
  length alone: a randomly initialised model's summed surprisal tracks the token count, so
  these baselines put ``r`` in context;
* ``r_partial_length`` -- surprisal vs. RT after regressing both (linearly, with intercept) on
  ``n_chars`` and ``n_tokens``.

Stories longer than the window are scored with the sliding window of
:func:`~connectome_lib.evals.scoring.sliding_windows` (default stride = half the window: every
token after the first window keeps at least half a window of left context). The per-word
table has ``surprisal_bits`` (``r``) and ``surprisal_official`` (nats; NaN for the words
``r_official`` leaves out). ``limit`` keeps the first N stories.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy.stats import pearsonr
from tqdm import tqdm

from ..jsonl import read_csv_file
from ..paths import data_path
from .results import TaskResult
from .scoring import prefix_token_id, token_surprisals

SENTENCE_END = re.compile(r"[.?!][\"'\u2019\u201d)\]]*$")


def load_natural_stories(data_dir=None, limit: int | None = None) -> pd.DataFrame:
    """Words in reading order with their mean RT: ``item, zone, word, rt``."""
    read = dict(sep="\t", quoting=3, keep_default_na=False)
    words = read_csv_file(data_path("naturalstories_words", data_dir), ("word", "zone", "item"), **read)
    rts = read_csv_file(data_path("naturalstories_rt", data_dir), ("word", "zone", "item", "meanItemRT"),
                        **read).sort_values(["item", "zone"])
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


def word_spans(words: list[str]) -> np.ndarray:
    """``(start, end)`` character span of each word in ``" ".join(words)``."""
    lengths = np.array([len(w) for w in words])
    starts = np.r_[0, np.cumsum(lengths + 1)[:-1]]
    return np.column_stack([starts, starts + lengths])


def word_token_map(tokenizer, words: list[str]) -> tuple[list[int], np.ndarray]:
    """Tokenise ``" ".join(words)``; return the token ids and each token's word index (the
    word holding the token's last character; the separating space belongs to the next word)."""
    text = " ".join(words)
    char_word = np.full(len(text) + 1, -1)
    for i, (a, b) in enumerate(word_spans(words)):
        char_word[a:b] = i
        if b < len(text):
            char_word[b] = i + 1  # the space before word i + 1
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    token_word = np.array([char_word[max(e - 1, s)] for s, e in enc["offset_mapping"]], dtype=int)
    if (token_word < 0).any():
        raise ValueError("a token covers no word character (the tokenizer's offsets do not match the text)")
    return list(enc["input_ids"]), token_word


def story_surprisals(
    model, tokenizer, words: list[str], stride: int | None = None, batch_size: int = 8, dtype: str = "float32"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-word surprisal (bits) and token count for one story, ``r``'s definition (see the
    module docstring)."""
    ids, token_word = word_token_map(tokenizer, words)
    s = token_surprisals(model, [prefix_token_id(tokenizer)] + ids, stride=stride, batch_size=batch_size, dtype=dtype)
    bits = s / np.log(2)
    surprisal = np.bincount(token_word, weights=bits, minlength=len(words))
    n_tokens = np.bincount(token_word, minlength=len(words))
    if (n_tokens == 0).any():
        raise ValueError("a word received no token")
    return surprisal, n_tokens


def official_token_word(offsets, spans: np.ndarray) -> np.ndarray:
    """The official script's ``assign_tokens_to_words``: the word whose ``[start, end)`` holds
    the token's offset midpoint; -1 for an empty span or a midpoint in no word."""
    out = np.full(len(offsets), -1, dtype=int)
    for t, (a, b) in enumerate(offsets):
        if b <= a:
            continue
        mid = (a + b) / 2.0
        j = int(np.searchsorted(spans[:, 0], mid, side="right")) - 1  # last word starting at or before mid
        if j >= 0 and mid < spans[j, 1]:
            out[t] = j
    return out


def official_story_surprisals(
    model, tokenizer, words: list[str], stride: int | None = None, batch_size: int = 8, dtype: str = "float32"
) -> np.ndarray:
    """Per-word surprisal (nats) of one story by the official script's definition (see the
    module docstring): NaN for a word none of whose tokens is scored."""
    enc = tokenizer(" ".join(words), return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    out = np.full(len(words), np.nan)
    if len(ids) < 2:
        return out
    s = token_surprisals(model, ids, stride=stride, batch_size=batch_size, dtype=dtype)  # tokens 1 .. n-1
    token_word = official_token_word(offsets[1:], word_spans(words))
    keep = token_word >= 0
    sums = np.bincount(token_word[keep], weights=s[keep], minlength=len(words))
    has = np.bincount(token_word[keep], minlength=len(words)) > 0
    out[has] = sums[has]
    return out


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
    if "surprisal_official" in table:
        so = table["surprisal_official"].to_numpy(float)
        ok = ~np.isnan(so) & ~np.isnan(rt)
        res.add("r_official", pearsonr(so[ok], rt[ok])[0], int(ok.sum()))
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
    (item, zone, word, surprisal_bits, surprisal_official, n_tokens, n_chars, rt,
    sentence_initial)."""
    words = load_natural_stories(data_dir, limit)
    parts = []
    for _item, story in tqdm(words.groupby("item", sort=True), desc="futrell2018", disable=not progress, leave=False):
        surprisal, n_tokens = story_surprisals(model, tokenizer, story["word"].tolist(), stride, batch_size, dtype)
        story = story.copy()
        story["surprisal_bits"] = surprisal
        story["surprisal_official"] = official_story_surprisals(
            model, tokenizer, story["word"].tolist(), stride, batch_size, dtype
        )
        story["n_tokens"] = n_tokens
        story["n_chars"] = story["word"].str.len()
        story["sentence_initial"] = sentence_initial(story["word"])
        parts.append(story)
    table = pd.concat(parts, ignore_index=True)[
        ["item", "zone", "word", "surprisal_bits", "surprisal_official", "n_tokens", "n_chars", "rt",
         "sentence_initial"]
    ]
    res = TaskResult(
        "futrell2018",
        metadata={"n_words": len(table), "n_words_official": int(table["surprisal_official"].notna().sum()),
                  "n_stories": int(table["item"].nunique()), "stride": stride, "limit": limit,
                  "prefix_token_id": prefix_token_id(tokenizer)},
        table=table,
    )
    reading_time_metrics(table, res)
    return res
