"""The figures of the notebooks and the results page (seaborn/matplotlib), one function each.

Every function takes tidy DataFrames (see :mod:`connectome_lib.readers`) or plain arrays and
returns the matplotlib ``Figure``. All figures share one look, set by :func:`set_theme` and
applied inside every function (so a notebook that never calls it still gets it):

- one fixed colour per model type (:data:`PALETTE`), a neutral grey for baselines and black
  for the paper's values;
- a width of :data:`PAGE_WIDTH` inches at :data:`DPI` dots per inch, so that a figure is shown
  at (about) its natural size in the book and its 10-11 pt fonts stay readable (about 14 px);
- titles and axis labels in words with units (:func:`connectome_lib.registry.measure_title` and
  :func:`~connectome_lib.registry.measure_axis` translate raw keys such as
  ``("tuckute2024", "r_best")``), chance lines at the registry's chance levels;
- y-axes zoomed to the data and to the reference lines drawn (chance, baselines, the paper),
  not started at 0, because the differences between the models are often 0.01 or less;
- error bars: standard error over seeds, and item confidence intervals where a ``ci_low`` /
  ``ci_high`` column is given; integer ticks for layers and generations; legends titled
  "model".
"""

from __future__ import annotations

import contextlib
import math
import textwrap
from collections.abc import Iterable, Mapping

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter
from scipy.stats import binom

from .registry import LABELS, MODEL_TYPES_BY_LABEL, chance_level, measure_axis, measure_title

#: one colour per model type, used by every figure; grey for baselines, black for the paper
PALETTE = {"Connectome": "#1f5fa8", "RandomConnectome": "#d9731a", "RowMatchedRandom": "#9b59b6",
           "NoConnectome": "#3a9a4b",
           "Untrained": "#8c8c8c", "Baseline": "#8c8c8c", "Paper": "#222222"}
#: the colour of baselines (untrained model, chance, model-free predictors)
NEUTRAL = PALETTE["Baseline"]
#: the colour of the paper's values
PAPER_COLOR = PALETTE["Paper"]
#: figure width (inches) and resolution: 7 in x 100 dpi = 700 px, about the book's text width
PAGE_WIDTH = 7.0
DPI = 100
#: legend title of every legend whose entries are model types
LEGEND_TITLE = "model"

#: font sizes (points); at 100 dpi shown at natural size, 10 pt is about 14 px
_RC = {
    "figure.dpi": DPI, "savefig.dpi": 150, "figure.autolayout": False, "figure.constrained_layout.use": True,
    "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10,
    "ytick.labelsize": 10, "legend.fontsize": 10, "legend.title_fontsize": 10,
    "figure.titlesize": 12, "axes.titleweight": "bold",
}

def set_theme() -> None:
    """The one style of every figure: seaborn "whitegrid" with the book's font sizes."""
    sns.set_theme(style="whitegrid", context="notebook", rc=_RC)


@contextlib.contextmanager
def _style():
    """Apply :func:`set_theme`'s style to the figures made inside, without changing the caller's.

    Only the keys set here are saved and restored (not ``plt.rc_context``, which restores every
    rcParam: when the first figure of a Jupyter kernel is made inside it, the inline backend
    switches ``interactive`` on during the context, the exit switches it off again, and every
    later figure of the notebook is silently not shown)."""
    saved = {k: mpl.rcParams[k] for k in _RC}
    with sns.axes_style("whitegrid"):
        try:
            mpl.rcParams.update(_RC)
            yield
        finally:
            mpl.rcParams.update(saved)


def _finish(fig: plt.Figure) -> plt.Figure:
    """Fix the tick label sizes: ticks are made lazily, after the style context has closed."""
    for ax in fig.axes:
        ax.tick_params(labelsize=_RC["xtick.labelsize"])
    return fig


def _present(labels) -> list[str]:
    """The model types in ``labels``, in the registry's order (:data:`~connectome_lib.registry.LABELS`);
    unknown labels after them."""
    labels = list(dict.fromkeys(labels))
    return [label for label in LABELS if label in set(labels)] + [label for label in labels if label not in LABELS]


def _color(label: str) -> str:
    return PALETTE.get(label, NEUTRAL)


def zoom_limits(values: Iterable[float], pad: float = 0.12, min_span: float | None = None) -> tuple[float, float]:
    """Axis limits that hold every finite value with ``pad`` of the span as margin. A span
    narrower than ``min_span`` (default: 2 % of the largest magnitude, at least 1e-3) is widened
    to it around its centre, so that equal values do not fill the axis with rounding noise."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return (0.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    floor = min_span if min_span is not None else max(0.02 * float(np.abs(v).max()), 1e-3)
    if hi - lo < floor:
        mid = (lo + hi) / 2
        return (mid - floor / 2, mid + floor / 2)
    span = hi - lo
    return (lo - pad * span, hi + pad * span)


def _legend(ax, title: str | None = LEGEND_TITLE, **kw) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, title=title, **kw)


def _figure_legend(fig: plt.Figure, ax, title: str | None = LEGEND_TITLE, ncols: int | None = None) -> None:
    """Move ``ax``'s legend below the axes, outside them (it never covers a curve)."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols or min(3, len(handles)), frameon=False,
                   title=title)


def _hue_legend_title(ax, title: str = LEGEND_TITLE) -> None:
    leg = ax.get_legend()
    if leg is not None:
        leg.set_title(title)


# ------------------------------------------------------------------------------ outer loop
def generation_curves(curves: pd.DataFrame) -> plt.Figure:
    """Outer loop: validation loss against iteration, one line per generation."""
    with _style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.8))
        gens = sorted(curves["generation"].unique())
        sns.lineplot(data=curves, x="iteration", y="val_loss", hue="generation", hue_order=gens,
                     palette="viridis", marker="o", ax=ax, legend="full")
        ax.set(title="Outer loop: validation loss of each generation", xlabel="iteration within the generation",
               ylabel="validation loss (nats/token)")
        _hue_legend_title(ax, "generation")
    return _finish(fig)


