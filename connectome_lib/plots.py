"""The figures of the notebooks and the results page (seaborn/matplotlib), one function each.

Every function takes tidy DataFrames (see :mod:`connectome_lib.report`) and returns the
matplotlib ``Figure``; colours are fixed per model type so that every figure reads alike.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .layout import INIT_LABELS

PALETTE = {"Connectome": "#1f5fa8", "RandomConnectome": "#e08a1e", "NoConnectome": "#3a9a4b",
           "Untrained": "#8c8c8c", "Paper": "#222222"}
ORDER = list(INIT_LABELS.values())


def set_theme() -> None:
    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "figure.autolayout": True})


def _present(labels) -> list[str]:
    return [l for l in ORDER if l in set(labels)]


def generation_curves(curves: pd.DataFrame) -> plt.Figure:
    """Outer loop: validation loss against iteration, one line per generation."""
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=curves, x="iteration", y="val_loss", hue="generation", palette="viridis", marker="o", ax=ax)
    ax.set(title="Outer loop: validation loss per generation", xlabel="iteration within the generation",
           ylabel="validation loss (nats/token)")
    return fig


def density_by_layer(density: pd.DataFrame) -> plt.Figure:
    """Outer loop: density of each layer (embedding, blocks, head) after every generation."""
    t = density.groupby(["generation", "layer"])[["numel", "kept"]].sum().reset_index()
    t["density"] = t["kept"] / t["numel"]
    pivot = t.pivot(index="layer", columns="generation", values="density")
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(pivot) + 1.5))
    sns.heatmap(pivot, annot=True, fmt=".3f", cmap="Blues", vmin=0, vmax=1, ax=ax, cbar_kws={"label": "density"})
    ax.set(title="Connectome density per layer after each generation", xlabel="generation", ylabel="")
    return fig


def learning_curves(curves: pd.DataFrame, paper: pd.DataFrame | None = None, y: str = "val_loss") -> plt.Figure:
    """Inner loop: validation loss against iteration, mean and SE band over seeds per model type;
    the paper's values (as points) when given."""
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=curves, x="iteration", y=y, hue="label", hue_order=_present(curves["label"]),
                 palette=PALETTE, errorbar="se", marker="o", ax=ax)
    if paper is not None and len(paper):
        for label, g in paper.groupby("model"):
            ax.scatter(g["iteration"], g["value"], marker="x", s=50, color=PALETTE.get(label, "k"),
                       label=f"{label} (paper)")
        ax.legend(fontsize=8)
    ax.set(title="Inner loop: validation loss", xlabel="inner-loop iteration", ylabel="validation loss (nats/token)")
    return fig


