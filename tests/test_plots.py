"""The figures of connectome_lib.plots on small synthetic data: labels in words, integer layer
ticks, y-axes zoomed to the data, reference lines inside the axes, readable font sizes."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from connectome_lib import plots, registry  # noqa: E402

MODELS = ["Connectome", "RandomConnectome", "NoConnectome"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _summary(task="hellaswag", metric="acc_norm", means=(0.262, 0.255, 0.258), ci=False):
    rows = [{"label": label, "task": task, "metric": metric, "mean": m, "se": 0.002, "n_seeds": 2}
            for label, m in zip(MODELS, means)]
    df = pd.DataFrame(rows)
    if ci:
        df["ci_low"], df["ci_high"] = df["mean"] - 0.01, df["mean"] + 0.01
    return df


def _tick_sizes(fig) -> list[float]:
    fig.canvas.draw()
    return [t.get_fontsize() for ax in fig.axes if ax.get_visible()
            for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]


def _axhline_values(ax) -> list[float]:
    return [line.get_ydata()[0] for line in ax.get_lines()
            if len(set(np.atleast_1d(line.get_ydata()))) == 1 and list(line.get_xdata()) == [0, 1]]


def test_measure_names_are_words_with_units():
    assert registry.measure_title("tuckute2024", "r_best").startswith("Brain predictivity")
    assert "Pearson r" in registry.measure_axis("tuckute2024", "r_best")
    assert "nats/token" in registry.measure_axis("perplexity", "loss")
    assert "_" not in registry.measure_title("newtask", "some_metric")


def test_zoom_limits_hug_the_data_and_widen_equal_values():
    lo, hi = plots.zoom_limits([0.25, 0.262, 0.255])
    assert 0.2 < lo < 0.25 < 0.262 < hi < 0.3
    lo, hi = plots.zoom_limits([0.22, 0.22, 0.22])
    assert lo < 0.22 < hi and hi - lo == pytest.approx(0.02 * 0.22)
    assert plots.zoom_limits([np.nan, None]) == (0.0, 1.0)


def test_metric_bars_zoom_mark_chance_paper_and_item_ci():
    summary = pd.concat([_summary(ci=True), _summary("tuckute2024", "r_best", (0.09, 0.11, 0.06), ci=True)])
    paper = pd.DataFrame([{"model": label, "task": "hellaswag", "metric": "acc_norm", "value": v, "se": 0.001,
                           "iteration": np.nan, "layer": np.nan} for label, v in zip(MODELS, (0.276, 0.257, 0.269))])
    fig = plots.metric_bars(summary, [("hellaswag", "acc_norm"), ("tuckute2024", "r_best")], paper=paper,
                            baselines={("tuckute2024", "r_best"): 0.216},
                            baseline_labels={("tuckute2024", "r_best"): "sentence length"})
    hs, brain = fig.axes[:2]
    assert hs.get_title() == "HellaSwag (normalised)" and "accuracy" in hs.get_ylabel()
    assert brain.get_ylabel() == "brain predictivity (Pearson r)"
    lo, hi = hs.get_ylim()
    assert 0.2 < lo < 0.25 and hi < 0.3, "zoomed to data, chance (0.25) and paper, not from 0"
    assert 0.25 in _axhline_values(hs)
    assert 0.216 in _axhline_values(brain) and brain.get_ylim()[1] > 0.216
    assert any(t.get_text() == "sentence length" for t in brain.texts)
    # item CI whiskers (thin) and seed SE (thick) per model, the paper as diamonds
    assert len(hs.containers) == 3 * 2 + 3
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "model"
    assert {"Connectome", "paper ± SE", "item 95 % CI"} <= {t.get_text() for t in legend.get_texts()}
    assert min(_tick_sizes(fig)) >= 10


def _figure_legend(fig):
    assert len(fig.legends) == 1, "one legend, below the axes (never over a curve)"
    return fig.legends[0]


def test_brain_by_layer_integer_ticks_zoom_and_baseline():
    rows = [{"label": label, "seed": s, "task": "tuckute2024", "metric": f"r_layer{k}",
             "value": 0.02 + 0.03 * k + 0.01 * s}
            for label in MODELS for s in (0, 1) for k in range(3)]
    untrained = pd.Series([0.0, 0.01, 0.05], index=[0, 1, 2])
    fig = plots.brain_by_layer(pd.DataFrame(rows), untrained=untrained, baselines={"sentence length": 0.216})
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [0, 1, 2]
    assert ax.get_ylabel() == "Pearson r" and "embeddings" in ax.get_xlabel()
    assert ax.get_ylim()[1] > 0.216 and ax.get_ylim()[0] > -0.1
    assert ax.get_legend() is None
    legend = _figure_legend(fig)
    assert legend.get_title().get_text() == "model"
    assert "sentence length" in [t.get_text() for t in legend.get_texts()]


def test_brain_by_layer_puts_the_paper_on_its_own_layer_axis():
    """A 2-layer run is drawn on its layers 0-2; the paper's 12 layers get their own panel."""
    rows = [{"label": label, "seed": s, "task": "tuckute2024", "metric": f"r_layer{k}", "value": 0.02 * k + 0.01 * s}
            for label in MODELS for s in (0, 1) for k in range(3)]
    paper = pd.DataFrame([{"model": label, "layer": k, "value": 0.02 * k} for label in MODELS for k in range(13)])
    fig = plots.brain_by_layer(pd.DataFrame(rows), paper=paper)
    left, right = fig.axes[:2]
    assert "Paper" in left.get_title() and list(left.get_xticks()) == list(range(13))
    assert right.get_title() == "This run" and list(right.get_xticks()) == [0, 1, 2]