def density_by_layer(density: pd.DataFrame) -> plt.Figure:
    """Outer loop: density of each layer (embedding, blocks, head) after pruning each generation.

    A column ``g`` is the density *after pruning generation g*, i.e. the density the model of
    generation g + 1 is trained with.
    """
    t = density.groupby(["generation", "layer"])[["numel", "kept"]].sum().reset_index()
    t["density"] = t["kept"] / t["numel"]
    pivot = t.pivot(index="layer", columns="generation", values="density")
    with _style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.42 * len(pivot) + 1.9))
        sns.heatmap(pivot, annot=True, fmt=".3f", cmap="Blues", vmin=0, vmax=1, ax=ax, annot_kws={"size": 10},
                    cbar_kws={"label": "density (fraction of weights kept)"})
        ax.set(title="Density of each layer after pruning generation g", xlabel="after pruning generation g",
               ylabel="")
        ax.tick_params(axis="y", rotation=0)
    return _finish(fig)


def loss_vs_density(curves: pd.DataFrame, density: pd.DataFrame, paper: pd.DataFrame | None = None) -> plt.Figure:
    """Final validation loss of each generation against the density it was trained at.

    ``curves`` are the outer-loop curves (generation, iteration, val_loss); ``density`` the
    per-tensor densities after each pruning (generation, numel, kept). Generation 0 is dense;
    generation g > 0 is trained with the mask left after pruning generation g - 1. ``paper``
    (density, value), when given, is drawn as black crosses.
    """
    for col in ("generation", "iteration", "val_loss"):
        if col not in curves:
            raise ValueError(f"loss_vs_density: curves lack the column {col!r}")
    for col in ("generation", "numel", "kept"):
        if col not in density:
            raise ValueError(f"loss_vs_density: density lacks the column {col!r}")
    last = curves.sort_values("iteration").groupby("generation").tail(1).set_index("generation")["val_loss"]
    after = density.groupby("generation")[["kept", "numel"]].sum()
    after = after["kept"] / after["numel"]
    rows = [{"generation": int(g), "density": 1.0 if g == 0 else float(after.get(g - 1, np.nan)),
             "val_loss": float(v)} for g, v in last.sort_index().items()]
    t = pd.DataFrame(rows).dropna()
    with _style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.8))
        ax.plot(t["density"], t["val_loss"], marker="o", color=PALETTE["Connectome"], lw=2, label="this run")
        for r in t.itertuples():
            ax.annotate(f"gen {r.generation}", (r.density, r.val_loss), textcoords="offset points", xytext=(6, 6),
                        fontsize=10)
        values = list(t["val_loss"])
        if paper is not None and len(paper):
            ax.scatter(paper["density"], paper["value"], marker="x", s=60, color=PAPER_COLOR, label="paper", zorder=3)
            values += list(paper["value"])
        ax.set_xscale("log")
        ticks = sorted(set(np.round(t["density"], 3)))
        ax.xaxis.set_major_locator(plt.FixedLocator(ticks))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_xticks(ticks, [f"{x:.0%}" if x >= 0.995 else f"{x:.1%}" for x in ticks])
        ax.invert_xaxis()
        ax.set_ylim(*zoom_limits(values, pad=0.2))
        ax.set(title="Final validation loss of each generation", xlabel="density trained at (log scale)",
               ylabel="validation loss (nats/token)")
        _legend(ax, title=None)
    return _finish(fig)


# ------------------------------------------------------------------------------ inner loop
def learning_curves(curves: pd.DataFrame, paper: pd.DataFrame | None = None, y: str = "val_loss",
                    title: str = "Inner loop: validation loss", ylabel: str = "validation loss (nats/token)",
                    x: str = "iteration", xlabel: str | None = None,
                    baselines: dict[str, float] | None = None) -> plt.Figure:
    """Inner loop: validation loss against iteration (or ``x="tokens"``: inner-loop tokens
    seen, for data efficiency), mean and SE band over seeds per model type; the paper's values
    (as crosses, against iteration) when given; named ``baselines`` (e.g. the unigram entropy)
    as grey horizontal lines."""
    with _style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.8))
        sns.lineplot(data=curves, x=x, y=y, hue="label", hue_order=_present(curves["label"]),
                     palette=PALETTE, errorbar="se", marker="o", ax=ax)
        if paper is not None and len(paper):
            for label, g in paper.groupby("model"):
                ax.scatter(g["iteration"], g["value"], marker="x", s=50, color=_color(label), label=f"{label} (paper)")
        styles = iter(["--", ":", "-."] * 3)
        for name, v in (baselines or {}).items():
            if v is not None and np.isfinite(v):
                ax.axhline(v, ls=next(styles), color=NEUTRAL, lw=1.5, label=name)
        _figure_legend(fig, ax)
        default_x = {"iteration": "inner-loop iteration", "tokens": "inner-loop tokens seen"}.get(x, x)
        ax.set(title=title, xlabel=xlabel or default_x, ylabel=ylabel)
    return _finish(fig)


