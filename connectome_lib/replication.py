"""Tests whose unit of replication is a training procedure's replicate, not an item.

The paper's claim is about *procedures*: "a model that inherits an evolved connectome learns
better than one that inherits a random connectome, or none". Its replicates are independent
connectomes (one outer-loop run each) and independent inner-loop seeds -- never the items of a
benchmark: two seeds of the *same* model type differ on almost every item-level test, so such a
test detects that two trained models differ, not that two procedures do.

The procedure here, for one measure and two model types ``a`` and ``b``:

1. **Unit means.** Each model's value (e.g. its final validation loss) is averaged within its
   *unit* -- the connectome (or random draw) it came from for Connectome and the random
   controls, the inner seed for NoConnectome -- so that every unit counts once, however many
   inner seeds it has (:func:`unit_means`).
2. **An exact test across units.** The difference of the two groups' unit means is tested by
   an exact two-sample permutation test over units (:func:`unit_test`, ``scipy.stats.permutation_test``
   with every relabelling enumerated when there are at most ``max_exact`` of them, else at
   least 10,000 random ones), with a Welch t confidence interval for the difference.
3. **Equivalence from the interval.** Where the test does not reject, "differences larger than
   X are excluded (95 %)" with X the interval's larger absolute bound -- never post-hoc power.
4. **A placebo.** The same test on two halves of one model type's units (:func:`placebo`):
   over every split, it should reject in about ``alpha`` of them on average; it *fires* above
   twice that (:attr:`Placebo.fires`), and a verdict counts only if it does not
   (:func:`verdict`). With few units it cannot fire at all (:attr:`Placebo.can_fire`).
5. **Calibration.** :func:`simulated_false_positive_rate` runs the whole procedure on data
   simulated under the null (unit effects and seed noise, no difference between types) and
   returns its rejection rate, which the tests require to be at most 5 %.

Item-level descriptions of one model pair stay available in :mod:`connectome_lib.stats`; where
items are dependent they are resampled in clusters (:func:`connectome_lib.stats.cluster_bootstrap`: validation
windows by book, Natural Stories words by story, MMLU questions by subject, BLiMP pairs by
paradigm).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: at most this many relabellings are enumerated exactly; above it, random permutations
MAX_EXACT = 100_000
#: a placebo fires when it rejects in more than this many times ``alpha`` of its splits
FIRE_FACTOR = 2
#: random permutations or bootstrap resamples when exact enumeration is too large
N_RESAMPLES = 10_000


@dataclass(frozen=True)
class UnitTest:
    """The result of :func:`unit_test` for group ``a`` against group ``b``."""

    a: str
    b: str
    n_a: int  # units of a
    n_b: int
    mean_a: float
    mean_b: float
    effect: float  # mean_a - mean_b
    ci_low: float
    ci_high: float
    p: float
    exact: bool  # every relabelling enumerated
    min_p: float  # the smallest p-value this design allows

    @property
    def excluded_beyond(self) -> float:
        """Differences larger than this (in absolute value) are excluded at 95 %."""
        return float(max(abs(self.ci_low), abs(self.ci_high)))

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["excluded_beyond"] = self.excluded_beyond
        return d


def unit_means(models: pd.DataFrame, value: str = "value", label: str = "label", unit: str = "unit") -> pd.DataFrame:
    """One row per (``label``, ``unit``): the mean of ``value`` over the unit's models and how
    many models (inner seeds) it holds (``n_models``)."""
    for col in (value, label, unit):
        if col not in models.columns:
            raise KeyError(f"unit_means needs a {col!r} column; got {list(models.columns)}")
    g = models.groupby([label, unit], sort=True)[value]
    return g.agg(value="mean", n_models="count").reset_index().rename(columns={label: "label", unit: "unit"})


def _n_relabellings(n_a: int, n_b: int) -> int:
    return math.comb(n_a + n_b, n_a)


def unit_test(x_a: Sequence[float], x_b: Sequence[float], a: str = "a", b: str = "b", alpha: float = 0.05,
              max_exact: int = MAX_EXACT, n_resamples: int = N_RESAMPLES, seed: int = 0) -> UnitTest:
    """Exact (or, for large groups, ``n_resamples``-permutation) two-sided test of the difference
    of means of two groups of unit means, with a Welch t interval at level ``1 - alpha``."""
    xa, xb = np.asarray(x_a, dtype=float), np.asarray(x_b, dtype=float)
    if xa.size < 2 or xb.size < 2:
        raise ValueError(f"a test across units needs at least 2 units per group; got {xa.size} ({a}) and "
                         f"{xb.size} ({b})")
    if not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        raise ValueError(f"non-finite unit means for {a} or {b}")
    n_perm = _n_relabellings(xa.size, xb.size)
    exact = n_perm <= max_exact

    def diff(u, v, axis=-1):
        return np.mean(u, axis=axis) - np.mean(v, axis=axis)

    res = stats.permutation_test((xa, xb), diff, permutation_type="independent", alternative="two-sided",
                                 n_resamples=np.inf if exact else n_resamples, vectorized=True,
                                 rng=np.random.default_rng(seed))
    effect = float(xa.mean() - xb.mean())
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size  # squared standard errors
    half = 0.0
    if va + vb > 0:  # Welch-Satterthwaite degrees of freedom
        df = (va + vb) ** 2 / (va ** 2 / (xa.size - 1) + vb ** 2 / (xb.size - 1))
        half = float(stats.t.ppf(1 - alpha / 2, df)) * math.sqrt(va + vb)
    min_p = min(1.0, 2.0 / n_perm) if exact else 1.0 / (n_resamples + 1)
    return UnitTest(a, b, int(xa.size), int(xb.size), float(xa.mean()), float(xb.mean()), effect,
                    effect - half, effect + half, float(res.pvalue), exact, float(min_p))


def compare_types(units: pd.DataFrame, a: str, b: str, alpha: float = 0.05, seed: int = 0) -> UnitTest:
    """:func:`unit_test` of model type ``a`` against ``b`` on a :func:`unit_means` table."""
    xa = units.loc[units["label"] == a, "value"].to_numpy()
    xb = units.loc[units["label"] == b, "value"].to_numpy()
    return unit_test(xa, xb, a, b, alpha=alpha, seed=seed)


@dataclass(frozen=True)
class Placebo:
    """The test applied to two halves of one model type's units, over every split."""

    label: str
    n_units: int
    n_splits: int
    rejections: int
    alpha: float

    @property
    def rate(self) -> float:
        return self.rejections / self.n_splits if self.n_splits else float("nan")

    #: the rejection rate of the same splits on the most split-prone data there is (the units in
    #: two clean clusters): the most this placebo could ever report
    max_rate: float = float("nan")

    @property
    def can_fire(self) -> bool:
        """Whether this many units allow the placebo to fire (:attr:`fires`) at all. With 2 + 2
        units no split reaches p <= 0.05; with 4 + 4 only the split along two clusters does (1 of
        35): such a placebo is silent by construction, not by calibration, and says nothing
        about the test."""
        return bool(self.n_splits) and self.max_rate > FIRE_FACTOR * self.alpha

    @property
    def fires(self) -> bool:
        """Whether the placebo rejects in more than ``FIRE_FACTOR * alpha`` of its splits (the test
        is not calibrated here). Under the null each split is a test at level ``alpha``, so the
        rate averages at most ``alpha``, but the splits share their units and the rate of one run
        scatters around it (with 12 normal units, 0.06 is common); a miscalibrated test -- one
        that rejects because two *models* differ, as item-level tests do -- rejects in most splits."""
        return self.n_splits > 0 and self.rate > FIRE_FACTOR * self.alpha