def test_learning_curves_and_metric_vs_iteration_legends_say_model():
    curves = pd.DataFrame([{"label": label, "seed": s, "iteration": i, "val_loss": 8 - i / 100 + 0.01 * s}
                           for label in MODELS for s in (0, 1) for i in (0, 100, 200)])
    fig = plots.learning_curves(curves)
    assert _figure_legend(fig).get_title().get_text() == "model"
    assert fig.axes[0].get_ylabel() == "validation loss (nats/token)"
    res = pd.DataFrame([{"label": label, "seed": s, "iteration": i, "task": "futrell2018", "metric": "r",
                         "value": 0.36 + i / 10000 + 0.001 * s} for label in MODELS for s in (0, 1) for i in (0, 100)])
    fig = plots.metric_vs_iteration(res, "futrell2018", "r", baseline=0.357)
    ax = fig.axes[0]
    assert _figure_legend(fig).get_title().get_text() == "model"
    assert ax.get_ylabel() == registry.measure_axis("futrell2018", "r")
    assert ax.get_ylim()[0] > 0.3, "zoomed, not from 0"


def test_data_efficiency_log_axis_and_tokens_to_target():
    """Loss against tokens on a log axis; the legend says which types reach NoConnectome's final
    loss, and a type that does gets its mean point on the target line."""
    from connectome_lib import effects

    rows = []
    for label, unit, offset in [("Connectome", "c0", -0.3), ("Connectome", "c1", -0.25),
                                ("NoConnectome", "s0", 0.0), ("NoConnectome", "s1", 0.01),
                                ("RandomConnectome", "c0", 0.5), ("RandomConnectome", "c1", 0.55)]:
        for i in range(0, 5):
            rows.append({"label": label, "unit": unit, "seed": 0, "iteration": i * 10, "tokens": i * 1000,
                         "val_loss": 6 - i * 0.5 + offset})
    curves = pd.DataFrame(rows)
    reach = effects.tokens_to_target_by_type(curves)
    fig = plots.data_efficiency(curves, reach)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] > 0
    texts = [t.get_text() for t in _figure_legend(fig).get_texts()]
    assert any(t.startswith("Connectome:") and "of the tokens" in t for t in texts)
    assert "RandomConnectome: 0 of 2 units reach it" in texts
    target = reach["target"].iloc[0]
    assert any(line.get_linestyle() == "--" and list(line.get_ydata()) == [target, target] for line in ax.lines)


def test_mask_images_show_one_mask_per_connectome_at_its_density():
    import numpy as np

    rng = np.random.default_rng(0)
    masks = {"Connectome": rng.random((8, 32)) < 0.3, "RandomConnectome": rng.random((8, 32)) < 0.3}
    fig = plots.mask_images(masks, "transformer.h.0.mlp.c_fc.weight")
    assert len(fig.axes) == 2 and fig.axes[0].get_title().startswith("Connectome: ")
    assert fig.axes[0].get_images()[0].get_array().shape == (8, 32)
    assert plots.mask_images({"Connectome": masks["Connectome"].T}).axes[0].get_images()[0].get_array().shape == (8, 32)