def data_efficiency(curves: pd.DataFrame, reach: pd.DataFrame, target_label: str = "NoConnectome") -> plt.Figure:
    """Data efficiency: validation loss against inner-loop tokens seen on a log axis (mean over
    the units of each model type, with the spread of the units as a band), the target -- the
    final loss of ``target_label`` -- as a dashed line, and on it, per model type, the tokens
    its units need to reach it (``reach``: :func:`connectome_lib.effects.tokens_to_target_by_type`;
    a point at the mean over units with the t interval as a bar, every unit as a tick). A type
    whose units do not all reach the target gets no point and says so in the legend."""
    c = curves.dropna(subset=["val_loss"])
    c = c[c["tokens"] > 0]  # a log axis: the initial evaluation (0 tokens) is left out
    unit_means = c.groupby(["label", "unit", "tokens"], as_index=False)["val_loss"].mean()
    total = float(c["tokens"].max())
    labels = _present(c["label"])
    with _style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.0))
        sns.lineplot(data=unit_means, x="tokens", y="val_loss", hue="label", hue_order=labels, palette=PALETTE,
                     errorbar=("pi", 100), marker="o", ms=4, ax=ax, legend=False)
        handles = []
        target = float(reach["target"].dropna().iloc[0]) if len(reach) and reach["target"].notna().any() else None
        if target is not None:
            ax.axhline(target, ls="--", color=NEUTRAL, lw=1.3)
            ax.annotate(f"{target_label}'s final loss", (0.01, target), xycoords=("axes fraction", "data"),
                        xytext=(0, 4), textcoords="offset points", fontsize=9, color="#555555")
        for k, label in enumerate(labels):
            r = reach[reach["label"] == label] if len(reach) else reach
            units, mean = r[r["unit"] != "mean"], r[r["unit"] == "mean"]
            reached = (len(units) and units["tokens"].notna().all() and len(mean)
                       and np.isfinite(mean["fraction"].iloc[0]))
            name = label
            if target is not None and len(units):
                y = target - (k - (len(labels) - 1) / 2) * 0.012 * (ax.get_ylim()[1] - ax.get_ylim()[0])
                ax.plot(units["tokens"].dropna(), [y] * int(units["tokens"].notna().sum()), "|", ms=9,
                        color=_color(label), mew=1.5)
                if reached:
                    m = mean.iloc[0]
                    lo = m["ci_low"] if np.isfinite(m["ci_low"]) else m["fraction"]
                    hi = m["ci_high"] if np.isfinite(m["ci_high"]) else m["fraction"]
                    ax.errorbar(m["fraction"] * total, y, xerr=[[(m["fraction"] - lo) * total],
                                                               [(hi - m["fraction"]) * total]],
                                fmt="o", ms=7, color=_color(label), capsize=3, elinewidth=1.5, zorder=4)
                    name = f"{label}: {m['fraction']:.0%} of the tokens"
                else:
                    name = f"{label}: {int(units['tokens'].notna().sum())} of {len(units)} units reach it"
            handles.append(Line2D([], [], color=_color(label), marker="o", lw=2, label=name))
        ax.set_xscale("log")
        ax.set(title="Data efficiency: validation loss against tokens seen",
               xlabel="inner-loop tokens seen (log scale)", ylabel="validation loss (nats/token)")
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False,
                   title=LEGEND_TITLE)
    return _finish(fig)


def learning_curves_vs_paper(curves: pd.DataFrame, paper: pd.DataFrame, profile: str = "",
                             y: str = "val_loss", ylabel: str = "validation loss (nats/token)") -> plt.Figure:
    """The paper's inner-loop curve of a measure (left; ``paper`` rows model, iteration, value;
    by default the validation loss) next to ours (right; column ``y``, mean and SE band over
    seeds per model type), each axis zoomed to its own data: the scales differ (FineWeb and a
    162M model against a small run), so only the orderings compare. One legend, titled "model"."""
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.6))
        labels = _present(list(paper["model"]) + list(curves["label"]))
        sns.lineplot(data=paper, x="iteration", y="value", hue="model",
                     hue_order=[label for label in labels if label in set(paper["model"])],
                     palette=PALETTE, marker="o", ax=axes[0], legend=False)
        sns.lineplot(data=curves, x="iteration", y=y, hue="label", hue_order=_present(curves["label"]), palette=PALETTE,
                     errorbar="se", marker="o", ax=axes[1], legend=False)
        axes[0].set(title="Paper (FineWeb, 162M model)", xlabel="inner-loop iteration", ylabel=ylabel)
        axes[1].set(title=f"This run{f' ({profile} profile)' if profile else ''}", xlabel="inner-loop iteration",
                    ylabel="")
        axes[0].set_ylim(*zoom_limits(paper["value"], pad=0.1))
        handles = [Line2D([], [], color=_color(label), marker="o", lw=2, label=label) for label in labels]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, title=LEGEND_TITLE)
    return _finish(fig)


def gap_over_training(gaps: pd.DataFrame) -> plt.Figure:
    """The validation-loss gap (Connectome minus each control) over the inner loop: the paper's
    (left; ``source == "paper"``) and ours (right; mean over units with its 95 % interval), one
    line per control, each on its own iteration axis, with the zero line (no effect)."""
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.6))
        for ax, source, title in ((axes[0], "paper", "Paper (FineWeb, 162M model)"), (axes[1], "ours", "This run")):
            g = gaps[gaps["source"] == source]
            for control, c in g.groupby("control", sort=False):
                c = c.sort_values("iteration")
                ax.plot(c["iteration"], c["gap"], marker="o", color=_color(control), lw=2, label=control)
                if "ci_low" in c and c["ci_low"].notna().any():
                    ax.fill_between(c["iteration"], c["ci_low"], c["ci_high"], color=_color(control), alpha=0.15)
            ax.axhline(0, color=NEUTRAL, ls=":", lw=1)
            ax.set(title=title, xlabel="inner-loop iteration", ylabel="Connectome − control (nats/token)"
                   if source == "paper" else "")
        labels = _present(gaps["control"])
        handles = [Line2D([], [], color=_color(label), marker="o", lw=2, label=label) for label in labels]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, title="control")
    return _finish(fig)


