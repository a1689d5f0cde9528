"""The papermill pipeline's checks, and the report helpers the notebooks and the book use."""

import json

import numpy as np
import pandas as pd
import pytest

from connectome_lib import pipeline, report
from connectome_lib.config import ConfigError
from connectome_lib.notebook import project_root, setup


def test_every_stage_notebook_declares_profile_and_overrides():
    import papermill

    root = project_root()
    for s in pipeline.STAGES:
        params = papermill.inspect_notebook(str(root / "notebooks" / s.notebook))
        assert set(params) == {"profile", "overrides"}, s.notebook


def test_unknown_parameter_and_bad_override_are_errors(tmp_path):
    nb = project_root() / "notebooks" / "01_data.ipynb"
    with pytest.raises(ConfigError, match="unknown parameter"):
        pipeline.check_parameters(nb, {"profile": "smoke", "overides": {}})
    with pytest.raises(ConfigError, match="did you mean 'generations'"):
        pipeline.run_stage("data", "smoke", {"evolve.generatons": 2}, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown stage"):
        pipeline.stage_by_key("evolutoin")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_executed_notebook_is_skipped_only_for_the_same_profile_settings_and_source(tmp_path):
    from connectome_lib.config import load_profile

    src = project_root() / "notebooks" / "01_data.ipynb"
    fp = pipeline.stage_fingerprint(load_profile("smoke"), src)
    params = {"profile": "smoke", "overrides": {}}

    def executed(stage_fp):
        (tmp_path / "01_data.ipynb").write_text(json.dumps({
            "cells": [], "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"papermill": {"parameters": params}, "connectome": {"stage_fingerprint": stage_fp}}}))

    executed(fp)
    path, ran = pipeline.run_stage("data", "smoke", {}, out_dir=tmp_path)
    assert path == tmp_path / "01_data.ipynb" and ran is False
    # the same profile name run with other settings (e.g. an earlier version of the profile) is
    # not "already executed": the stage would run again, never show the old output
    assert pipeline.stage_fingerprint(load_profile("smoke", {"evolve.generations": 2}), src) != fp
    assert pipeline._executed_metadata(tmp_path / "01_data.ipynb") == (params, fp)
    executed("0" * 64)
    assert pipeline._executed_metadata(tmp_path / "01_data.ipynb") != (params, fp)


def test_setup_resolves_paths_against_the_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(project_root() / "notebooks")
    monkeypatch.setenv("CONNECTOME_RUNS_DIR", str(tmp_path / "r"))
    monkeypatch.delenv("CONNECTOME_RESULTS_DIR", raising=False)
    ctx = setup("smoke", {"evolve.generations": 2}, stage="test", quiet=True)
    assert ctx.run_root == tmp_path / "r" / "smoke"
    assert ctx.results_dir == project_root() / "results" / "smoke"
    assert ctx.profile.data.cache_dir == str(project_root() / ".cache" / "tokens")
    assert ctx.profile.evolve.generations == 2
    cfg = ctx.eval_config(limit=3)
    assert cfg.limit == 3 and cfg.data_dir == ctx.profile.data.data_dir


def _summary(rows):
    return pd.DataFrame(rows, columns=["label", "task", "metric", "mean", "n_seeds", "se"])


def test_claim_table_verdicts():
    s = _summary([
        ("Connectome", "hellaswag", "acc_norm", 0.30, 4, 0.001),
        ("RandomConnectome", "hellaswag", "acc_norm", 0.25, 4, 0.001),
        ("NoConnectome", "hellaswag", "acc_norm", 0.299, 4, 0.001),
        ("Connectome", "perplexity", "loss", 3.9, 4, 0.01),
        ("RandomConnectome", "perplexity", "loss", 3.5, 4, 0.01),
        ("NoConnectome", "perplexity", "loss", 3.9, 1, np.nan),
    ])
    t = report.claim_table(s).set_index(["measure", "vs"])
    assert t.loc[("HellaSwag acc_norm", "RandomConnectome"), "verdict"] == "better"
    assert t.loc[("HellaSwag acc_norm", "NoConnectome"), "verdict"] == "on par"
    # lower loss is better: a higher loss than the control is "worse"
    assert t.loc[("validation loss", "RandomConnectome"), "verdict"] == "worse"
    assert t.loc[("validation loss", "RandomConnectome"), "advantage"] == pytest.approx(-0.4)


def test_mean_se_and_final_rows():
    df = pd.DataFrame({"model": ["a", "a", "b"], "task": ["t"] * 3, "iteration": [0, 10, 10],
                       "label": ["X"] * 3, "metric": ["m"] * 3, "value": [9.0, 1.0, 3.0]})
    final = report.final_rows(df)
    assert list(final["value"]) == [1.0, 3.0]
    s = report.mean_se(final, ["label"])
    assert s.loc[0, "mean"] == 2.0 and s.loc[0, "se"] == pytest.approx(np.std([1, 3], ddof=1) / np.sqrt(2))


def test_load_results_explains_a_missing_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the pipeline"):
        report.load_results(tmp_path)
