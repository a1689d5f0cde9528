"""Audit of the Gutenberg corpora for works that appear twice (issue 17).

The outer, inner and validation corpora are meant to hold *disjoint books*, but Project
Gutenberg publishes one work several times: as a whole and in parts ("Roughing It" and
"Roughing It, Part 6."), in two editions ("Romeo and Juliet" and "The Tragedy of Romeo and
Juliet"), or inside an omnibus. A work in two splits leaks training text into validation; two
copies in one split weight that work twice. This module finds such pairs and proposes which
books to drop.

Three independent tests flag a pair of books (every pair, within and across splits):

``title``
    the same normalised title (lowercase, accents, punctuation, the articles "the/a/an" and
    volume/part markers removed) *and* the same normalised, non-generic author. Two books
    called "Poems" by different authors are not a match.
``hash``
    the same hash of the normalised text (lowercase words joined by one space), i.e. an exact
    copy up to case, punctuation and line breaks.
``text``
    the texts share many word shingles (``shingle`` consecutive words). Two numbers are
    reported, both computed *exactly* on the sets of hashed shingles: the Jaccard similarity
    |A∩B| / |A∪B| and the containment |A∩B| / min(|A|, |B|). A pair is flagged when the
    containment reaches ``threshold``: the Jaccard similarity of an omnibus and one play in it is
    small, and changing 10 % of the words of a book already destroys ~41 % of its 5-shingles
    (1 - 0.9**5), which puts the Jaccard similarity of such a near-copy at ~0.42.

Exact sets instead of MinHash: 500 books with ~31M shingles in all fit in memory, and an inverted
index (sort all shingles once, count the books that share each one) finds every candidate pair
without comparing all ~120k pairs. Shingles that occur in more than ``max_df`` books ("at the
end of the") are left out of the candidate count only; the count plus the smaller book's number
of such common shingles bounds the true intersection from above, so no pair above ``threshold``
is missed, and every candidate is then measured exactly.

:func:`repair_plan` turns the pairs into a list of books to drop (its docstring states the rule);
:func:`audit` runs both on the three shared corpora.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .jsonl import iter_jsonl
from .paths import data_path

SPLITS = {"outer": "corpus_outer", "inner": "corpus_inner", "val": "corpus_val"}
DEFAULT_PRIORITY = ("val", "inner", "outer")
REASON_RANK = {"hash": 0, "text": 1, "title": 2}  # strongest evidence first
GENERIC_AUTHORS = {"", "various", "anonymous", "unknown", "none"}

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_NUMBER = r"(?:\d+|[ivxlc]+|one|two|three|four|five|six|seven|eight|nine|ten)"
_ORDINAL = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)"
_VOLUME = re.compile(
    rf"\b(?:(?:vol|volume|part|pt|book|tome|no|number)\.?\s*{_NUMBER}|{_ORDINAL}\s+(?:part|volume|book)"
    rf"|chapters?\s+\d+(?:\s*(?:to|-)\s*(?:\d+|the\s+last))?)\b"
)
_COMBINING = re.compile(r"[\u0300-\u036f]")  # combining diacritical marks, after NFKD
_MASK64 = (1 << 64) - 1

COLUMNS = [
    "split_a", "id_a", "title_a", "split_b", "id_b", "title_b", "reason", "similarity",
    "containment", "reasons", "is_copy", "chars_a", "chars_b", "words_a", "words_b",
]


@dataclass(frozen=True)
class Book:
    """What the audit needs to know about one book; ``shingles`` is a sorted unique array."""

    split: str
    id: str
    title: str
    author: str
    chars: int
    words: int
    work: str          # normalised title, volume markers removed
    part: str          # the removed volume markers, e.g. "volume 2"; "" for none
    author_key: str    # normalised author
    text_hash: str
    shingles: np.ndarray


# ---------------------------------------------------------------------------- normalisation


def _fold(s: str) -> str:
    """Lowercase ``s`` and strip accents, so that "Émile" and "Emile" compare equal."""
    s = (s or "").lower()
    return s if s.isascii() else _COMBINING.sub("", unicodedata.normalize("NFKD", s))


def normalize_author(author: str) -> str:
    """The author without parenthesised full names and punctuation:
    "Chesterton, G. K. (Gilbert Keith)" -> "chesterton g k"."""
    s = re.sub(r"\([^)]*\)", " ", _fold(author))
    return " ".join(_WORD.findall(s.replace("'", "")))


def split_title(title: str, author: str = "") -> tuple[str, str]:
    """``(work, part)``: the normalised title and the volume/part markers removed from it.

    "Roughing It, Part 6." -> ("roughing it", "part 6"); "The Poems of Jonathan Swift, D.D.,
    Volume 05" -> ("poems of jonathan swift d d", "volume 5"). A leading possessive of the
    author's surname is dropped too ("Shakespeare's Tragedy of ..." -> "tragedy of ...")."""
    s = _fold(title).replace("\u2019", "'")
    parts = [re.sub(r"\b0+(\d)", r"\1", " ".join(m.group(0).replace(".", " ").split())) for m in _VOLUME.finditer(s)]
    s = _VOLUME.sub(" ", s)
    surname = normalize_author(author).split(" ")[0] if author else ""
    if surname:
        s = re.sub(rf"^\s*{re.escape(surname)}'s\b", " ", s)
    words = [w for w in _WORD.findall(s.replace("'", "")) if w not in ("the", "a", "an")]
    return " ".join(words), " ".join(parts)