# ------------------------------------------------------------------------------ final-model measures
def _grid(n: int, ncols: int | None, height: float = 2.9):
    ncols = max(1, min(n, ncols or 3))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, height * nrows + 0.6), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def metric_bars(summary: pd.DataFrame, metrics: list[tuple[str, str]], paper: pd.DataFrame | None = None,
                baselines: dict[tuple[str, str], float] | None = None,
                baseline_labels: dict[tuple[str, str], str] | None = None, ncols: int | None = None,
                show_chance: bool = True, title: str | None = None) -> plt.Figure:
    """One panel per (task, metric): each model type's mean with its standard error over seeds
    (thick bar) and, where ``summary`` has ``ci_low``/``ci_high``, the items' confidence
    interval (thin whisker); the paper's value and SE as a black diamond beside it; baselines as
    dashed grey lines (labelled by ``baseline_labels``, else "chance" when the value is the
    task's chance level, else "baseline"); the chance level of a multiple-choice task as a dotted
    line when ``show_chance``. The y-axis is zoomed to everything drawn.

    The name is historical: the means are drawn as points, not bars, so that an axis that does
    not start at 0 does not exaggerate a bar's length.
    """
    baselines = {k: v for k, v in (baselines or {}).items() if v is not None and np.isfinite(v)}
    baseline_labels = baseline_labels or {}
    has_ci = {"ci_low", "ci_high"} <= set(summary.columns)
    with _style():
        fig, axes = _grid(len(metrics), ncols)
        extra, present = [], []
        for ax, (task, metric) in zip(axes, metrics):
            d = summary[(summary["task"] == task) & (summary["metric"] == metric)]
            labels = _present(d["label"])
            d = d.drop_duplicates("label").set_index("label").reindex(labels)
            values = list(d["mean"] - d["se"].fillna(0)) + list(d["mean"] + d["se"].fillna(0))
            for i, label in enumerate(labels):
                r = d.loc[label]
                if has_ci and np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"]):
                    ax.errorbar(i, r["mean"], yerr=[[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]],
                                fmt="none", ecolor=_color(label), elinewidth=1, capsize=6, alpha=0.8)
                    values += [r["ci_low"], r["ci_high"]]
                ax.errorbar(i, r["mean"], yerr=0 if not np.isfinite(r["se"]) else r["se"], fmt="o", ms=8,
                            color=_color(label), elinewidth=3, capsize=0)
            if paper is not None and len(paper):
                p = paper[(paper["task"] == task) & (paper["metric"] == metric)]
                for col in ("iteration", "layer"):
                    if col in p:
                        p = p[p[col].isna()]
                p = p.drop_duplicates("model").set_index("model")
                for i, label in enumerate(labels):
                    if label in p.index:
                        v = float(p.loc[label, "value"])
                        se = float(p.loc[label, "se"]) if "se" in p and np.isfinite(p.loc[label, "se"]) else 0.0
                        ax.errorbar(i + 0.25, v, yerr=se, fmt="D", ms=6, mfc="white", color=PAPER_COLOR,
                                    elinewidth=1.2, capsize=3)
                        values += [v - se, v + se]
                        extra.append("paper")
            lines = []
            chance = chance_level(task, metric)
            if (task, metric) in baselines:
                v = baselines[(task, metric)]
                name = baseline_labels.get((task, metric)) or ("chance" if chance == v else "baseline")
                lines.append((v, name, "--"))
            if show_chance and chance is not None and not any(n == "chance" for _, n, _ in lines):
                lines.append((chance, "chance", ":"))
            for v, name, ls in lines:
                ax.axhline(v, ls=ls, color=NEUTRAL, lw=1.5)
                ax.annotate(name, (1.0, v), xycoords=("axes fraction", "data"), xytext=(-3, 3),
                            textcoords="offset points", ha="right", va="bottom", fontsize=10, color="#555555")
                values.append(v)
            ax.set_xlim(-0.5, len(labels) - 0.3)
            ax.set_xticks(range(len(labels)), [""] * len(labels))
            present.extend(label for label in labels if label not in present)
            ax.set_ylim(*zoom_limits(values, pad=0.18))
            ax.yaxis.set_major_locator(MaxNLocator(5))
            # wrapped to the panel's width: side-by-side titles never run into each other
            ax.set_title(textwrap.fill(measure_title(task, metric), max(18, 64 // max(1, len(axes))) if len(axes) > 1
                                       else 64), fontsize=11)
            ax.set_ylabel(measure_axis(task, metric))
            ax.grid(axis="x", visible=False)
        handles = [Line2D([], [], marker="o", color=_color(label), lw=0, ms=8, label=label)
                   for label in _present(present)]
        handles.append(Line2D([], [], marker="o", color="#444444", lw=3, label="mean ± SE over seeds"))
        if has_ci:
            handles.append(Line2D([], [], color="#444444", lw=1, label="item 95 % CI"))
        if extra:
            handles.append(Line2D([], [], marker="D", mfc="white", color=PAPER_COLOR, ls="none", label="paper ± SE"))
        fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False,
                   title=LEGEND_TITLE)
        if title:
            fig.suptitle(title)
    return _finish(fig)


def scorecard(table: pd.DataFrame, ncols: int = 2, title: str = "Every measure, three models") -> plt.Figure:
    """A one-glance scorecard: one panel per measure, each model type's mean and confidence
    interval, with the direction the paper's claim expects marked ("better →" / "← better").

    ``table`` is tidy: ``measure`` (its name in words), ``label`` (model type), ``mean``,
    ``ci_low``, ``ci_high`` and ``paper_direction`` ("higher" or "lower": which way is better,
    the way the paper reads the measure). An optional ``unit`` column is the x-axis label, an
    optional ``paper`` column the paper's value (a black diamond).
    """
    need = ["measure", "label", "mean", "ci_low", "ci_high", "paper_direction"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"scorecard: the table lacks the columns {missing}")
    bad = sorted(set(table["paper_direction"]) - {"higher", "lower"})
    if bad:
        raise ValueError(f"scorecard: paper_direction must be 'higher' or 'lower', got {bad}")
    measures = list(dict.fromkeys(table["measure"]))
    labels = _present(table["label"])
    with _style():
        fig, axes = _grid(len(measures), ncols, height=1.15 + 0.3 * len(labels))
        for ax, m in zip(axes, measures):
            d = table[table["measure"] == m].drop_duplicates("label").set_index("label").reindex(labels)
            direction = d["paper_direction"].dropna().iloc[0]
            values = list(d["ci_low"]) + list(d["ci_high"]) + list(d["mean"])
            for i, label in enumerate(labels):
                r = d.loc[label]
                if not np.isfinite(r["mean"]):
                    continue
                lo = r["mean"] - r["ci_low"] if np.isfinite(r["ci_low"]) else 0
                hi = r["ci_high"] - r["mean"] if np.isfinite(r["ci_high"]) else 0
                ax.errorbar(r["mean"], i, xerr=[[lo], [hi]], fmt="o", ms=7, color=_color(label), elinewidth=2.5,
                            capsize=3)
                if "paper" in d and np.isfinite(r.get("paper", np.nan)):
                    ax.plot(r["paper"], i, "D", ms=6, mfc="white", color=PAPER_COLOR)
                    values.append(r["paper"])
            ax.set_yticks(range(len(labels)), labels)
            ax.set_ylim(len(labels) - 0.4, -0.6)
            ax.set_xlim(*zoom_limits(values, pad=0.15))
            ax.xaxis.set_major_locator(MaxNLocator(3))
            unit = d["unit"].dropna().iloc[0] if "unit" in d and d["unit"].notna().any() else "value"
            ax.set_xlabel(f"{unit}   (better →)" if direction == "higher" else f"(← better)   {unit}")
            ax.set_title(m, fontsize=11)
            ax.grid(axis="y", visible=False)
        handles = [Line2D([], [], marker="o", color="#444444", lw=2.5, label="mean and 95 % CI")]
        if "paper" in table and table["paper"].notna().any():
            handles.append(Line2D([], [], marker="D", mfc="white", color=PAPER_COLOR, ls="none", label="paper"))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        if title:
            fig.suptitle(title)
    return _finish(fig)


