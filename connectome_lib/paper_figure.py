"""The paper's main figure beside ours: one row per panel for which the paper reports numbers,
the paper's values on the left ("Paper (FineWeb, 162M model)"), this run's on the right.

Each axis is zoomed to its own data: the paper trains a 162M model on FineWeb, a profile here is
far smaller and validates on Gutenberg, so the levels differ and only the *orderings* of the
model types compare. Ours are means ± standard error over seeds (bands for curves, bars for
points); the paper's carry its SE where its figure gives one. Every model type keeps its colour
(:data:`connectome_lib.plots.PALETTE`), chance levels come from :mod:`connectome_lib.registry`,
and one figure legend, titled "model", sits below the panels. A measure the run lacks is shown
as a panel saying "not measured in this run", never dropped silently.

:func:`composite` draws the figure; :func:`panels` names its rows. Each row is a
:class:`matplotlib.figure.SubFigure` of the figure (``fig.subfigs``) holding two column
subfigures (paper, run); every axis has the gid ``"<panel key>:paper"`` or ``"<panel key>:run"``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .plots import LEGEND_TITLE, PAGE_WIDTH, PALETTE, _color, _finish, _present, _style, zoom_limits
from .registry import LABELS, chance_level
from .stats import seed_mean_se

#: the note of a panel whose measure the run lacks
NOT_MEASURED = "not measured in this run"
#: the note of a measure the paper does not report (BLiMP)
NOT_REPORTED = "not reported by the paper"
#: the column headers
PAPER_HEADER = "Paper (FineWeb, 162M model)"
#: the NLP benchmarks and their short names (the paper reports the first two)
NLP: tuple[tuple[str, str, str], ...] = (("hellaswag", "acc_norm", "HellaSwag"), ("mmlu", "acc", "MMLU"),
                                         ("blimp", "acc", "BLiMP"))
#: our language-unit measures and their short names (the paper's fraction is not stated)
UNITS: tuple[tuple[str, str], ...] = (("r_top1pct", "top 1 %"), ("r_top10pct", "top 10 %"))
#: the height of one row (inches)
ROW_HEIGHT = 2.25
_NOTE_COLOR = "#555555"


@dataclass(frozen=True)
class Panel:
    """One row of the composite: its key, row label, the paper's (task, metric) it needs, and
    the functions that draw the paper's column and ours into a subfigure."""

    key: str
    label: str
    paper_task: str
    paper_metric: str | None
    draw_paper: Callable
    draw_run: Callable


# ------------------------------------------------------------------------------ small helpers
def _rows(df: pd.DataFrame, task: str, metric: str | None = None) -> pd.DataFrame:
    if df is None or df.empty or "task" not in df:
        return pd.DataFrame()
    d = df[df["task"] == task]
    return d if metric is None else d[d["metric"] == metric]


def _note(sf, key: str, side: str, text: str = NOT_MEASURED):
    """One empty axis with ``text`` in its middle."""
    ax = sf.subplots()
    ax.set_gid(f"{key}:{side}")
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=10, color=_NOTE_COLOR,
            style="italic")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return ax


def _axis(sf, key: str, side: str):
    ax = sf.subplots()
    ax.set_gid(f"{key}:{side}")
    return ax


def _curve(ax, x, mean, se=None, label: str = "", marker: str = "o") -> None:
    ax.plot(x, mean, marker=marker, ms=4, lw=2, color=_color(label), label=label)
    if se is not None and np.isfinite(se).any():
        ax.fill_between(x, mean - np.nan_to_num(se), mean + np.nan_to_num(se), color=_color(label), alpha=0.2, lw=0)


def _curves(ax, t: pd.DataFrame, x: str, y: str) -> list[float]:
    """Mean ± SE over seeds of ``y`` against ``x``, one line per model type; the values drawn."""
    s = seed_mean_se(t, ["label", x], value=y)
    values: list[float] = []
    for label in _present(s["label"]):
        g = s[s["label"] == label].sort_values(x)
        _curve(ax, g[x].to_numpy(float), g["mean"].to_numpy(float), g["se"].to_numpy(float), label)
        values += list(g["mean"] - g["se"].fillna(0)) + list(g["mean"] + g["se"].fillna(0))
    return values


def _paper_curves(ax, p: pd.DataFrame, x: str) -> list[float]:
    for label in _present(p["model"]):
        g = p[p["model"] == label].sort_values(x)
        _curve(ax, g[x].astype(float).to_numpy(), g["value"].to_numpy(float), label=label)
    return list(p["value"])


