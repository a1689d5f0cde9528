"""Result containers shared by every task: tidy metric rows plus optional detail tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Metric:
    """One number: ``metric`` (e.g. ``acc``, ``acc/abstract_algebra``, ``r_layer3``), its value
    and ``n``, the number of items it averages over (``None`` where meaningless)."""

    metric: str
    value: float
    n: int | None = None


@dataclass
class TaskResult:
    """What one task returns: its metrics, free-form metadata (options used, provenance) and,
    for some tasks, a per-item table for plots (e.g. Futrell2018's per-word surprisal)."""

    task: str
    metrics: list[Metric] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    table: pd.DataFrame | None = None

    def add(self, metric: str, value: float, n: int | None = None) -> None:
        self.metrics.append(Metric(metric, float(value), n))

    def value(self, metric: str) -> float:
        """The value of a metric by name (``KeyError`` if absent)."""
        for m in self.metrics:
            if m.metric == metric:
                return m.value
        raise KeyError(f"{self.task} has no metric {metric!r}; it has {[m.metric for m in self.metrics]}")

    def as_dict(self) -> dict[str, float]:
        return {m.metric: m.value for m in self.metrics}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"task": self.task, "metric": m.metric, "value": m.value, "n": m.n} for m in self.metrics]
        )


# --------------------------------------------------------------------------------------------
# the results file

#: the columns of an evaluation results file (``results.csv``), in order
RESULT_COLUMNS = ["model", "init", "label", "seed", "iteration", "task", "metric", "value", "n"]
#: columns that must hold a whole number on every row, and columns that must hold a number (or be empty)
_INTEGER_COLUMNS, _NUMBER_COLUMNS = ("seed", "iteration"), ("value", "n")
_TEXT_COLUMNS = ("model", "task", "metric")
RECOMPUTE = "delete the file and run the evaluation again to recompute its rows"


def read_results_csv(path) -> pd.DataFrame:
    """The rows of a results file, exactly as ``pandas.read_csv`` reads them, after checking
    them: a file that cannot be parsed, lacks a column or holds a damaged row (no model, task or
    metric; a seed or iteration that is not a whole number; a value that is not a number) is a
    :class:`~connectome_lib.jsonl.DataFileError` naming the file and the line."""
    from ..jsonl import read_csv_file

    df = read_csv_file(path, RESULT_COLUMNS, fix=RECOMPUTE, keep_default_na=True)
    problem = _first_damaged_row(df)
    if problem is not None:
        row, what = problem
        from ..jsonl import DataFileError

        raise DataFileError(f"{path}:{row + 2}: damaged results row ({what}); delete that line, or {RECOMPUTE}")
    return df


def _first_damaged_row(df: pd.DataFrame) -> tuple[int, str] | None:
    """``(row index, what is wrong)`` of the first damaged row of a results table, or ``None``."""
    import numpy as np

    bad: dict[int, str] = {}
    for col in _TEXT_COLUMNS:
        for i in np.flatnonzero(df[col].isna().to_numpy()):
            bad.setdefault(int(i), f"no {col}")
    for col in _INTEGER_COLUMNS + _NUMBER_COLUMNS:
        values = pd.to_numeric(df[col], errors="coerce")
        not_number = values.isna() & df[col].notna()
        if col in _INTEGER_COLUMNS:
            not_number |= values.isna() | (values.notna() & (values % 1 != 0))
        for i in np.flatnonzero(not_number.to_numpy()):
            shown = df[col].iloc[i]
            bad.setdefault(int(i), f"{col} is {'empty' if pd.isna(shown) else repr(shown)}, not "
                           f"{'a whole number' if col in _INTEGER_COLUMNS else 'a number'}")
    if not bad:
        return None
    first = min(bad)
    return first, bad[first]