def metric_vs_iteration(results: pd.DataFrame, task: str, metric: str, paper: pd.DataFrame | None = None,
                        ylabel: str | None = None, baseline: float | None = None,
                        baselines: dict[str, float] | None = None, title: str | None = None) -> plt.Figure:
    """A metric against inner-loop iteration (e.g. reading-time r), mean ± SE over seeds; the
    paper's values as crosses; ``baseline`` (the untrained model) and any named ``baselines``
    as grey dashed lines. The y-axis is zoomed to everything drawn."""
    d = results[(results["task"] == task) & (results["metric"] == metric)]
    refs = {}
    if baseline is not None and np.isfinite(baseline):
        refs["untrained model"] = float(baseline)
    refs.update({k: float(v) for k, v in (baselines or {}).items() if v is not None and np.isfinite(v)})
    with _style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.8))
        sns.lineplot(data=d, x="iteration", y="value", hue="label", hue_order=_present(d["label"]), palette=PALETTE,
                     errorbar="se", marker="o", ax=ax)
        values = list(d["value"])
        if paper is not None and len(paper):
            for label, g in paper.groupby("model"):
                ax.scatter(g["iteration"], g["value"], marker="x", s=50, color=_color(label), label=f"{label} (paper)")
            values += list(paper["value"])
        styles = iter(["--", ":", "-."] * 3)
        for name, v in refs.items():
            ax.axhline(v, ls=next(styles), color=NEUTRAL, lw=1.5, label=name)
            values.append(v)
        ax.set_ylim(*zoom_limits(values, pad=0.12))
        _figure_legend(fig, ax, ncols=3)
        ax.set(xlabel="inner-loop iteration", ylabel=ylabel or measure_axis(task, metric),
               title=title or measure_title(task, metric))
    return _finish(fig)


def _layer_axis(ax, layers) -> None:
    layers = sorted(int(x) for x in layers)
    if len(layers) <= 13:
        ax.set_xticks(layers)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def brain_by_layer(results: pd.DataFrame, paper: pd.DataFrame | None = None, untrained: pd.Series | None = None,
                   prefix: str = "r_layer", baselines: dict[str, float] | None = None) -> plt.Figure:
    """Brain predictivity (Pearson r) per layer, mean ± SE over seeds, on the run's own layers
    (0 = embeddings), with the untrained model's per-layer values in grey and model-free
    ``baselines`` (e.g. sentence length) as grey horizontal lines. The paper's values, when
    given, get a panel of their own on the paper's layer axis (12 layers), left of ours: a
    smaller run never sits on the paper's axis. Each panel is zoomed to its own data."""
    d = results[(results["task"] == "tuckute2024") & results["metric"].str.match(rf"^{prefix}\d+$")].copy()
    d["layer"] = d["metric"].str.replace(prefix, "", regex=False).astype(int)
    has_paper = paper is not None and len(paper) > 0
    with _style():
        fig, axes = plt.subplots(1, 2 if has_paper else 1, figsize=(PAGE_WIDTH, 4.0), squeeze=False,
                                 gridspec_kw={"width_ratios": [1.3, 1]} if has_paper else None)
        axes = list(axes.flat)
        ours = axes[-1]
        sns.lineplot(data=d, x="layer", y="value", hue="label", hue_order=_present(d["label"]), palette=PALETTE,
                     errorbar="se", marker="o", err_style="bars", ax=ours)
        values = list(d["value"])
        if untrained is not None and len(untrained):
            ours.plot(untrained.index, untrained.values, color=NEUTRAL, marker=".", label="untrained model")
            values += list(untrained.values)
        styles = iter([":", "-."] * 4)
        for name, v in (baselines or {}).items():
            if v is not None and np.isfinite(v):
                ours.axhline(v, ls=next(styles), color=NEUTRAL, lw=1.5, label=name)
                values.append(v)
        _layer_axis(ours, d["layer"].unique())
        ours.set_ylim(*zoom_limits(values, pad=0.12))
        ours.set(title="This run", xlabel="layer (0 = embeddings)", ylabel="" if has_paper else "Pearson r")
        if has_paper:
            for label, g in paper.groupby("model"):
                g = g.sort_values("layer")
                axes[0].plot(g["layer"], g["value"], marker="o", color=_color(label), lw=2, label=label)
            _layer_axis(axes[0], paper["layer"].astype(int).unique())
            axes[0].set_ylim(*zoom_limits(paper["value"], pad=0.12))
            axes[0].set(title="Paper (12 layers)", xlabel="layer (0 = embeddings)", ylabel="Pearson r")
        _figure_legend(fig, ours, ncols=3)
        fig.suptitle("Brain predictivity by layer (Tuckute2024, language network)")
    return _finish(fig)


# ------------------------------------------------------------------------------ connectome
def _short_tensor(name: str) -> str:
    return name.removeprefix("transformer.").removesuffix(".weight")


