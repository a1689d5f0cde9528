"""The command line: help texts, profile display, errors."""

import pytest

from connectome_lib.cli import build_parser, main


@pytest.mark.parametrize("command", ["profiles", "show", "tokenize", "evolve", "develop"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and len(out) > 200 or command == "profiles"


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("evolve", "develop", "tokenize", "show", "profiles"):
        assert cmd in out


def test_show_applies_overrides(capsys):
    assert main(["show", "--profile", "smoke", "--set", "evolve.generations=4"]) == 0
    assert "generations: 4" in capsys.readouterr().out


def test_misspelt_override_is_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["show", "--profile", "smoke", "--set", "evolve.generatons=4"])
    assert e.value.code == 2
    assert "did you mean 'generations'" in capsys.readouterr().err


def test_develop_without_connectome_explains(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["develop", "--profile", "smoke", "--runs-dir", str(tmp_path), "--init", "connectome", "--seed", "0",
              "--no-progress", "--set", f"data.cache_dir={tmp_path / 'cache'}"])
    assert e.value.code == 1
    assert "run the outer loop first" in capsys.readouterr().err


def test_evaluate_with_profile_needs_a_run(tmp_path, capsys):
    import argparse

    from connectome_lib.evals.cli import build_config, configure_parser

    p = argparse.ArgumentParser()
    configure_parser(p)
    args = p.parse_args(["--profile", "smoke", "--set", "limit=3"])
    from connectome_lib.config import load_profile

    cfg = build_config(args, load_profile("smoke"))
    assert cfg.limit == 3 and cfg.brain_limit == load_profile("smoke").evals.brain_limit
    with pytest.raises(SystemExit):
        main(["evaluate", "--profile", "smoke", "--set", "progress=false", "--results", str(tmp_path / "r.csv"),
              "--run", str(tmp_path / "no-run")])


# ------------------------------------------------------------------------------------------
# one folder resolution for the command line and the notebooks


def _tiny_sets(folder) -> list[str]:
    """A tiny smoke run (1 generation of 4 iterations) on small generated corpora, no folders."""
    import json
    import lzma

    words = "the quick brown fox jumps over a lazy dog while seven old owls watch quietly".split()
    sets = []
    for k, split in enumerate(("outer", "inner", "val")):
        texts = [" ".join(words[(i * 7 + j * (k + 3)) % len(words)] for j in range(120)) for i in range(30)]
        path = folder / f"{split}.jsonl.xz"
        path.write_bytes(lzma.compress("".join(json.dumps({"text": t}) + "\n" for t in texts).encode()))
        sets.append(f"data.{split}={path}")
    return sets + [
        "data.bpe_vocab_size=300", "data.bpe_train_chars=20000", "model.vocab_size=300",
        "model.n_layer=1", "model.n_embd=16", "model.block_size=16",
        "evolve.generations=1", "evolve.train.iters=4", "evolve.train.warmup_iters=1", "evolve.train.decay_iters=2",
        "evolve.train.val_every=2", "evolve.train.save_state_every=2", "evolve.train.batch_size=2",
        "evolve.train.val_batches=1", "evolve.train.log_every=2",
    ]


def test_evolve_trains_into_the_folder_the_notebooks_resolve(tmp_path, monkeypatch, capsys):
    from connectome_lib.cli_support import resolved_profile
    from connectome_lib.config import parse_override
    from connectome_lib.layout import final_connectome_path
    from connectome_lib.notebook import setup

    corpora = tmp_path / "corpora"
    corpora.mkdir()
    sets = _tiny_sets(corpora)
    for var, sub in (("CONNECTOME_RUNS_DIR", "runs"), ("CONNECTOME_CACHE_DIR", "cache"),
                     ("CONNECTOME_RESULTS_DIR", "results")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.chdir(tmp_path)  # neither may depend on the working directory
    ctx = setup("smoke", dict(parse_override(s) for s in sets), stage="evolution", quiet=True)
    assert ctx.run_root == tmp_path / "runs" / "smoke" and ctx.results_dir == tmp_path / "results" / "smoke"

    argv = ["evolve", "--profile", "smoke", "--no-progress", *[a for s in sets for a in ("--set", s)]]
    resolved = resolved_profile(build_parser().parse_args(argv))
    assert resolved.run_root == ctx.run_root and resolved.results_dir == ctx.results_dir
    assert resolved.profile.data.cache_dir == ctx.profile.data.cache_dir == str(tmp_path / "cache")
    assert resolved.profile == ctx.profile

    assert main(argv) == 0, capsys.readouterr().err
    assert final_connectome_path(ctx.run_root).is_file()
    assert str(final_connectome_path(ctx.run_root)) in capsys.readouterr().out


def test_folder_flags_beat_the_environment(tmp_path, monkeypatch):
    from connectome_lib.cli_support import resolved_profile

    monkeypatch.setenv("CONNECTOME_RUNS_DIR", str(tmp_path / "env-runs"))
    monkeypatch.setenv("CONNECTOME_CACHE_DIR", str(tmp_path / "env-cache"))
    args = build_parser().parse_args(["show", "--profile", "smoke"])
    r = resolved_profile(args)
    assert r.run_root == tmp_path / "env-runs" / "smoke" and r.profile.data.cache_dir == str(tmp_path / "env-cache")
    args = build_parser().parse_args(["show", "--profile", "smoke", "--runs-dir", str(tmp_path / "flag"),
                                      "--cache-dir", str(tmp_path / "flag-cache")])
    r = resolved_profile(args)
    assert r.run_root == tmp_path / "flag" / "smoke" and r.profile.data.cache_dir == str(tmp_path / "flag-cache")
    args = build_parser().parse_args(["show", "--profile", "smoke", "--set", f"runs_dir={tmp_path / 'set'}"])
    assert resolved_profile(args).run_root == tmp_path / "set" / "smoke"  # an explicit override, too


def test_pipeline_hands_its_folder_flags_to_the_notebooks(tmp_path, monkeypatch, capsys):
    import os

    import connectome_lib.pipeline as pipeline

    seen = {}

    def fake_run_pipeline(profile, overrides, stages, out_dir, force=False, log_output=False):
        seen.update({k: os.environ.get(k) for k in ("CONNECTOME_RUNS_DIR", "CONNECTOME_RESULTS_DIR")})
        return []

    monkeypatch.setattr(pipeline, "run_pipeline", fake_run_pipeline)
    monkeypatch.delenv("CONNECTOME_RUNS_DIR", raising=False)
    assert main(["pipeline", "--profile", "smoke", "--runs-dir", str(tmp_path / "r"),
                 "--results-dir", str(tmp_path / "res")]) == 0
    assert seen == {"CONNECTOME_RUNS_DIR": str(tmp_path / "r"), "CONNECTOME_RESULTS_DIR": str(tmp_path / "res")}
    assert "CONNECTOME_RUNS_DIR" not in os.environ  # restored afterwards
    assert str(tmp_path / "r" / "smoke") in capsys.readouterr().out


def test_evaluate_help_lists_the_registry_tasks_and_measures(capsys):
    from connectome_lib import registry

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    for t in registry.TASKS:
        assert t.name in out
        for m in t.measures:
            assert m.metric in out