def metric_bars(summary: pd.DataFrame, metrics: list[tuple[str, str]], paper: pd.DataFrame | None = None,
                baselines: dict[tuple[str, str], float] | None = None) -> plt.Figure:
    """One panel per (task, metric): mean ± SE over seeds per model type, the paper's value as a
    black tick and a baseline (e.g. chance or the untrained model) as a dashed line."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.6), squeeze=False)
    for ax, (task, metric) in zip(axes[0], metrics):
        d = summary[(summary["task"] == task) & (summary["metric"] == metric)]
        labels = _present(d["label"])
        d = d.set_index("label").reindex(labels)
        ax.bar(range(len(labels)), d["mean"], yerr=d["se"].fillna(0), color=[PALETTE[l] for l in labels], capsize=4)
        if paper is not None:
            p = paper[(paper["task"] == task) & (paper["metric"] == metric)].set_index("model")
            for i, l in enumerate(labels):
                if l in p.index:
                    ax.plot([i - 0.35, i + 0.35], [p.loc[l, "value"]] * 2, color="k", lw=2,
                            label="paper" if i == 0 else None)
        if baselines and (task, metric) in baselines:
            ax.axhline(baselines[(task, metric)], ls="--", color=PALETTE["Untrained"], label="baseline")
        ax.set_xticks(range(len(labels)), [l.replace("Connectome", "Conn.") for l in labels], rotation=20)
        ax.set_title(f"{task} {metric}", fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


def metric_vs_iteration(results: pd.DataFrame, task: str, metric: str, paper: pd.DataFrame | None = None,
                        ylabel: str | None = None, baseline: float | None = None) -> plt.Figure:
    """A metric against inner-loop iteration (e.g. reading-time r), mean ± SE over seeds."""
    d = results[(results["task"] == task) & (results["metric"] == metric)]
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=d, x="iteration", y="value", hue="label", hue_order=_present(d["label"]), palette=PALETTE,
                 errorbar="se", marker="o", ax=ax)
    if paper is not None and len(paper):
        for label, g in paper.groupby("model"):
            ax.scatter(g["iteration"], g["value"], marker="x", s=50, color=PALETTE.get(label, "k"), label=f"{label} (paper)")
    if baseline is not None:
        ax.axhline(baseline, ls="--", color=PALETTE["Untrained"], label="untrained model")
    ax.legend(fontsize=8)
    ax.set(xlabel="inner-loop iteration", ylabel=ylabel or f"{task} {metric}")
    return fig


def brain_by_layer(results: pd.DataFrame, paper: pd.DataFrame | None = None, untrained: pd.Series | None = None,
                   prefix: str = "r_layer") -> plt.Figure:
    """Brain predictivity (Pearson r) per layer, mean ± SE over seeds; paper's values dashed;
    the untrained model's per-layer values in grey."""
    d = results[(results["task"] == "tuckute2024") & results["metric"].str.match(rf"^{prefix}\d+$")].copy()
    d["layer"] = d["metric"].str.replace(prefix, "", regex=False).astype(int)
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=d, x="layer", y="value", hue="label", hue_order=_present(d["label"]), palette=PALETTE,
                 errorbar="se", marker="o", ax=ax)
    if paper is not None and len(paper):
        for label, g in paper.groupby("model"):
            ax.plot(g["layer"], g["value"], ls="--", color=PALETTE.get(label, "k"), alpha=0.7, label=f"{label} (paper)")
    if untrained is not None and len(untrained):
        ax.plot(untrained.index, untrained.values, color=PALETTE["Untrained"], marker=".", label="untrained model")
    ax.legend(fontsize=7)
    ax.set(title="Brain predictivity (Tuckute2024, lang_LH_netw)", xlabel="layer (0 = embeddings)", ylabel="Pearson r")
    return fig


def density_comparison(a: pd.DataFrame, b: pd.DataFrame, label_a: str = "Connectome", label_b: str = "RandomConnectome") -> plt.Figure:
    """Per-tensor density and positive-sign share of two connectomes (from density tables)."""
    t = pd.concat([a.assign(connectome=label_a), b.assign(connectome=label_b)])
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.3 * len(a) + 2), sharey=True)
    sns.barplot(data=t, y="tensor", x="density", hue="connectome", palette=PALETTE, ax=axes[0])
    sns.barplot(data=t, y="tensor", x="positive_fraction", hue="connectome", palette=PALETTE, ax=axes[1])
    axes[1].axvline(0.5, ls="--", color="k", lw=1)
    axes[0].set(title="density per tensor", ylabel="")
    axes[1].set(title="share of positive signs among kept weights", ylabel="")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def surprisal_scatter(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Word surprisal (bits) against mean reading time, with the words' token counts as colour."""
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.scatterplot(data=table, x="surprisal_bits", y="rt", hue="n_tokens", palette="viridis", s=8, alpha=0.5,
                    linewidth=0, ax=ax)
    ax.set(xlabel="word surprisal (bits)", ylabel="mean reading time (ms)", title=title)
    return fig


def summary_table(summary: pd.DataFrame, metrics: list[tuple[str, str]], digits: int = 3) -> pd.DataFrame:
    """A wide 'mean ± SE' table: rows model types, columns task/metric."""
    rows = {}
    for task, metric in metrics:
        d = summary[(summary["task"] == task) & (summary["metric"] == metric)].set_index("label")
        rows[f"{task} {metric}"] = {
            l: (f"{d.loc[l, 'mean']:.{digits}f}" + ("" if np.isnan(d.loc[l, "se"]) else f" ± {d.loc[l, 'se']:.{digits}f}"))
            for l in d.index
        }
    return pd.DataFrame(rows).reindex(_present(summary["label"]))
