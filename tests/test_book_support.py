"""What the book build checks about its results (connectome_lib.book_support): where they are,
which profile made them, whether that profile has changed since."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectome_lib.book_support import (
    ProfileMismatchError,
    book_results_dir,
    check_results_profile,
    profile_drift,
)


def test_book_results_dir_reads_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CONNECTOME_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv("CONNECTOME_BOOK_PROFILE", raising=False)
    assert book_results_dir() == tmp_path / "cpu"
    monkeypatch.setenv("CONNECTOME_BOOK_PROFILE", "smoke")
    assert book_results_dir() == tmp_path / "smoke"
    assert book_results_dir("gpu") == tmp_path / "gpu"


def _stage(path, profile):
    meta = {"papermill": {"parameters": {"profile": profile, "overrides": {}}}} if profile else {}
    path.write_text(json.dumps({"cells": [], "metadata": meta, "nbformat": 4, "nbformat_minor": 5}))


def test_check_results_profile_accepts_matching_and_rejects_mixed(tmp_path, monkeypatch):
    _stage(tmp_path / "01_data.ipynb", "gpu")
    _stage(tmp_path / "02_evolution.ipynb", "gpu")
    assert check_results_profile(tmp_path, "gpu") == "gpu"
    monkeypatch.setenv("CONNECTOME_BOOK_PROFILE", "gpu")
    assert check_results_profile(tmp_path) == "gpu"
    monkeypatch.delenv("CONNECTOME_BOOK_PROFILE")
    with pytest.raises(ProfileMismatchError, match=r"'cpu' profile .*01_data.ipynb \(gpu\)"):
        check_results_profile(tmp_path)  # default cpu
    _stage(tmp_path / "03_development.ipynb", None)
    with pytest.raises(ProfileMismatchError, match="03_development.ipynb .<not executed by papermill>"):
        check_results_profile(tmp_path, "gpu")
    with pytest.raises(ProfileMismatchError, match="no executed stage notebooks"):
        check_results_profile(tmp_path / "missing", "cpu")


def test_committed_stage_pages_match_the_default_results():
    stages = Path(__file__).resolve().parents[1] / "book" / "stages"
    if not list(stages.glob("*.ipynb")):
        pytest.skip("no executed stage pages in this checkout")
    assert check_results_profile(stages, "cpu") == "cpu"


def test_profile_drift_names_changed_settings_and_ignores_locations():
    from connectome_lib.config import load_profile

    cfg = load_profile("smoke").to_dict()
    assert profile_drift(cfg, "smoke") == []
    cfg["runs_dir"], cfg["data"]["cache_dir"] = "/elsewhere", "/tmp/x"
    assert profile_drift(cfg, "smoke") == []
    cfg["model"]["n_layer"] = 7
    cfg["evolve"]["train"]["lr"] = 1.0
    assert profile_drift(cfg, "smoke") == ["evolve.train.lr", "model.n_layer"]
