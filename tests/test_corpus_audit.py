"""corpus_audit: duplicate works across and within corpus splits (issue 17).

Synthetic books are random word sequences over a made-up vocabulary, so that unrelated books
share (almost) no 5-shingles and every planted overlap is known exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectome_lib import corpus_audit as ca
from connectome_lib.paths import DataMissingError, data_path


def _vocab(rng: np.random.Generator, n: int = 4000) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(["".join(rng.choice(letters, rng.integers(3, 9))) for _ in range(n)])


def _text(rng, vocab, n_words: int) -> list[str]:
    return list(rng.choice(vocab, n_words))


def _mutate(rng, vocab, words: list[str], share: float) -> list[str]:
    """``words`` with ``share`` of them replaced by random words."""
    out = list(words)
    for i in rng.choice(len(out), int(share * len(out)), replace=False):
        out[i] = str(rng.choice(vocab))
    return out


def _book(id_: str, title: str, author: str, words: list[str]) -> dict:
    lines = [" ".join(words[i : i + 12]) + "." for i in range(0, len(words), 12)]
    return {"id": id_, "author": author, "title": title, "text": "\n\n".join(lines)}


def _pairs(df: pd.DataFrame) -> set[frozenset]:
    return {frozenset((a, b)) for a, b in zip(df["id_a"], df["id_b"])}


def _no_duplicates_left(duplicates: pd.DataFrame, plan: pd.DataFrame, keep_parts: bool = False) -> bool:
    """The promise of repair_plan: no remaining pair crosses splits or is a copy within one."""
    dropped = set(zip(plan["split"], plan["id"]))
    for r in duplicates.to_dict("records"):
        if (r["split_a"], r["id_a"]) in dropped or (r["split_b"], r["id_b"]) in dropped:
            continue
        if keep_parts and not r["is_copy"]:
            continue
        if r["split_a"] != r["split_b"] or r["is_copy"]:
            return False
    return True


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[dict]]:
    """Planted cases: exact copy, 10 % near-copy, omnibus, parts, same title by other authors,
    a copy within one split, and unrelated books."""
    rng = np.random.default_rng(0)
    v = _vocab(rng)
    alpha, beta, gamma, delta = (_text(rng, v, 3000) for _ in range(4))
    story1, story2 = _text(rng, v, 2500), _text(rng, v, 2500)
    exact = " ".join(alpha).upper()  # same words, other case and line breaks
    return {
        "val": [
            _book("v-alpha", "Alpha", "Smith, Ann", alpha),
            _book("v-gamma", "Gamma: A Play", "Jones, Bob", gamma),
            _book("v-other", "Unrelated Val", "Doe, Jane", _text(rng, v, 3000)),
        ],
        "inner": [
            _book("i-beta", "Beta", "Brown, Cy", beta),
            _book("i-poems", "Poems", "Keats, John", _text(rng, v, 2000)),
            _book("i-saga1", "The Saga, Volume 1", "Lang, Dora", _text(rng, v, 2000)),
            _book("i-other", "Unrelated Inner", "Roe, Ed", _text(rng, v, 3000)),
        ],
        "outer": [
            {"id": "o-alpha", "author": "Unknown", "title": "Something Else", "text": exact},
            _book("o-beta", "Beta Revisited", "Brown, C.", _mutate(rng, v, beta, 0.10)),
            _book("o-omnibus", "Collected Works", "Jones, Bob", story1 + gamma + story2),
            _book("o-poems", "Poems", "Shelley, Percy", _text(rng, v, 2000)),
            _book("o-saga2", "Saga — Vol. II.", "Lang, Dora (Dorothea)", _text(rng, v, 2000)),
            _book("o-delta", "Delta", "Grey, Fay", delta),
            _book("o-delta2", "DELTA!", "Grey, Fay", _mutate(rng, v, delta, 0.02)[:2500]),
            _book("o-other", "Unrelated Outer", "Poe, Gil", _text(rng, v, 3000)),
        ],
    }


@pytest.fixture(scope="module")
def duplicates(corpus) -> pd.DataFrame:
    return ca.find_duplicates(corpus)


def test_split_title_strips_articles_punctuation_and_parts():
    assert ca.split_title("Roughing It, Part 6.") == ("roughing it", "part 6")
    assert ca.split_title("The Poems of Jonathan Swift, D.D., Volume 2") == ("poems of jonathan swift d d", "volume 2")
    assert ca.split_title("Original Short Stories — Volume 05") == ("original short stories", "volume 5")
    assert ca.split_title("King Henry IV, Second Part") == ("king henry iv", "second part")
    assert ca.split_title("Shakespeare's Tragedy of Romeo and Juliet", "Shakespeare, William") == (
        "tragedy of romeo and juliet", "")
    assert ca.split_title("The Woggle-Bug Book") == ("woggle bug book", "")
    assert ca.normalize_author("Zola, Émile") == ca.normalize_author("Zola, Emile") == "zola emile"
    assert ca.normalize_author("Chesterton, G. K. (Gilbert Keith)") == "chesterton g k"


def test_overlap_is_exact_jaccard_and_containment():
    a, b = np.array([1, 2, 3, 4], np.uint64), np.array([3, 4, 5, 6, 7, 8], np.uint64)
    assert ca.overlap(a, b) == (2 / 8, 2 / 4)
    assert ca.overlap(a, np.empty(0, np.uint64)) == (0.0, 0.0)


def test_finds_exactly_the_planted_pairs(duplicates):
    assert list(duplicates.columns) == ca.COLUMNS
    assert _pairs(duplicates) == {
        frozenset(p) for p in [
            ("v-alpha", "o-alpha"), ("i-beta", "o-beta"), ("v-gamma", "o-omnibus"),
            ("i-saga1", "o-saga2"), ("o-delta", "o-delta2"),
        ]
    }


def _row(duplicates, a, b) -> dict:
    hit = duplicates[duplicates[["id_a", "id_b"]].apply(frozenset, axis=1) == frozenset((a, b))]
    assert len(hit) == 1
    return hit.iloc[0].to_dict()


def test_each_pair_has_its_reason_and_measures(duplicates):
    exact = _row(duplicates, "v-alpha", "o-alpha")
    assert (exact["reason"], exact["similarity"], exact["containment"]) == ("hash", 1.0, 1.0)
    near = _row(duplicates, "i-beta", "o-beta")
    assert near["reason"] == "text" and near["is_copy"]
    assert 0.35 < near["similarity"] < 0.5 < near["containment"] < 0.7  # 0.9**5 ≈ 0.59 of shingles intact
    omnibus = _row(duplicates, "v-gamma", "o-omnibus")
    assert omnibus["reason"] == "text" and omnibus["containment"] > 0.99 and omnibus["similarity"] < 0.4
    parts = _row(duplicates, "i-saga1", "o-saga2")
    assert (parts["reasons"], parts["is_copy"]) == ("title", False) and parts["containment"] < 0.05
    edition = _row(duplicates, "o-delta", "o-delta2")
    assert edition["reasons"] == "text+title" and edition["split_a"] == edition["split_b"] == "outer"


def test_same_title_by_different_authors_is_not_a_duplicate(duplicates):
    ids = set(duplicates["id_a"]) | set(duplicates["id_b"])
    assert not ids & {"i-poems", "o-poems", "v-other", "i-other", "o-other"}


def test_repair_plan_keeps_val_then_inner(duplicates):
    plan = ca.repair_plan(duplicates)
    assert list(plan.columns) == ca.PLAN_COLUMNS
    dropped = dict(zip(plan["id"], plan["rule"]))
    assert dropped == {
        "o-alpha": "work kept in val", "o-omnibus": "work kept in val", "o-beta": "work kept in inner",
        "o-saga2": "work kept in inner", "o-delta2": "copy within split",
    }
    assert plan.set_index("id").loc["o-delta2", "kept_id"] == "o-delta"  # the longer copy stays
    assert _no_duplicates_left(duplicates, plan)


def test_repair_plan_priority_and_parts(duplicates):
    flipped = ca.repair_plan(duplicates, priority=("outer", "inner", "val"))
    assert set(flipped["id"]) == {"v-alpha", "v-gamma", "i-beta", "i-saga1", "o-delta2"}
    assert _no_duplicates_left(duplicates, flipped)
    parts_stay = ca.repair_plan(duplicates, keep_parts=True)
    assert "o-saga2" not in set(parts_stay["id"]) and "o-beta" in set(parts_stay["id"])
    assert _no_duplicates_left(duplicates, parts_stay, keep_parts=True)


def test_only_direct_pairs_drop_a_book():
    """A story paired only with an omnibus that is itself dropped stays."""
    rng = np.random.default_rng(1)
    v = _vocab(rng, 2000)
    s1, s2 = _text(rng, v, 1500), _text(rng, v, 1500)
    splits = {
        "val": [_book("v-s1", "Story One", "A, B", s1)],
        "outer": [_book("o-omni", "Tales", "A, B", s1 + s2), _book("o-s2", "Story Two", "A, B", s2)],
    }
    duplicates = ca.find_duplicates(splits)
    assert _pairs(duplicates) == {frozenset(("v-s1", "o-omni")), frozenset(("o-omni", "o-s2"))}
    assert set(ca.repair_plan(duplicates)["id"]) == {"o-omni"}


def test_empty_input_gives_empty_tables():
    duplicates = ca.find_duplicates({"val": [], "outer": [{"id": "x", "title": "", "author": "", "text": ""}]})
    assert duplicates.empty and list(duplicates.columns) == ca.COLUMNS
    assert ca.repair_plan(duplicates).empty


def _have_corpora() -> bool:
    try:
        return all(data_path(k).exists() for k in ca.SPLITS.values())
    except DataMissingError:
        return False


@pytest.fixture(scope="module")
def shared_audit():
    """``audit()`` of the shared corpora, once for the tests below (about a minute)."""
    if not _have_corpora():
        pytest.skip("shared Gutenberg corpora not available")
    return ca.audit()


@pytest.mark.slow
@pytest.mark.skipif(not _have_corpora(), reason="shared Gutenberg corpora not available")
def test_audit_of_the_shared_corpora(shared_audit):
    """The crossings the issue names, as verified on the shared data (about a minute)."""
    duplicates, plan = shared_audit
    pairs = _pairs(duplicates)
    romeo_val, romeo_outer = "5e4525206239", {"5d3cc1ddcb69", "087102649f81"}
    assert {frozenset((romeo_val, o)) for o in romeo_outer} <= pairs
    rough = {"inner": "2408a934c433", "outer": "ba4fabae3bb7", "val": "4787460ff03b"}
    assert {frozenset((rough["inner"], rough["val"])), frozenset((rough["inner"], rough["outer"])),
            frozenset((rough["outer"], rough["val"]))} <= pairs
    dropped = set(zip(plan["split"], plan["id"]))
    assert {("outer", o) for o in romeo_outer} | {("inner", rough["inner"]), ("outer", rough["outer"])} <= dropped
    assert "val" not in set(plan["split"])
    assert _no_duplicates_left(duplicates, plan)


@pytest.mark.slow
@pytest.mark.skipif(not _have_corpora(), reason="shared Gutenberg corpora not available")
def test_the_committed_exclusion_list_is_the_repair_plan_of_the_shared_corpora(shared_audit, tmp_path):
    """``data.exclude: duplicates`` reads profiles/corpus_exclusions.csv: it must be exactly
    what write_exclusions writes today (regenerate it with
    ``corpus_audit.write_exclusions(DUPLICATES_FILE)`` if the corpora or the rules change)."""
    from connectome_lib.data import DUPLICATES_FILE
    from connectome_lib.layout import write_csv_atomic

    plan = shared_audit[1]
    committed = pd.read_csv(DUPLICATES_FILE, dtype=str, keep_default_na=False)
    expected = plan.astype(str)
    assert list(committed.columns) == ca.PLAN_COLUMNS
    assert {"split", "id", "title", "rule", "kept_split", "kept_id", "kept_title"} <= set(committed.columns)
    pd.testing.assert_frame_equal(committed, expected.reset_index(drop=True))
    write_csv_atomic(plan, tmp_path / "plan.csv")  # the same writer: byte for byte
    assert (tmp_path / "plan.csv").read_bytes() == DUPLICATES_FILE.read_bytes()
    assert "val" not in set(committed["split"])  # the validation books are all kept