def text_words(text: str) -> list[str]:
    """The lowercase words of ``text`` (accents folded, punctuation dropped)."""
    return _WORD.findall(_fold(text).replace("\u2019", "'"))


# ---------------------------------------------------------------------------- shingles


def _splitmix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def shingle_hashes(word_ids: np.ndarray, shingle: int, seed: int = 0) -> np.ndarray:
    """Sorted unique 64-bit hashes of all runs of ``shingle`` consecutive word ids.

    A book shorter than ``shingle`` words is one shingle of all its words."""
    ids = np.asarray(word_ids, dtype=np.uint64)
    k = min(shingle, ids.size)
    if k == 0:
        return np.empty(0, dtype=np.uint64)
    n = ids.size - k + 1
    h = np.full(n, np.uint64((0x9E3779B97F4A7C15 * (seed + 1)) & _MASK64))
    with np.errstate(over="ignore"):
        for j in range(k):
            h = _splitmix(h ^ ids[j : j + n])
    return np.unique(h)


def make_book(split: str, record: Mapping, vocab: dict[str, int], shingle: int, seed: int) -> Book:
    """Normalise one corpus record into a :class:`Book`; ``vocab`` maps words to ids and grows."""
    words = text_words(record.get("text", ""))
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), np.uint64, len(words))
    work, part = split_title(record.get("title", ""), record.get("author", ""))
    digest = hashlib.blake2b(" ".join(words).encode(), digest_size=16).hexdigest()
    return Book(
        split=split, id=str(record.get("id", "")), title=record.get("title", ""),
        author=record.get("author", ""), chars=len(record.get("text", "")), words=len(words),
        work=work, part=part, author_key=normalize_author(record.get("author", "")),
        text_hash=digest, shingles=shingle_hashes(ids, shingle, seed),
    )


def load_books(splits: Mapping[str, Iterable[Mapping]], shingle: int = 5, seed: int = 0) -> list[Book]:
    """All books of all splits, in order, sharing one word vocabulary."""
    vocab: dict[str, int] = {}
    return [make_book(name, rec, vocab, shingle, seed) for name, recs in splits.items() for rec in recs]


# ---------------------------------------------------------------------------- candidate pairs


def _pairs_of_runs(books_sorted: np.ndarray, starts: np.ndarray, d: int) -> np.ndarray:
    """All (i, j) book pairs, i < j, within runs of exactly ``d`` equal shingles."""
    rows = books_sorted[starts[:, None] + np.arange(d)]
    rows.sort(axis=1)
    a, b = np.triu_indices(d, 1)
    return np.stack([rows[:, a].ravel(), rows[:, b].ravel()], axis=1)


