"""The composite of the paper's figure beside ours (connectome_lib.paper_figure), on the committed
results of the cpu profile: two columns per row, the run's own layer axis, one figure legend of
the model types, and a note where the run lacks a measure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from connectome_lib import findings, paper_figure, registry  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "cpu"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    return findings.load(RESULTS)


def _axes(fig, gid: str):
    return [ax for ax in fig.axes if ax.get_gid() == gid]


def _texts(axes) -> list[str]:
    return [" ".join(t.get_text().split()) for ax in axes for t in ax.texts]  # wrapped lines joined


def test_every_panel_of_the_paper_is_a_row_of_two_columns(data):
    fig = paper_figure.composite(data)
    names = paper_figure.panels(data)
    assert names == ["Validation loss", "NLP benchmarks", "Reading times", "Brain by layer", "Language units"]
    assert len(fig.subfigs) == len(names)
    for row, panel in zip(fig.subfigs, paper_figure.drawn_panels(data)):
        assert row.get_gid() == panel.key and len(row.subfigs) == 2
        assert _axes(fig, f"{panel.key}:paper") and _axes(fig, f"{panel.key}:run")
        assert {ax.get_gid() for ax in row.subfigs[0].axes} == {f"{panel.key}:paper"}
        assert {ax.get_gid() for ax in row.subfigs[1].axes} == {f"{panel.key}:run"}
    assert fig.subfigs[0].subfigs[0]._suptitle.get_text() == paper_figure.PAPER_HEADER
    assert fig.subfigs[0].subfigs[1]._suptitle.get_text() == "This run (cpu profile)"


def test_the_runs_brain_panel_has_its_own_layers_only(data):
    fig = paper_figure.composite(data)
    fig.canvas.draw()
    s = data.summary
    layers = sorted({int(m.removeprefix("r_layer")) for m in s.loc[s["task"] == "tuckute2024", "metric"]
                     if m.startswith("r_layer")})
    (run,) = _axes(fig, "brain:run")
    (paper,) = _axes(fig, "brain:paper")
    assert list(run.get_xticks()) == layers
    assert max(paper.get_xticks()) == 12 and max(run.get_xlim()) < 12


def test_one_figure_legend_titled_model_with_the_model_types(data):
    fig = paper_figure.composite(data)
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "model"
    names = [t.get_text() for t in legend.get_texts()]
    assert names == [label for label in registry.LABELS if label in set(data.summary["label"])]
    # the same colour per model type in both columns
    colours = {line.get_label(): line.get_color() for line in _axes(fig, "loss:paper")[0].get_lines()}
    colours_run = {line.get_label(): line.get_color() for line in _axes(fig, "loss:run")[0].get_lines()}
    assert all(colours[k] == colours_run[k] for k in colours)


def test_a_measure_the_run_lacks_gets_a_note(data):
    summary = data.summary[~data.summary["task"].isin(["language_units", "blimp"])]
    evals = data.evals[data.evals["task"] != "futrell2018"]
    fig = paper_figure.composite(dataclasses.replace(data, summary=summary, evals=evals))
    assert paper_figure.panels(data)[-1] == "Language units"  # the row stays
    for key in ("units", "reading"):
        assert _texts(_axes(fig, f"{key}:run")) == [paper_figure.NOT_MEASURED]
    nlp = _axes(fig, "nlp:run")
    assert [ax.get_title() for ax in nlp] == ["HellaSwag", "MMLU", "BLiMP"]
    assert _texts(nlp[2:]) == [paper_figure.NOT_MEASURED] and paper_figure.NOT_MEASURED not in _texts(nlp[:2])
    # the paper has no BLiMP number: its column says so
    assert paper_figure.NOT_REPORTED in _texts(_axes(fig, "nlp:paper"))
    # a measure the run has is drawn, not noted
    assert paper_figure.NOT_MEASURED not in _texts(_axes(fig, "loss:run"))


def test_only_panels_the_paper_reports_are_drawn(data):
    paper = data.paper[data.paper["task"] != "language_units"]
    d = dataclasses.replace(data, paper=paper)
    assert "Language units" not in paper_figure.panels(d)
    assert len(paper_figure.composite(d).subfigs) == len(paper_figure.panels(d)) == 4
