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
