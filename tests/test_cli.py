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
    from connectome_lib.evals.cli import build_config, configure_parser
    import argparse

    p = argparse.ArgumentParser()
    configure_parser(p)
    args = p.parse_args(["--profile", "smoke", "--set", "limit=3"])
    from connectome_lib.config import load_profile

    cfg = build_config(args, load_profile("smoke"))
    assert cfg.limit == 3 and cfg.brain_limit == load_profile("smoke").evals.brain_limit
    with pytest.raises(SystemExit):
        main(["evaluate", "--profile", "smoke", "--set", "progress=false", "--results", str(tmp_path / "r.csv"),
              "--run", str(tmp_path / "no-run")])
