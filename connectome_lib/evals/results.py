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