def test_learning_curves_vs_paper_one_model_legend_zoomed_paper_axis():
    curves = pd.DataFrame([{"label": label, "seed": s, "iteration": i, "val_loss": 8 - i / 100 + 0.01 * s}
                           for label in MODELS for s in (0, 1) for i in (0, 100, 200)])
    paper = pd.DataFrame([{"model": label, "iteration": i, "value": 3.6 - i / 10000 + 0.02 * k}
                          for k, label in enumerate(MODELS) for i in (500, 1000, 2000)])
    fig = plots.learning_curves_vs_paper(curves, paper, profile="cpu")
    left, right = fig.axes[:2]
    assert "Paper" in left.get_title() and "cpu profile" in right.get_title()
    assert 3.3 < left.get_ylim()[0] < 3.4 and left.get_ylim()[1] < 3.7
    assert [t.get_text() for t in fig.legends[0].get_texts()] == MODELS
    assert fig.legends[0].get_title().get_text() == "model"


def test_loss_vs_density_uses_the_density_each_generation_trained_at():
    curves = pd.DataFrame([{"generation": g, "iteration": i, "val_loss": 7 - 0.1 * i / 100 + 0.05 * g}
                           for g in range(3) for i in (100, 200)])
    density = pd.DataFrame([{"generation": g, "numel": 1000, "kept": round(1000 * 0.8 ** (g + 1))} for g in range(3)])
    fig = plots.loss_vs_density(curves, density)
    ax = fig.axes[0]
    x, y = ax.get_lines()[0].get_data()
    assert list(np.round(x, 3)) == [1.0, 0.8, 0.64]
    assert list(np.round(y, 3)) == [6.8, 6.85, 6.9], "the last iteration's loss of each generation"
    assert ax.xaxis_inverted() and ax.get_ylim()[0] > 6
    assert [t.get_text() for t in ax.get_xticklabels()] == ["64.0%", "80.0%", "100%"]
    with pytest.raises(ValueError, match="kept"):
        plots.loss_vs_density(curves, density.drop(columns="kept"))


def test_mask_degrees_histograms_and_binomial():
    rng = np.random.default_rng(0)
    conn = rng.random((48, 32)) < np.linspace(0.05, 0.5, 32)[None, :]
    rand = rng.random((48, 32)) < conn.mean()
    fig = plots.mask_degrees({"Connectome": conn, "RandomConnectome": rand}, "transformer.h.0.mlp.c_fc.weight")
    rows, cols = fig.axes[:2]
    assert "per row" in rows.get_xlabel() and "per column" in cols.get_xlabel()
    assert all(float(t).is_integer() for t in rows.get_xticks())
    assert len(rows.patches) == 2 and len(cols.patches) == 2, "one step histogram per mask"
    assert "binomial" in rows.get_lines()[0].get_label()
    assert "h.0.mlp.c_fc" in fig.get_suptitle()
    with pytest.raises(ValueError, match="differ in shape"):
        plots.mask_degrees({"Connectome": conn, "RandomConnectome": rand[:10]})


def _row_density_rows(vocab=200):
    """Token rows of wte and lm_head: the connectome prunes frequent tokens' head rows (density
    falls with frequency), the random mask keeps every row at about 0.3."""
    rng = np.random.default_rng(2)
    counts = np.floor(rng.pareto(1.0, vocab) * 5).astype(int)
    counts[:5] = 0  # tokens the corpus never has
    rows = []
    for tensor in ("transformer.wte.weight", "lm_head.weight"):
        for label in ("Connectome", "RandomConnectome"):
            if label == "Connectome" and tensor == "lm_head.weight":
                dens = np.clip(0.6 - 0.1 * np.log10(counts + 1), 0, 1)
            else:
                dens = np.clip(0.3 + rng.normal(0, 0.02, vocab), 0, 1)
            rows += [{"tensor": tensor, "connectome": label, "token": t, "row_density": d, "count_inner": c}
                     for t, (d, c) in enumerate(zip(dens, counts))]
    return pd.DataFrame(rows)


