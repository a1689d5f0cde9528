"""The papermill pipeline's checks and the notebooks' set-up."""

import json

import pytest

from connectome_lib import pipeline
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


def test_stage_fingerprint_ignores_what_shapes_no_result_as_the_steps_do():
    """Logging and saving cadence, compilation, the split of the effective batch and the
    ablations' checkpoint retention leave a stage page as it is; the effective batch does not."""
    from connectome_lib.config import load_profile

    src = project_root() / "notebooks" / "03_development.ipynb"
    base = load_profile("smoke")
    fp = pipeline.stage_fingerprint(base, src)
    t = base.develop.train
    same = {"develop.train.log_every": t.log_every + 3, "evolve.train.save_state_every": 7,
            "develop.train.compile": not t.compile, "ablations.keep_checkpoints": True,
            "develop.train.batch_size": t.batch_size * t.grad_accum, "develop.train.grad_accum": 1}
    assert pipeline.stage_fingerprint(load_profile("smoke", same), src) == fp
    other = {"develop.train.batch_size": t.batch_size * 2}
    assert pipeline.stage_fingerprint(load_profile("smoke", other), src) != fp


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


def test_a_stage_is_skipped_only_while_this_machines_run_folders_hold_its_steps(tmp_path, monkeypatch):
    """A committed executed notebook (same parameters, settings and source) is not enough: the
    stage runs again unless the run folders here hold every step whose results it shows."""
    from connectome_lib.config import load_profile

    monkeypatch.setenv("CONNECTOME_RUNS_DIR", str(tmp_path / "runs"))
    params = {"profile": "smoke", "overrides": {}}
    for stage in (pipeline.stage_by_key("data"), pipeline.stage_by_key("evolution")):
        src = project_root() / "notebooks" / stage.notebook
        out = tmp_path / stage.notebook
        out.write_text(json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {
            "papermill": {"parameters": params},
            "connectome": {"stage_fingerprint": pipeline.stage_fingerprint(load_profile("smoke"), src)}}}))
        current, why = pipeline.stage_is_current(stage, "smoke", {}, out, src)
        if stage.key == "data":  # it shows no step's results: the notebook alone decides
            assert current, why
        else:
            assert not current and "lack 6 finished step(s)" in why and "evolve/c0/gen_00" in why
            assert str(tmp_path / "runs" / "smoke") in why
    data = pipeline.stage_by_key("data")
    _, why = pipeline.stage_is_current(data, "smoke", {"evolve.generations": 2}, tmp_path / data.notebook,
                                       project_root() / "notebooks" / data.notebook)
    assert why == "executed with other parameters"
