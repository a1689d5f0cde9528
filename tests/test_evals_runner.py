"""Runner and CLI: run layout, tidy rows, resuming, configuration, bad inputs."""

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from evals_helpers import tiny_connectome_gpt, tokenizer

from connectome_lib.evals import runner
from connectome_lib.evals.cli import add_parser, main
from connectome_lib.evals.config import EvalConfig, apply_overrides
from connectome_lib.evals.runner import COLUMNS, evaluate_model, evaluate_run, find_targets

CFG = EvalConfig(tasks=["perplexity", "hellaswag"], limit=3, progress=False)
VAL = np.random.default_rng(0).integers(0, 50257, 2000).astype(np.uint16)


@pytest.fixture
def run_root(tmp_path):
    train = tmp_path / "develop" / "connectome_s1"
    for it in (0, 100):
        tiny_connectome_gpt(it).save_pretrained(train / "checkpoints" / f"iter_{it:06d}")
    tiny_connectome_gpt(200).save_pretrained(train / "model")
    (train / "run.json").write_text(json.dumps({"init": "connectome", "seed": 1, "iterations": 200}))
    (train / "done.json").write_text(json.dumps({"init": "connectome", "seed": 1}))  # training finished
    return tmp_path


def test_targets_of_a_training_folder(run_root):
    train = run_root / "develop" / "connectome_s1"
    assert [t.iteration for t in find_targets(train)] == [0, 100, 200]
    assert [t.iteration for t in find_targets(train, "final")] == [200]
    (t,) = find_targets(train / "checkpoints" / "iter_000100")
    assert (t.model, t.init, t.seed, t.iteration) == ("connectome_s1", "connectome", 1, 100)
    with pytest.raises(FileNotFoundError, match="neither a model folder"):
        find_targets(run_root)


def test_evaluate_writes_tidy_rows_and_resumes(run_root, monkeypatch):
    df = evaluate_run(run_root, CFG, val_tokens=lambda: VAL)
    path = run_root / "evals" / "results.csv"
    assert list(df.columns) == COLUMNS and path.exists() and path.with_suffix(".json").exists()
    assert sorted(df["iteration"].unique()) == [0, 100, 200]
    assert set(df["label"]) == {"Connectome"} and set(df["seed"]) == {1}
    loss = df[(df.task == "perplexity") & (df.metric == "loss")]
    assert len(loss) == 3 and loss["value"].between(5, 15).all()
    calls = []
    monkeypatch.setattr(runner, "run_task", lambda *a, **k: calls.append(a) or pytest.fail("recomputed"))
    again = evaluate_run(run_root, CFG, val_tokens=VAL)
    assert calls == [] and len(again) == len(df)
    stored = pd.read_csv(path)
    assert len(stored) == len(df)


def test_a_row_whose_item_table_is_missing_is_computed_again(run_root, monkeypatch):
    """HellaSwag writes a per-item table: a row without it (deleted, or from a version that kept
    none) is incomplete, so exactly that row is computed again and the table comes back."""
    cfg = EvalConfig(tasks=["hellaswag"], limit=3, progress=False, checkpoints="final")
    df = evaluate_run(run_root, cfg, val_tokens=VAL)
    table = run_root / "evals" / "tables" / "connectome_s1_iter000200_hellaswag.csv"
    assert table.exists()
    before = df.sort_values("metric")["value"].to_numpy()
    table.unlink()
    calls = []
    real = runner.run_task
    monkeypatch.setattr(runner, "run_task", lambda task, *a: calls.append(task) or real(task, *a))
    again = evaluate_run(run_root, cfg, val_tokens=VAL)
    assert calls == ["hellaswag"] and table.exists()
    assert len(again) == len(df)
    np.testing.assert_array_equal(again.sort_values("metric")["value"].to_numpy(), before)
    calls.clear()
    evaluate_run(run_root, cfg, val_tokens=VAL)
    assert calls == []


def test_evaluate_model_in_memory_and_unknown_task():
    (res,) = evaluate_model(tiny_connectome_gpt(0), tokenizer(), CFG, val_tokens=VAL, tasks=["perplexity"])
    assert res.metadata["val_tokens"] == "supplied by the caller"
    with pytest.raises(ValueError, match="unknown task"):
        evaluate_model(tiny_connectome_gpt(0), tokenizer(), CFG, tasks=["squad"])
    with pytest.raises(ValueError, match="unknown task"):
        EvalConfig(tasks=["squad"])


def test_config_overrides():
    cfg = apply_overrides(EvalConfig(), ["evals.limit=20", "tasks=hellaswag,blimp", "mmlu_prompt=paper",
                                         "language_units_fractions=[0.05]"], prefix="evals.")
    assert cfg.limit == 20 and cfg.tasks == ["hellaswag", "blimp"] and cfg.mmlu_prompt == "paper"
    assert cfg.language_units_fractions == [0.05]
    with pytest.raises(ValueError, match="unknown EvalConfig field"):
        apply_overrides(cfg, ["nope=1"])
    with pytest.raises(ValueError, match="mmlu_prompt"):
        apply_overrides(cfg, ["mmlu_prompt=fewshot"])
    assert EvalConfig.from_dict(cfg.to_dict()) == cfg


def test_cli_standalone_and_as_subcommand(run_root, capsys):
    model_dir = run_root / "develop" / "connectome_s1" / "model"
    out = run_root / "cli" / "results.csv"
    assert main([str(model_dir), "--tasks", "hellaswag", "--limit", "2", "--results", str(out),
                 "--set", "progress=false"]) == 0
    assert pd.read_csv(out)["iteration"].unique().tolist() == [200]
    parser = argparse.ArgumentParser(prog="connectome")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["evaluate", str(model_dir), "--limit", "2"])
    assert args.func is not None and args.limit == 2
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "language_units" in capsys.readouterr().out