def test_row_density_vs_frequency_draws_each_token_and_binned_medians():
    rows = _row_density_rows()
    fig = plots.row_density_vs_frequency(rows)
    wte, head = fig.axes[:2]
    assert wte.get_title() == "wte" or "wte" in wte.get_title()
    assert "head" in head.get_title() and head.get_xscale() == "log"
    head_rows = rows[(rows.tensor == "lm_head.weight") & (rows.connectome == "Connectome")]
    occurring = int((head_rows["count_inner"] > 0).sum())
    assert [len(c.get_offsets()) for c in head.collections] == [occurring, occurring], "never-seen tokens left out"
    lines = {line.get_label(): line for line in head.get_lines()}
    conn = lines["Connectome"].get_ydata()
    assert conn[0] > conn[-1] + 0.1, "the connectome's median falls with frequency"
    assert abs(lines["RandomConnectome"].get_ydata()[0] - lines["RandomConnectome"].get_ydata()[-1]) < 0.05
    assert "token count (inner corpus)" == head.get_xlabel() and "row density" in wte.get_ylabel()
    assert fig.get_size_inches()[0] == pytest.approx(plots.PAGE_WIDTH)
    assert min(_tick_sizes(fig)) >= 9
    with pytest.raises(ValueError, match="count_outer"):
        plots.row_density_vs_frequency(rows, corpus="outer")


def _t_stats(n_layers=3, width=50):
    rng = np.random.default_rng(1)
    return pd.DataFrame([{"label": label, "layer": k, "unit": u, "t": rng.normal(k, 1.0)}
                         for label in MODELS[:2] for k in range(1, n_layers + 1) for u in range(width)])


def test_language_unit_map_marks_the_top_units_per_layer():
    t = _t_stats()
    fig = plots.language_unit_map(t, fractions=(0.01, 0.10))
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 2
    code = image_axes[0].images[0].get_array()
    n = 150
    assert (code == 2).sum() == math.ceil(0.01 * n) and (code >= 1).sum() == math.ceil(0.10 * n)
    g = t[t.label == "Connectome"]
    best = g.loc[g["t"].idxmax()]
    assert code[int(best.layer) - 1, int(best.unit)] == 2, "the most selective unit is in the top 1 %"
    assert [int(x) for x in image_axes[0].get_yticks()] == [0, 1, 2]
    assert [t.get_text() for t in image_axes[0].get_yticklabels()] == ["1", "2", "3"]
    with pytest.raises(ValueError, match="'t'"):
        plots.language_unit_map(t.drop(columns="t"))


def test_language_unit_t_distribution_marks_thresholds():
    t = _t_stats()
    fig = plots.language_unit_t_distribution(t, fractions=(0.10,))
    ax = fig.axes[0]
    g = t[t.label == "Connectome"].sort_values("t", ascending=False)
    threshold = g["t"].iloc[math.ceil(0.10 * len(g)) - 1]
    vlines = [line.get_xdata()[0] for line in ax.get_lines() if len(line.get_xdata())]
    assert threshold in vlines and 0 in vlines
    assert "Welch t" in ax.get_xlabel()
    legend = _figure_legend(fig)  # below the axes: it hides nothing
    assert legend.get_title().get_text() == "model"
    assert "threshold of the top 10 %" in [x.get_text() for x in legend.get_texts()]


def _score_table():
    rows = []
    for measure, direction, means in [("Validation loss", "lower", (6.78, 6.65, 6.58)),
                                      ("HellaSwag accuracy", "higher", (0.262, 0.255, 0.258))]:
        for label, m in zip(MODELS, means):
            rows.append({"measure": measure, "label": label, "mean": m, "ci_low": m - 0.004, "ci_high": m + 0.004,
                         "paper_direction": direction})
    return pd.DataFrame(rows)


def test_scorecard_marks_direction_and_zooms():
    fig = plots.scorecard(_score_table())
    loss, hs = [ax for ax in fig.axes if ax.get_visible()][:2]
    assert loss.get_title() == "Validation loss" and "← better" in loss.get_xlabel()
    assert "better →" in hs.get_xlabel()
    assert [t.get_text() for t in hs.get_yticklabels()] == MODELS
    assert hs.get_xlim()[0] > 0.24 and loss.get_xlim()[0] > 6
    assert min(_tick_sizes(fig)) >= 10
    with pytest.raises(ValueError, match="ci_low"):
        plots.scorecard(_score_table().drop(columns="ci_low"))
    with pytest.raises(ValueError, match="paper_direction"):
        plots.scorecard(_score_table().assign(paper_direction="up"))