def placebo(units: pd.DataFrame, label: str, alpha: float = 0.05, max_splits: int = 200, seed: int = 0) -> Placebo:
    """Split the units of ``label`` into two halves in every way (at most ``max_splits`` random
    ways, each split counted once), test the halves against each other with :func:`unit_test`
    and count the rejections at ``alpha``. Needs at least 4 units."""
    x = units.loc[units["label"] == label, "value"].to_numpy(dtype=float)
    n = x.size
    if n < 4:
        return Placebo(label, n, 0, 0, alpha)
    half = n // 2
    splits = [c for c in itertools.combinations(range(n), half) if 0 in c]  # each split once
    if len(splits) > max_splits:
        rng = np.random.default_rng(seed)
        splits = [splits[i] for i in rng.choice(len(splits), max_splits, replace=False)]
    def rejections(values: np.ndarray) -> int:
        count = 0
        for k, idx in enumerate(splits):
            mask = np.zeros(n, bool)
            mask[list(idx)] = True
            count += unit_test(values[mask], values[~mask], alpha=alpha, seed=seed + k).p <= alpha
        return count

    clusters = np.r_[np.zeros(half), np.ones(n - half)] + np.arange(n) * 1e-6  # distinct values
    return Placebo(label, n, len(splits), rejections(x), alpha, max_rate=rejections(clusters) / len(splits))


def verdict(test: UnitTest, placebo_result: Placebo | None, higher_is_better: bool, alpha: float = 0.05,
            testable: bool = True) -> str:
    """``better``/``worse`` (for ``test.a``), ``indistinguishable``, ``not testable at this scale``
    (the measure cannot discriminate, or the design allows no p-value at or below ``alpha``) or
    ``placebo fires`` (the test rejects two groups of the same type: no verdict)."""
    if not testable or test.min_p > alpha:
        return "not testable at this scale"
    if placebo_result is not None and placebo_result.fires:
        return "placebo fires"
    if test.p > alpha:
        return "indistinguishable"
    return "better" if (test.effect > 0) == higher_is_better else "worse"


def simulated_false_positive_rate(n_units_a: int, n_units_b: int, seeds_per_unit: int, n_sim: int = 500,
                                  unit_sd: float = 1.0, seed_sd: float = 1.0, alpha: float = 0.05,
                                  seed: int = 0) -> float:
    """The rejection rate of :func:`unit_test` (through :func:`unit_means`) on ``n_sim`` data sets
    simulated under the null: every model's value is a unit effect (sd ``unit_sd``) plus seed
    noise (sd ``seed_sd``), with no difference between the two types."""
    rng = np.random.default_rng(seed)
    rejections = 0
    for k in range(n_sim):
        rows = []
        for label, n_units in (("a", n_units_a), ("b", n_units_b)):
            for u in range(n_units):
                effect = rng.normal(0, unit_sd)
                rows += [{"label": label, "unit": u, "value": effect + rng.normal(0, seed_sd)}
                         for _ in range(seeds_per_unit)]
        units = unit_means(pd.DataFrame(rows))
        if compare_types(units, "a", "b", alpha=alpha, seed=k).p <= alpha:
            rejections += 1
    return rejections / n_sim
