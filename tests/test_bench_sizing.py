"""bench/bench_sizing.py: the summary of a learning curve and the designs' profile overrides."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from connectome_lib.config import load_profile

_PATH = Path(__file__).resolve().parents[1] / "bench" / "bench_sizing.py"
_spec = importlib.util.spec_from_file_location("bench_sizing", _PATH)
bench_sizing = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_sizing)


def _curve(losses, per_point=100):
    return pd.DataFrame({"tokens": [i * per_point for i in range(len(losses))], "val_loss": losses})


def test_summary_of_a_curve_that_overfits():
    s = bench_sizing.summarise_curve(_curve([7.0, 6.0, 5.0, 5.2, 5.5]), inner_tokens=100)
    assert s == {"passes": 4.0, "final_val_loss": 5.5, "best_val_loss": 5.0, "best_pass": 2.0}


def test_summary_of_a_curve_still_falling_ignores_the_untrained_point():
    s = bench_sizing.summarise_curve(_curve([1.0, 6.0, 5.0, 4.0], per_point=50), inner_tokens=100)
    assert s["best_pass"] == s["passes"] == 1.5  # the point at 0 tokens (loss 1.0) is not a pass
    assert s["best_val_loss"] == s["final_val_loss"] == 4.0


def test_summary_skips_points_without_a_validation_loss_and_takes_the_first_minimum():
    c = _curve([7.0, 5.0, float("nan"), 5.0])
    s = bench_sizing.summarise_curve(c, inner_tokens=100)
    assert s["best_pass"] == 1.0 and s["passes"] == 3.0


def test_summary_needs_a_point_after_training_started():
    with pytest.raises(ValueError):
        bench_sizing.summarise_curve(_curve([7.0]), inner_tokens=100)


def test_every_design_is_a_valid_cpu_profile_and_the_first_is_the_profiles_model():
    models = [load_profile("cpu", overrides=bench_sizing.design_overrides(d)).model for d in bench_sizing.DESIGNS]
    assert models[0] == load_profile("cpu").model
    assert len({(m.n_layer, m.n_embd, m.vocab_size) for m in models}) == len(models)