def _points(ax, table: pd.DataFrame, groups: list, labels: list[str]) -> list[float]:
    """Each model type's mean ± SE beside the others in each group: ``table`` has ``group``,
    ``label``, ``mean``, ``se``; the values drawn."""
    width = 0.7 / max(1, len(labels))
    values: list[float] = []
    for gi, group in enumerate(groups):
        for li, label in enumerate(labels):
            r = table[(table["group"] == group) & (table["label"] == label)]
            if r.empty or not np.isfinite(r["mean"].iloc[0]):
                continue
            m, se = float(r["mean"].iloc[0]), float(r["se"].iloc[0])
            se = se if np.isfinite(se) else 0.0
            ax.errorbar(gi + (li - (len(labels) - 1) / 2) * width, m, yerr=se, fmt="o", ms=6, color=_color(label),
                        elinewidth=2.5, capsize=0)
            values += [m - se, m + se]
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.grid(axis="x", visible=False)
    return values


def _chance(ax, value: float | None) -> list[float]:
    if value is None:
        return []
    ax.axhline(value, ls=":", color=PALETTE["Baseline"], lw=1.5)
    ax.annotate("chance", (1.0, value), xycoords=("axes fraction", "data"), xytext=(-2, 2), textcoords="offset points",
                ha="right", va="bottom", fontsize=9, color=_NOTE_COLOR)
    return [value]


def _zoom(ax, values, pad: float = 0.15) -> None:
    ax.set_ylim(*zoom_limits(values, pad=pad))
    ax.yaxis.set_major_locator(MaxNLocator(4))


# ------------------------------------------------------------------------------ validation loss
def _paper_over_training(sf, data, panel: str, task: str, metric: str, ylabel: str) -> None:
    """The paper's curves of ``task``/``metric`` against inner-loop iteration."""
    ax = _axis(sf, panel, "paper")
    _zoom(ax, _paper_curves(ax, _rows(data.paper, task, metric), "iteration"))
    ax.set(xlabel="inner-loop iteration", ylabel=ylabel)


def loss_paper(sf, data) -> None:
    _paper_over_training(sf, data, "loss", "perplexity", "loss", "nats/token")


def loss_run(sf, data) -> None:
    t = data.training_curves
    if t is None or t.empty or "val_loss" not in t:
        _note(sf, "loss", "run")
        return
    ax = _axis(sf, "loss", "run")
    _zoom(ax, _curves(ax, t.dropna(subset=["val_loss"]), "iteration", "val_loss"))
    ax.set(xlabel="inner-loop iteration")


# ------------------------------------------------------------------------------ NLP benchmarks
def _nlp(sf, data, side: str) -> None:
    axes = sf.subplots(1, len(NLP), squeeze=False)[0]
    for ax, (task, metric, name) in zip(axes, NLP):
        ax.set_gid(f"nlp:{side}")
        if side == "paper":
            d = _rows(data.paper, task, metric).rename(columns={"model": "label", "value": "mean"})
        else:
            d = _rows(data.summary, task, metric)
        ax.set_title(name, fontsize=10, fontweight="normal")
        ax.set_xticks([])
        if d.empty:
            ax.text(0.5, 0.5, textwrap.fill(NOT_REPORTED if side == "paper" else NOT_MEASURED, 9), ha="center",
                    va="center",
                    transform=ax.transAxes, fontsize=9, color=_NOTE_COLOR, style="italic")
            ax.set_yticks([])
            ax.grid(False)
            continue
        values = _points(ax, d.assign(group=0), [0], _present(d["label"]))
        values += _chance(ax, chance_level(task, metric))
        _zoom(ax, values, pad=0.2)
        ax.yaxis.set_major_locator(MaxNLocator(3, steps=[1, 2, 5, 10]))
    if side == "paper":
        axes[0].set_ylabel("accuracy")


def nlp_paper(sf, data) -> None:
    _nlp(sf, data, "paper")


def nlp_run(sf, data) -> None:
    _nlp(sf, data, "run")


# ------------------------------------------------------------------------------ reading times
def reading_paper(sf, data) -> None:
    _paper_over_training(sf, data, "reading", "futrell2018", "r", "Pearson r")


def reading_run(sf, data) -> None:
    e = _rows(data.evals, "futrell2018", "r")
    if e.empty:
        _note(sf, "reading", "run")
        return
    ax = _axis(sf, "reading", "run")
    _zoom(ax, _curves(ax, e, "iteration", "value"))
    ax.set(xlabel="inner-loop iteration")


# ------------------------------------------------------------------------------ brain by layer
def _layers(df: pd.DataFrame, metric_col: str = "metric") -> pd.DataFrame:
    d = df[df[metric_col].str.fullmatch(r"r_layer\d+")].copy()
    d["layer"] = d[metric_col].str.removeprefix("r_layer").astype(int)
    return d


def brain_paper(sf, data) -> None:
    p = _layers(_rows(data.paper, "tuckute2024"))
    ax = _axis(sf, "brain", "paper")
    _zoom(ax, _paper_curves(ax, p, "layer"))
    layers = sorted(p["layer"].unique())
    ax.set_xticks([k for k in layers if k % 2 == 0] if len(layers) > 7 else layers)
    ax.set(xlabel="layer (0 = embeddings)", ylabel="Pearson r")