def test_corpus_sizes_log_ticks_do_not_overlap():
    corpora = pd.DataFrame({"split": ["outer", "inner", "val"], "tokens": [5_000_000, 1_200_000, 300_000]})
    ax = plots.corpus_sizes(corpora).axes[0]
    ax.figure.canvas.draw()
    labelled = [t for t in ax.get_xticklabels(minor=True) if t.get_text()]
    assert labelled == [], "no labels on minor log ticks"
    majors = [x for x in ax.get_xticks() if ax.get_xlim()[0] <= x <= ax.get_xlim()[1]]
    assert majors and all(float(np.log10(x)).is_integer() for x in majors)


def test_density_by_layer_says_after_pruning():
    density = pd.DataFrame([{"generation": g, "layer": layer, "numel": 100, "kept": round(100 * 0.8 ** (g + 1))}
                            for g in range(2) for layer in ("embedding", "block_00")])
    ax = plots.density_by_layer(density).axes[0]
    assert "after pruning generation" in ax.get_xlabel()


def test_every_figure_is_page_width():
    summary = _summary()
    for fig in (plots.metric_bars(summary, [("hellaswag", "acc_norm")]), plots.scorecard(_score_table()),
                plots.language_unit_t_distribution(_t_stats())):
        assert fig.get_size_inches()[0] == pytest.approx(plots.PAGE_WIDTH)
        assert fig.dpi == plots.DPI


def test_style_restores_only_its_own_settings():
    """A figure made by plots must not switch off the notebook's inline display: the style
    context restores the font sizes it set, not rcParams it never touched (such as
    ``interactive``, which Jupyter's inline backend switches on while the first figure is made)."""
    before = matplotlib.is_interactive()
    size = matplotlib.rcParams["font.size"]
    with plots._style():
        assert matplotlib.rcParams["font.size"] == 11
        matplotlib.interactive(not before)  # what the inline backend does on a kernel's first figure
    try:
        assert matplotlib.is_interactive() == (not before)
        assert matplotlib.rcParams["font.size"] == size
    finally:
        matplotlib.interactive(before)


def _ablation_table():
    return pd.DataFrame({"model": ["connectome", "random", "dense", "random_wte", "only_blocks"],
                         "label": ["Connectome", "RandomConnectome", "NoConnectome", "Connectome with random wte",
                                   "Random with connectome blocks"],
                         "mean": [4.31, 4.62, 4.36, 4.46, 4.62], "se": [0.002, 0.005, 0.008, 0.003, 0.008]})


def test_ablation_losses_names_models_and_never_labels_a_line_off_the_axis():
    fig = plots.ablation_losses(_ablation_table(), unigram=5.947)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "Connectome", "RandomConnectome", "NoConnectome", "random wte", "only blocks"]
    lo, hi = ax.get_xlim()
    assert lo < 4.31 and hi < 5.0, "zoomed to the models, not stretched to the unigram entropy"
    assert "unigram entropy" not in [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("unigram entropy 5.947 (right of this axis)" in t.get_text() for t in ax.texts)
    near = plots.ablation_losses(_ablation_table(), unigram=4.5).axes[0]
    assert "unigram entropy" in [t.get_text() for t in near.get_legend().get_texts()]
    assert min(_tick_sizes(fig)) >= 9


def test_learning_curves_against_tokens_with_a_baseline_line():
    curves = pd.DataFrame({"label": ["Connectome"] * 4, "seed": [0, 0, 1, 1], "iteration": [0, 1, 0, 1],
                           "tokens": [0, 512, 0, 512], "val_loss": [7.0, 6.0, 7.2, 6.2]})
    fig = plots.learning_curves(curves, x="tokens", baselines={"unigram entropy": 6.5, "missing": None})
    ax = fig.axes[0]
    assert ax.get_xlabel() == "inner-loop tokens seen"
    flat = [line for line in ax.get_lines()
            if len(set(line.get_ydata())) == 1 and line.get_label() == "unigram entropy"]
    assert len(flat) == 1 and flat[0].get_ydata()[0] == 6.5
    assert "missing" not in [t.get_text() for t in _figure_legend(fig).get_texts()]