def density_comparison(
    a: pd.DataFrame, b: pd.DataFrame, label_a: str = "Connectome", label_b: str = "RandomConnectome"
) -> plt.Figure:
    """Per-tensor density and positive-sign share of two connectomes (from density tables), as
    points per tensor on axes zoomed to the data."""
    t = pd.concat([a.assign(connectome=label_a), b.assign(connectome=label_b)])
    t["tensor"] = t["tensor"].map(_short_tensor)
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 0.28 * len(a) + 2.4), sharey=True)
        for ax, col, name, ref in [(axes[0], "density", "density (fraction kept)", None),
                                   (axes[1], "positive_fraction", "share of positive signs", 0.5)]:
            sns.stripplot(data=t, y="tensor", x=col, hue="connectome", palette=PALETTE, size=7, jitter=False,
                          dodge=True, ax=ax, hue_order=[label_a, label_b])
            values = list(t[col])
            if ref is not None:
                ax.axvline(ref, ls="--", color=NEUTRAL, lw=1.2)
                values.append(ref)
            ax.set_xlim(*zoom_limits(values, pad=0.15, min_span=0.02))
            ax.xaxis.set_major_locator(MaxNLocator(3))
            ax.set(xlabel=name, ylabel="")
        axes[0].set_title("Density per tensor", fontsize=11)
        axes[1].set_title("Positive signs among kept", fontsize=11)
        handles, names = axes[0].get_legend_handles_labels()
        for ax in axes:
            ax.get_legend().remove()
        fig.legend(handles, names, loc="outside lower center", ncols=2, frameon=False, title="connectome")
    fig = _finish(fig)
    axes[0].tick_params(axis="y", labelsize=9)
    return fig


def _as_array(m) -> np.ndarray:
    if hasattr(m, "detach"):
        m = m.detach().cpu().numpy()
    a = np.asarray(m).astype(bool)
    if a.ndim != 2:
        raise ValueError(f"mask_degrees: a mask must be 2-D, got shape {a.shape}")
    return a


def mask_degrees(masks: Mapping[str, object], tensor: str = "") -> plt.Figure:
    """The connectome's mask against the random one, for one weight tensor: the distribution of
    kept connections per row (per output unit, the ``nn.Linear`` convention) and per column
    (per input unit), one histogram per mask; the dashed grey curve is the binomial a uniformly
    random mask of the same density would give.

    ``masks`` maps a model type (e.g. "Connectome", "RandomConnectome") to a 2-D boolean mask
    (numpy array or torch tensor), all of one shape.
    """
    if not masks:
        raise ValueError("mask_degrees: no masks given")
    arrays = {k: _as_array(v) for k, v in masks.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1:
        raise ValueError(f"mask_degrees: the masks differ in shape: {sorted(shapes)}")
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.3))
        for ax, axis, what in [(axes[0], 1, "row (output unit)"), (axes[1], 0, "column (input unit)")]:
            n = next(iter(arrays.values())).shape[axis]
            allk = []
            for label, a in arrays.items():
                k = a.sum(axis=axis)
                allk.append(k)
                bins = np.arange(k.min() - 0.5, k.max() + 1.5, max(1, math.ceil((k.max() - k.min() + 1) / 40)))
                ax.hist(k, bins=bins, histtype="step", lw=2, color=_color(label), label=label, density=True)
            density = float(np.mean([a.mean() for a in arrays.values()]))
            ks = np.concatenate(allk)
            grid = np.arange(ks.min(), ks.max() + 1)
            ax.plot(grid, binom.pmf(grid, n, density), ls="--", color=NEUTRAL, lw=1.5, label="binomial (random)")
            ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
            ax.set(xlabel=f"kept connections per {what}", ylabel="share of units" if axis == 1 else "")
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside lower center", ncols=len(handles), frameon=False, title=LEGEND_TITLE)
        fig.suptitle(f"Connections per unit{': ' + _short_tensor(tensor) if tensor else ''}")
    return _finish(fig)


def mask_images(masks: Mapping[str, object], tensor: str = "", max_side: int = 256) -> plt.Figure:
    """The connectome itself: one weight matrix's mask per connectome (kept = dark, pruned =
    white), side by side on the same grid, the wider side horizontal. A matrix with a side over
    ``max_side`` shows its first ``max_side`` rows and columns (the title says so)."""
    arrays = {label: _as_array(m) for label, m in masks.items()}
    shape = next(iter(arrays.values())).shape
    transpose = shape[0] > shape[1]
    with _style():
        fig, axes = plt.subplots(len(arrays), 1, figsize=(PAGE_WIDTH, 0.6 + 1.9 * len(arrays)), squeeze=False)
        for ax, (label, a) in zip(axes.flat, arrays.items()):
            a = a.T if transpose else a
            cut = a[:max_side, :max_side]
            ax.imshow(cut, aspect="auto", interpolation="nearest",
                      cmap=ListedColormap([(1, 1, 1), to_rgb(_color(label))]), vmin=0, vmax=1)
            ax.grid(False)
            ax.set_xticks([])
            ax.set_yticks([])
            part = "" if cut.shape == a.shape else f", first {cut.shape[0]} x {cut.shape[1]}"
            ax.set_title(f"{label}: {a.mean():.1%} kept{part}", fontsize=11)
        rows, cols = ("input", "output") if transpose else ("output", "input")
        axes.flat[-1].set_xlabel(f"{cols} unit")
        for ax in axes.flat:
            ax.set_ylabel(f"{rows}\nunit", fontsize=10)
        fig.suptitle(f"Mask of {_short_tensor(tensor)}" if tensor else "Mask")
    return _finish(fig)