def brain_run(sf, data) -> None:
    s = _rows(data.summary, "tuckute2024")
    s = _layers(s) if len(s) else s
    if s.empty:
        _note(sf, "brain", "run")
        return
    ax = _axis(sf, "brain", "run")
    values = []
    for label in _present(s["label"]):
        g = s[s["label"] == label].sort_values("layer")
        ax.errorbar(g["layer"], g["mean"], yerr=g["se"].fillna(0), marker="o", ms=4, lw=2, capsize=3,
                    color=_color(label), label=label)
        values += list(g["mean"] - g["se"].fillna(0)) + list(g["mean"] + g["se"].fillna(0))
    _zoom(ax, values)
    ax.set_xticks(sorted(s["layer"].unique()))  # the run's own layers, never the paper's 0..12
    ax.set(xlabel="layer (0 = embeddings)")


# ------------------------------------------------------------------------------ language units
def units_paper(sf, data) -> None:
    p = _rows(data.paper, "language_units").rename(columns={"model": "label", "value": "mean"})
    ax = _axis(sf, "units", "paper")
    _zoom(ax, _points(ax, p.assign(group=0), [0], _present(p["label"])), pad=0.2)
    ax.set_xticks([0], ["language-selective units"])
    ax.set(ylabel="Pearson r")


def units_run(sf, data) -> None:
    s = _rows(data.summary, "language_units")
    s = s[s["metric"].isin([m for m, _ in UNITS])] if len(s) else s
    if s.empty:
        _note(sf, "units", "run")
        return
    ax = _axis(sf, "units", "run")
    groups = [m for m, _ in UNITS if m in set(s["metric"])]
    _zoom(ax, _points(ax, s.rename(columns={"metric": "group"}), groups, _present(s["label"])), pad=0.2)
    ax.set_xticks(range(len(groups)), [dict(UNITS)[g] for g in groups])


# ------------------------------------------------------------------------------ the composite
#: every panel of the paper's main figure, in its order
PANELS: tuple[Panel, ...] = (
    Panel("loss", "Validation loss", "perplexity", "loss", loss_paper, loss_run),
    Panel("nlp", "NLP benchmarks", "hellaswag", None, nlp_paper, nlp_run),
    Panel("reading", "Reading times", "futrell2018", "r", reading_paper, reading_run),
    Panel("brain", "Brain by layer", "tuckute2024", None, brain_paper, brain_run),
    Panel("units", "Language units", "language_units", None, units_paper, units_run),
)


def drawn_panels(data) -> list[Panel]:
    """The panels the paper has numbers for (in :data:`PANELS`' order): the rows :func:`composite` draws."""
    return [p for p in PANELS if not _rows(data.paper, p.paper_task, p.paper_metric).empty]


def panels(data) -> list[str]:
    """The row labels of :func:`composite`'s panels, top to bottom (for tests and captions)."""
    return [p.label for p in drawn_panels(data)]


def _model_types(data) -> list[str]:
    """Every model type in the paper's numbers and in this run's."""
    out = list(data.paper["model"]) if "model" in data.paper else []
    for df in (data.summary, data.evals, data.training_curves):
        if df is not None and "label" in df:
            out += list(df["label"].unique())
    return out


def composite(data) -> plt.Figure:
    """The paper's main figure, panel by panel, beside this run's (``data``: a
    :class:`connectome_lib.findings.FindingsData`)."""
    rows = drawn_panels(data)
    if not rows:
        raise ValueError("composite: the paper reports no number for any panel")
    with _style():
        fig = plt.figure(figsize=(PAGE_WIDTH, ROW_HEIGHT * len(rows) + 1.1), layout="constrained")
        subs = np.atleast_1d(fig.subfigures(len(rows), 1))
        for i, (sub, panel) in enumerate(zip(subs, rows)):
            sub.set_gid(panel.key)
            left, right = sub.subfigures(1, 2, wspace=0.04)
            panel.draw_paper(left, data)
            panel.draw_run(right, data)
            sub.supylabel(panel.label, fontsize=11, fontweight="bold")
            if i == 0:
                left.suptitle(PAPER_HEADER, fontsize=11, fontweight="bold")
                right.suptitle(f"This run ({data.profile} profile)", fontsize=11, fontweight="bold")
        labels = [lab for lab in _present(_model_types(data)) if lab in LABELS]
        handles = [Line2D([], [], color=_color(lab), marker="o", lw=2, label=lab) for lab in labels]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles) if len(handles) <= 4 else 3,
                   frameon=False, title=LEGEND_TITLE, handlelength=1.4, columnspacing=1.0)
    return _finish(fig)