def shared_rare_counts(books: list[Book], max_df: int) -> tuple[dict[tuple[int, int], int], np.ndarray]:
    """For every pair of books sharing a shingle found in 2..``max_df`` books: how many such
    shingles they share. Also returns, per book, its number of shingles in more than ``max_df``
    books (the *common* ones left out of the count)."""
    sizes = np.array([b.shingles.size for b in books])
    if sizes.sum() == 0:
        return {}, np.zeros(len(books), dtype=np.int64)
    owner = np.repeat(np.arange(len(books)), sizes)
    allsh = np.concatenate([b.shingles for b in books])
    order = np.argsort(allsh, kind="stable")
    allsh, owner = allsh[order], owner[order]
    starts = np.flatnonzero(np.r_[True, allsh[1:] != allsh[:-1]])
    df = np.diff(np.r_[starts, allsh.size])
    common = np.bincount(owner[np.repeat(df > max_df, df)], minlength=len(books))
    chunks = [_pairs_of_runs(owner, starts[df == d], d) for d in range(2, max_df + 1) if (df == d).any()]
    if not chunks:
        return {}, common
    pairs = np.concatenate(chunks)
    keys, counts = np.unique(pairs[:, 0] * len(books) + pairs[:, 1], return_counts=True)
    shared = {(int(k // len(books)), int(k % len(books))): int(c) for k, c in zip(keys, counts)}
    return shared, common


def text_candidates(books: list[Book], threshold: float, max_df: int) -> set[tuple[int, int]]:
    """Pairs whose containment *can* reach ``threshold`` (an upper bound, so none is missed)."""
    shared, common = shared_rare_counts(books, max_df)
    sizes = np.array([b.shingles.size for b in books])
    out = set()
    for (i, j), c in shared.items():
        smaller = min(sizes[i], sizes[j])
        if smaller and (c + min(common[i], common[j])) / smaller >= threshold:
            out.add((i, j))
    for i in np.flatnonzero((sizes > 0) & (common >= threshold * np.maximum(sizes, 1))):
        out.update((min(i, j), max(i, j)) for j in range(len(books)) if j != i)  # boilerplate-only books
    return out


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Exact ``(jaccard, containment)`` of two sorted unique shingle arrays."""
    if a.size == 0 or b.size == 0:
        return 0.0, 0.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter), inter / min(a.size, b.size)


def _grouped_pairs(keys: list) -> set[tuple[int, int]]:
    """All index pairs (i < j) with equal, non-None ``keys[i] == keys[j]``."""
    groups: dict = {}
    for i, k in enumerate(keys):
        if k is not None:
            groups.setdefault(k, []).append(i)
    return {(a, b) for g in groups.values() for n, a in enumerate(g) for b in g[n + 1 :]}


def title_pairs(books: list[Book]) -> set[tuple[int, int]]:
    """Pairs with the same normalised title and the same non-generic author."""
    return _grouped_pairs([
        (b.work, b.author_key) if b.work and b.author_key not in GENERIC_AUTHORS else None for b in books
    ])


def hash_pairs(books: list[Book]) -> set[tuple[int, int]]:
    """Pairs whose normalised texts are identical (empty texts are never a match)."""
    return _grouped_pairs([b.text_hash if b.words else None for b in books])


# ---------------------------------------------------------------------------- the audit


def _pair_row(a: Book, b: Book, reasons: list[str]) -> dict:
    """One output row; ``is_copy`` says the two hold the same text, not two parts of a work."""
    jac, cont = overlap(a.shingles, b.shingles)
    reasons = sorted(reasons, key=REASON_RANK.get)
    return dict(
        split_a=a.split, id_a=a.id, title_a=a.title, split_b=b.split, id_b=b.id, title_b=b.title,
        reason=reasons[0], similarity=round(jac, 4), containment=round(cont, 4),
        reasons="+".join(reasons), is_copy=reasons != ["title"] or a.part == b.part,
        chars_a=a.chars, chars_b=b.chars, words_a=a.words, words_b=b.words,
    )


def find_duplicates(
    splits: Mapping[str, Iterable[Mapping]],
    threshold: float = 0.5,
    shingle: int = 5,
    max_df: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """Every pair of books, within and across ``splits`` (name -> corpus records), that is the
    same work by title, an exact copy by text hash, or a near-copy by shingle containment
    ``>= threshold`` (see the module docstring). One row per pair; ``reason`` is the strongest
    evidence (hash, then text, then title), ``reasons`` all of it; ``similarity`` is the exact
    Jaccard similarity of the shingle sets and ``containment`` the share of the smaller book's
    shingles found in the larger one (both computed for title matches too). ``is_copy`` is False
    only for a title match of two different parts ("Volume 1" and "Volume 2")."""
    books = load_books(splits, shingle, seed)
    by_reason = {"title": title_pairs(books), "hash": hash_pairs(books)}
    by_reason["text"] = {
        (i, j) for i, j in text_candidates(books, threshold, max_df)
        if overlap(books[i].shingles, books[j].shingles)[1] >= threshold
    }
    reasons: dict[tuple[int, int], list[str]] = {}
    for reason, pairs in by_reason.items():
        for p in pairs:
            reasons.setdefault(p, []).append(reason)
    rows = [_pair_row(books[i], books[j], r) for (i, j), r in sorted(reasons.items())]
    return pd.DataFrame(rows, columns=COLUMNS)


# ---------------------------------------------------------------------------- the repair plan


def _book_table(duplicates: pd.DataFrame) -> pd.DataFrame:
    """One row per book named in ``duplicates``, indexed by "split/id", with title and size."""
    sides = [
        duplicates[[f"split_{s}", f"id_{s}", f"title_{s}", f"chars_{s}", f"words_{s}"]]
        .set_axis(["split", "id", "title", "chars", "words"], axis=1)
        for s in "ab"
    ]
    books = pd.concat(sides).drop_duplicates(["split", "id"])
    return books.set_index(books["split"] + "/" + books["id"].astype(str))


def _links(duplicates: pd.DataFrame, keep_parts: bool) -> dict[str, dict[str, dict]]:
    """Book key -> {linked book key -> pair row}; with ``keep_parts`` title-only links between
    different parts of a work are left out."""
    links: dict[str, dict[str, dict]] = {}
    for r in duplicates.to_dict("records"):
        if keep_parts and not r["is_copy"]:
            continue
        a, b = f"{r['split_a']}/{r['id_a']}", f"{r['split_b']}/{r['id_b']}"
        links.setdefault(a, {})[b] = r
        links.setdefault(b, {})[a] = r
    return links


def _strongest(candidates: dict[str, dict]) -> str:
    """The key whose pair row is the strongest evidence (hash, text, title; then containment)."""
    return min(candidates, key=lambda k: (REASON_RANK[candidates[k]["reason"]], -candidates[k]["containment"], k))


def _split_order(splits: Iterable[str], priority: Iterable[str]) -> list[str]:
    """``splits`` in the order of ``priority``; splits it does not name come last, alphabetically."""
    order = list(priority)
    return sorted(set(splits), key=lambda s: (order.index(s), "") if s in order else (len(order), s))


def _drop_row(book: pd.Series, rule: str, other: pd.Series, pair: dict) -> dict:
    """One row of the plan: ``book`` is dropped because of its ``pair`` with the kept ``other``."""
    evidence = f"{pair['reasons']} (containment {pair['containment']:.2f}, Jaccard {pair['similarity']:.2f})"
    return dict(
        split=book["split"], id=book["id"], title=book["title"], chars=int(book["chars"]),
        words=int(book["words"]), rule=rule, kept_split=other["split"], kept_id=other["id"],
        kept_title=other["title"], evidence=evidence,
    )


def _verdict(near: dict[str, dict], split: str, kept: dict[str, str], books: pd.DataFrame):
    """Why a book of ``split`` with pairs ``near`` must go, as ``(rule, kept key, pair)``, or
    None to keep it (the rules of :func:`repair_plan`)."""
    earlier = {k: r for k, r in near.items() if k in kept and kept[k] != split}
    if earlier:
        other = _strongest(earlier)
        return f"work kept in {books.loc[other, 'split']}", other, earlier[other]
    twins = {k: r for k, r in near.items() if kept.get(k) == split and r["is_copy"]}
    if twins:
        other = _strongest(twins)
        return "copy within split", other, twins[other]
    return None


PLAN_COLUMNS = ["split", "id", "title", "chars", "words", "rule", "kept_split", "kept_id", "kept_title", "evidence"]


def repair_plan(
    duplicates: pd.DataFrame, priority: Iterable[str] = DEFAULT_PRIORITY, keep_parts: bool = False
) -> pd.DataFrame:
    """Which books to drop so that no work is in two splits and no split holds two copies.

    The rule: splits are settled one after another in the order of ``priority`` (val, then
    inner, then outer: the smaller a split, the more each of its books is worth, and the
    validation set must stay clean; splits not named come last). Within a split, books are taken
    longest first (ties: smaller id), and a book is dropped when it is paired in ``duplicates``

    1. with a book already kept in an earlier split ("work kept in <split>"): a copy, a
       near-copy, an omnibus holding the work, or another part of it, or
    2. with a book already kept in its own split, *as a copy* (``is_copy``: the same text by hash
       or shingles, or the same title and part) ("copy within split"); two different parts of
       one work in one split are not copies and both stay.

    Otherwise it is kept. Afterwards no pair of kept books breaks either condition. Only direct
    pairs count: a story kept in outer because the omnibus it was paired with was dropped is
    no longer a duplicate of anything kept. ``keep_parts=True`` also lets different parts of one
    work ("Volume 1", "Volume 2") stay in different splits, if their texts do not overlap.

    One row per dropped book, with the rule, the kept book it yields to (the strongest pair) and
    that pair's evidence.
    """
    if duplicates.empty:
        return pd.DataFrame(columns=PLAN_COLUMNS)
    books = _book_table(duplicates)
    links = _links(duplicates, keep_parts)
    kept: dict[str, str] = {}  # book key -> its split, for the books kept so far
    rows = []
    for split in _split_order(books["split"], priority):
        mine = books[books["split"] == split]
        for key in sorted(mine.index, key=lambda k: (-int(mine.loc[k, "words"]), str(mine.loc[k, "id"]))):
            verdict = _verdict(links.get(key, {}), split, kept, books)
            if verdict is None:
                kept[key] = split
            else:
                rule, other, pair = verdict
                rows.append(_drop_row(books.loc[key], rule, books.loc[other], pair))
    plan = pd.DataFrame(rows, columns=PLAN_COLUMNS)
    return plan.sort_values(["split", "id"], key=lambda s: s.map(str)).reset_index(drop=True)


def plan_summary(plan: pd.DataFrame) -> pd.DataFrame:
    """Books, words and characters each split loses under ``plan``."""
    return plan.groupby("split").agg(books=("id", "size"), words=("words", "sum"), chars=("chars", "sum"))


def read_corpora(data_dir: str | os.PathLike | None = None) -> dict[str, list[dict]]:
    """The three shared corpora, split name -> list of records."""
    return {name: list(iter_jsonl(data_path(key, data_dir))) for name, key in SPLITS.items()}


def write_exclusions(path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Write the repair plan of the shared corpora (:func:`audit`) as the list of books that
    ``data.exclude`` leaves out (``connectome_lib/profiles/corpus_exclusions.csv`` for
    ``exclude: duplicates``); return it."""
    from .layout import write_csv_atomic

    plan = audit(data_dir)[1]
    write_csv_atomic(plan, path)
    return plan


def audit(data_dir: str | os.PathLike | None = None, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(duplicates, plan)`` for the shared outer, inner and val corpora; ``kwargs`` go to
    :func:`find_duplicates`."""
    duplicates = find_duplicates(read_corpora(data_dir), **kwargs)
    return duplicates, repair_plan(duplicates)