def row_density_vs_frequency(rows: pd.DataFrame, corpus: str = "inner", bins: int = 12) -> plt.Figure:
    """Row density of the token embedding and the output head against how often the row's token
    occurs in a corpus, one panel per tensor: every token a faint dot per connectome, and the
    median row density within log-spaced frequency bins as a line. A random mask is flat; a
    connectome whose line falls to the right prunes frequent tokens' rows the most.

    ``rows`` is :attr:`connectome_lib.analysis.RowDensity.rows` (``tensor``, ``connectome``,
    ``row_density``, ``count_<corpus>``); tokens that never occur in the corpus are left out.
    """
    count = f"count_{corpus}"
    for col in ("tensor", "connectome", "row_density", count):
        if col not in rows:
            raise ValueError(f"row_density_vs_frequency: the table lacks the column {col!r}")
    d = rows[rows[count] > 0]
    if d.empty:
        raise ValueError(f"row_density_vs_frequency: no token occurs in the {corpus} corpus")
    tensors = list(dict.fromkeys(d["tensor"]))
    edges = np.logspace(0, np.log10(d[count].max()) + 1e-9, bins + 1)
    with _style():
        fig, axes = plt.subplots(1, len(tensors), figsize=(PAGE_WIDTH, 3.4), sharey=True, squeeze=False)
        for ax, tensor in zip(axes[0], tensors):
            g = d[d["tensor"] == tensor]
            for label in _present(g["connectome"]):
                h = g[g["connectome"] == label]
                ax.scatter(h[count], h["row_density"], s=5, alpha=0.18, color=_color(label), lw=0, rasterized=True)
                which = np.digitize(h[count], edges[1:-1])
                med = h.groupby(which)["row_density"].median()
                centres = np.sqrt(edges[:-1] * edges[1:])[med.index.to_numpy()]
                ax.plot(centres, med.to_numpy(), "-o", ms=4, lw=2, color=_color(label), label=label)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, numticks=6))
            ax.set(title=_short_tensor(tensor), xlabel=f"token count ({corpus} corpus)",
                   ylabel="row density (share of the row kept)" if ax is axes[0][0] else "")
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside lower center", ncols=len(handles), frameon=False, title=LEGEND_TITLE)
        fig.suptitle("Which tokens keep their rows (lines: median per frequency bin)")
    return _finish(fig)


# ------------------------------------------------------------------------------ language units
def _unit_selection(t: pd.DataFrame, fractions: tuple[float, ...]) -> pd.DataFrame:
    """Add ``selected`` (the smallest fraction whose top set holds the unit, else NaN) per model,
    ranked by t pooled over layers, with ``ceil(fraction * n)`` units as in
    :func:`connectome_lib.evals.language_units.top_units`."""
    for col in ("layer", "unit", "t"):
        if col not in t:
            raise ValueError(f"language units: the table lacks the column {col!r}")
    t = t.copy()
    if "label" not in t:
        t["label"] = "Connectome"
    t["t"] = t["t"].astype(float).where(np.isfinite(t["t"].astype(float)), -np.inf)
    t["selected"] = np.nan
    for _, idx in t.groupby("label").groups.items():
        g = t.loc[idx].sort_values(["t", "layer", "unit"], ascending=[False, True, True], kind="stable")
        for f in sorted(fractions, reverse=True):
            k = max(1, math.ceil(f * len(g)))
            t.loc[g.index[:k], "selected"] = f
    return t


def language_unit_map(t_stats: pd.DataFrame, fractions: tuple[float, ...] = (0.01, 0.10)) -> plt.Figure:
    """Where the language-selective units sit: for each model type, a map of its layers (rows)
    by units (columns) with the top-``fractions`` units coloured (darker = more selective), and
    beside it the share of each layer's units that is selected.

    ``t_stats`` is tidy: ``layer``, ``unit``, ``t`` (Welch t, sentences > non-words) and
    ``label`` (model type; optional for one model).
    """
    t = _unit_selection(t_stats, fractions)
    labels = _present(t["label"])
    fr = sorted(fractions)
    layers = sorted(t["layer"].astype(int).unique())
    with _style():
        fig, axes = plt.subplots(len(labels), 2, figsize=(PAGE_WIDTH, 0.9 + (0.32 * len(layers) + 0.9) * len(labels)),
                                 squeeze=False, gridspec_kw={"width_ratios": [2.2, 1]})
        for row, label in zip(axes, labels):
            g = t[t["label"] == label]
            code = np.zeros((len(layers), int(g["unit"].max()) + 1))
            for level, f in enumerate(sorted(fr, reverse=True), start=1):
                s = g[g["selected"] == f]
                code[s["layer"].astype(int).map(layers.index).to_numpy(), s["unit"].astype(int).to_numpy()] = level
            base = np.array(to_rgb(_color(label)))
            colours = [(0.93, 0.93, 0.93)] + [tuple(1 - (1 - base) * a) for a in np.linspace(0.45, 1.0, len(fr))]
            row[0].imshow(code, aspect="auto", interpolation="nearest", cmap=ListedColormap(colours),
                          vmin=-0.5, vmax=len(fr) + 0.5)
            row[0].set_yticks(range(len(layers)), layers)
            row[0].set(ylabel="layer", title=label, xlabel="unit (hidden dimension)")
            row[0].grid(False)
            share = [{"layer": layer, "fraction": f,
                      "share": float(((g["layer"] == layer) & (g["selected"] <= f)).sum())
                      / max(1, int((g["selected"] <= f).sum()))} for layer in layers for f in fr]
            sh = pd.DataFrame(share)
            for j, f in enumerate(fr):
                s = sh[sh["fraction"] == f]
                row[1].barh(np.arange(len(layers)) + (j - (len(fr) - 1) / 2) * 0.8 / len(fr), s["share"],
                            height=0.8 / len(fr), color=colours[len(fr) - j], label=f"top {f * 100:g} %")
            row[1].set_yticks(range(len(layers)), layers)
            row[1].invert_yaxis()
            row[1].set(xlabel="share of the selected units", xlim=(0, 1))
            row[1].xaxis.set_major_locator(MaxNLocator(3))
        fig.legend(handles=[Line2D([], [], color="#555555", alpha=a, lw=8, label=f"top {f * 100:g} % of units")
                            for f, a in zip(fr, np.linspace(1.0, 0.45, len(fr)))],
                   loc="outside lower center", ncols=len(fr), frameon=False, title="darker: more selective")
        fig.suptitle("Where the language-selective units sit")
    return _finish(fig)


def language_unit_t_distribution(t_stats: pd.DataFrame, fractions: tuple[float, ...] = (0.01, 0.10)) -> plt.Figure:
    """The distribution of the units' t-statistics (sentences > non-words), one line per model
    type, with the threshold of each top fraction marked (dotted, in the model's colour)."""
    t = _unit_selection(t_stats, fractions)
    t = t[np.isfinite(t["t"])]
    labels = _present(t["label"])
    with _style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.6))
        bins = np.histogram_bin_edges(t["t"], bins=60)
        for label in labels:
            g = t[t["label"] == label]
            ax.hist(g["t"], bins=bins, histtype="step", lw=2, color=_color(label), label=label, density=True)
            for f in fractions:
                thr = g.loc[g["selected"] <= f, "t"].min()
                ax.axvline(thr, ls=":", color=_color(label), lw=1.5)
        ax.axvline(0, color="#555555", lw=1)
        ax.set(title="Selectivity of every unit", xlabel="Welch t (sentences > non-words)", ylabel="density")
        ax.plot([], [], ls=":", color="#555555", lw=1.5,
                label=f"threshold of the top {', '.join(f'{f * 100:g} %' for f in sorted(fractions))}")
        _figure_legend(fig, ax, ncols=3)
    return _finish(fig)


# ------------------------------------------------------------------------------ data and weights
def corpus_sizes(corpora: pd.DataFrame, x: str = "tokens", y: str = "split") -> plt.Figure:
    """Corpus sizes on a log axis with labels only at powers of ten (no overlapping ticks), each
    bar labelled with its count."""
    with _style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.45 * len(corpora) + 1.5))
        ax.barh(corpora[y].astype(str), corpora[x], color=PALETTE["Connectome"])
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, numticks=12))
        ax.xaxis.set_minor_formatter(NullFormatter())
        for i, v in enumerate(corpora[x]):
            ax.text(v, i, f" {int(v):,}", va="center", fontsize=10)
        ax.set_xlim(right=float(corpora[x].max()) * 8)
        ax.invert_yaxis()
        ax.set(xlabel="tokens (log scale)", ylabel="", title="Corpus sizes in this profile")
    return _finish(fig)


def weight_histograms(weights: Mapping[str, np.ndarray], tensor: str = "", bins: int = 81) -> plt.Figure:
    """Histograms (log counts) of one tensor's initial weights, one panel per model type, with
    the share of non-zero weights in each title."""
    with _style():
        fig, axes = plt.subplots(1, len(weights), figsize=(PAGE_WIDTH, 3.0), sharey=True, squeeze=False)
        for ax, (label, w) in zip(axes[0], weights.items()):
            w = np.asarray(w.detach().cpu().numpy() if hasattr(w, "detach") else w).ravel()
            ax.hist(w, bins=bins, color=_color(label))
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(MaxNLocator(3))
            name = MODEL_TYPES_BY_LABEL[label].short if label in MODEL_TYPES_BY_LABEL else label
            ax.set_title(f"{name.replace(chr(10), ' ')}\n{(w != 0).mean():.1%} non-zero", fontsize=11)
            ax.set_xlabel("initial weight")
        axes[0][0].set_ylabel("count (log scale)")
        if tensor:
            fig.suptitle(f"Initial weights of {_short_tensor(tensor)}")
    return _finish(fig)


def surprisal_scatter(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Word surprisal (bits) against mean reading time, with the words' token counts as colour."""
    with _style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.0))
        sns.scatterplot(data=table, x="surprisal_bits", y="rt", hue="n_tokens", palette="viridis", s=10, alpha=0.5,
                        linewidth=0, ax=ax)
        _hue_legend_title(ax, "tokens per word")
        ax.set(xlabel="word surprisal (bits)", ylabel="mean reading time (ms)", title=title)
    return _finish(fig)


def summary_table(summary: pd.DataFrame, metrics: list[tuple[str, str]], digits: int = 3) -> pd.DataFrame:
    """A wide 'mean ± SE' table: rows model types, columns task/metric."""
    rows = {}
    for task, metric in metrics:
        d = summary[(summary["task"] == task) & (summary["metric"] == metric)].set_index("label")
        rows[f"{task} {metric}"] = {
            label: (f"{d.loc[label, 'mean']:.{digits}f}"
                    + ("" if np.isnan(d.loc[label, "se"]) else f" ± {d.loc[label, 'se']:.{digits}f}"))
            for label in d.index
        }
    return pd.DataFrame(rows).reindex(_present(summary["label"]))


def ablation_losses(table: pd.DataFrame, unigram: float | None = None) -> plt.Figure:
    """Final validation loss of the per-component ablations next to the three model types
    (rows of :func:`connectome_lib.ablation.ablation_table`: ``model``, ``label``, ``mean``,
    ``se``), with seed SEs; a dotted line at the Connectome's loss, and the unigram entropy if given."""
    with _style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.42 * len(table) + 1.4))
        # the three model types by their names, the variants by theirs ("random wte", "only blocks")
        names = [r.label if r.label in PALETTE else str(r.model).replace("_", " ") for r in table.itertuples()]
        for i, r in enumerate(table.itertuples()):
            color = PALETTE.get(r.label, "#777777")
            ax.errorbar(r.mean, i, xerr=0 if not np.isfinite(r.se) else r.se, fmt="o", color=color, capsize=3, ms=7)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ref = table.loc[table["model"] == "connectome", "mean"]
        if len(ref):
            ax.axvline(float(ref.iloc[0]), color=PALETTE["Connectome"], ls=":", lw=1.2, label="Connectome")
        values = list(table["mean"] - table["se"].fillna(0)) + list(table["mean"] + table["se"].fillna(0))
        lo, hi = zoom_limits(values)
        if unigram is not None and lo <= unigram <= hi:
            ax.axvline(unigram, color="#777777", ls="--", lw=1.2, label="unigram entropy")
        elif unigram is not None:  # far off the zoomed axis: say where it is rather than draw it
            ax.annotate(f"unigram entropy {unigram:.3f} ({'right' if unigram > hi else 'left'} of this axis)",
                        (0.99, 0.01), xycoords="axes fraction", ha="right", va="bottom", fontsize=9, color="#555555")
        _legend(ax, title=None, loc="upper right")
        ax.set_xlim(lo, hi)
        ax.set(xlabel="learning-curve loss at the last iteration (nats per token)", ylabel="",
               title="Which part of the connectome carries the effect?")
    return _finish(fig)

