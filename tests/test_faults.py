"""Bad input and faults reach the user as ONE line that names the file, never a traceback.

Every test runs the real command line (``connectome_lib.cli.main``, or ``python -m
connectome_lib.cli`` in a subprocess) on tiny data generated under ``tmp_path`` and checks the
exit status (configuration errors 2, data and file errors 1, an interrupt 130), that the message
names the offending file (and line, or the dotted key), and that no traceback is printed --
except with ``--debug``, which must show it.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli

from connectome_lib.cli import main
from connectome_lib.config import load_profile
from connectome_lib.connectome import Connectome
from connectome_lib.evals.config import EvalConfigError
from connectome_lib.layout import checkpoint_dir, develop_dir, final_connectome_path, generation_dir
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM
from connectome_lib.paths import data_path
from connectome_lib.training import save_model

ROOT = Path(__file__).resolve().parents[1]


def tiny_overrides(runs: Path, cache: Path) -> list[str]:
    """The tests' tiny smoke profile (as ``tiny_profile`` in conftest.py), as ``--set`` strings."""
    return [
        f"runs_dir={runs}", f"data.cache_dir={cache}",
        "data.outer_max_tokens=40000", "data.inner_max_tokens=20000", "data.val_max_tokens=5000",
        "model.n_layer=1", "model.n_embd=16", "model.block_size=16",
        "evolve.generations=1", "evolve.train.iters=6", "evolve.train.warmup_iters=1",
        "evolve.train.decay_iters=2", "evolve.train.val_every=3", "evolve.train.save_state_every=3",
        "develop.seeds=[0]", "develop.train.iters=6", "develop.train.warmup_iters=1",
        "develop.train.decay_iters=2", "develop.train.val_every=3", "develop.train.checkpoint_every=3",
        "develop.train.save_state_every=3",
        # smaller batches than tiny_profile: a 50k-token vocabulary head dominates the time
        "evolve.train.batch_size=2", "evolve.train.val_batches=1",
        "develop.train.batch_size=2", "develop.train.val_batches=1",
    ]


def with_sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


@pytest.fixture(scope="module")
def token_cache(tmp_path_factory) -> Path:
    """One token cache for the module, so each corpus split is tokenised once."""
    return tmp_path_factory.mktemp("token-cache")


@pytest.fixture(scope="module")
def tiny_corpora(tmp_path_factory) -> list[str]:
    """``--set`` strings pointing the three corpora at small generated files (fast to tokenise)."""
    folder = tmp_path_factory.mktemp("corpora")
    words = "the quick brown fox jumps over a lazy dog while seven old owls watch quietly".split()
    sets = []
    for k, split in enumerate(("outer", "inner", "val")):
        texts = [" ".join(words[(i * 7 + j * (k + 3)) % len(words)] for j in range(120)) for i in range(40)]
        sets.append(f"data.{split}={write_jsonl_xz(folder / f'{split}.jsonl.xz', texts)}")
    return sets


def assert_one_line_error(err: str, code: int, expected_code: int, *needles: str) -> str:
    """The error is one ``connectome:`` line holding every needle, with the expected status."""
    assert code == expected_code, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("connectome: ") and "warning:" not in ln]
    assert len(lines) == 1, err
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]


def write_jsonl_xz(path: Path, texts: list[str]) -> Path:
    path.write_bytes(lzma.compress("".join(json.dumps({"text": t}) + "\n" for t in texts).encode()))
    return path


DOCS = [f"Document {i}: the quick brown fox jumps over the lazy dog. " * 20 for i in range(50)]


# ------------------------------------------------------------------------------------------
# corrupt saved state and model folders


def test_corrupt_training_state_is_discarded_and_the_run_still_ends_as_an_uninterrupted_one(
        tmp_path, token_cache, tiny_corpora, capsys):
    from connectome_lib.stages import evolve

    class Killed(Exception):
        pass

    def kill_at_4(iteration, model):
        if iteration == 4:
            raise Killed

    sets = tiny_overrides(tmp_path / "runs", token_cache) + tiny_corpora
    profile = load_profile("smoke", sets)
    with pytest.raises(Killed):  # state/ saved at iteration 3, then the run dies
        evolve(profile, progress=False, on_iteration=[kill_at_4])
    state = generation_dir(profile.run_root, 0) / "state"
    optimizer_file = next(p for p in state.iterdir() if p.name.startswith("optimizer"))
    data = optimizer_file.read_bytes()
    optimizer_file.write_bytes(data[: len(data) // 3])  # cut off, as by a full disk

    code, out, err = run_cli(["evolve", "--profile", "smoke", "--no-progress", *with_sets(sets)], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    warning = [ln for ln in err.splitlines() if "discarding the unreadable training state" in ln]
    assert len(warning) == 1 and str(state) in warning[0], err
    assert not state.exists()

    reference = tmp_path / "reference"  # the same run, never interrupted
    code, _, err = run_cli(["evolve", "--profile", "smoke", "--no-progress",
                            *with_sets(tiny_overrides(reference, token_cache) + tiny_corpora)], capsys)
    assert code == 0, err
    ref_root = reference / profile.name
    assert Connectome.load(final_connectome_path(profile.run_root)) == Connectome.load(final_connectome_path(ref_root))
    from safetensors.torch import load_file

    got = load_file(str(generation_dir(profile.run_root, 0) / "model" / "model.safetensors"))
    want = load_file(str(generation_dir(ref_root, 0) / "model" / "model.safetensors"))
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


@pytest.mark.parametrize("where", ["develop_final", "develop_checkpoint", "generation"])
def test_corrupt_model_folder_names_the_folder_to_delete(where, tmp_path, tiny_model, capsys):
    run = tmp_path / "runs" / "tiny"
    train_dir = develop_dir(run, "dense", 0)
    folder, step, stage = {
        "develop_final": (train_dir / "model", train_dir, "develop"),
        "develop_checkpoint": (checkpoint_dir(train_dir, 3), train_dir, "develop"),
        "generation": (generation_dir(run, 0) / "model", generation_dir(run, 0), "evolve"),
    }[where]
    save_model(tiny_model, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    val = tmp_path / "val.npy"  # a few validation tokens, so the validation corpus is not tokenised
    np.save(val, np.arange(200, dtype=np.uint16) % 97)
    code, _, err = run_cli(["evaluate", str(folder), "--tasks", "perplexity", "--results", str(tmp_path / "r.csv"),
                            "--val-tokens", str(val), "--set", "progress=false"], capsys)
    assert_one_line_error(err, code, 1, f"model folder {folder} is corrupt", f"delete {step}",
                          f"connectome {stage}")


def test_corrupt_connectome_reaching_the_cli(tmp_path, token_cache, tiny_corpora, capsys):
    """A ConnectomeError (the develop stage reads a damaged final connectome): one line, exit 1."""
    sets = tiny_overrides(tmp_path / "runs", token_cache) + tiny_corpora
    path = final_connectome_path(load_profile("smoke", sets).run_root)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00" * 64)
    code, _, err = run_cli(["develop", "--profile", "smoke", "--init", "connectome", "--seed", "0", "--no-progress",
                            *with_sets(sets)], capsys)
    assert_one_line_error(err, code, 1, str(path), "not a readable connectome", "connectome evolve")


# ------------------------------------------------------------------------------------------
# corpora


def _corpus(tmp: Path, kind: str) -> tuple[Path, str]:
    """A damaged corpus file of ``kind`` and a phrase its error must contain."""
    good = "".join(json.dumps({"text": t}) + "\n" for t in DOCS).encode()
    if kind == "empty_xz":
        p = tmp / "c.jsonl.xz"
        p.write_bytes(b"")
        return p, "is empty"
    if kind == "truncated_xz":
        p = tmp / "c.jsonl.xz"
        p.write_bytes(lzma.compress(good)[:200])
        return p, "truncated or corrupt"
    if kind == "corrupt_xz":
        p = tmp / "c.jsonl.xz"
        p.write_bytes(b"this is not an xz stream " * 20)
        return p, "truncated or corrupt"
    if kind == "truncated_gz":
        p = tmp / "c.jsonl.gz"
        p.write_bytes(gzip.compress(good)[:200])
        return p, "truncated or corrupt"
    if kind == "no_documents_xz":
        p = tmp / "c.jsonl.xz"
        p.write_bytes(lzma.compress(b""))
        return p, "holds no records"
    if kind == "malformed_line_xz":
        p = tmp / "c.jsonl.xz"
        lines = [json.dumps({"text": t}) for t in DOCS[:3]] + ['{"text": "unterminated'] + [json.dumps({"text": "x"})]
        p.write_bytes(lzma.compress(("\n".join(lines) + "\n").encode()))
        return p, f"{p}:4: malformed JSON"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["empty_xz", "truncated_xz", "corrupt_xz", "truncated_gz", "no_documents_xz",
                                  "malformed_line_xz"])
def test_bad_corpus_names_the_file(kind, tmp_path, capsys):
    corpus, phrase = _corpus(tmp_path, kind)
    code, _, err = run_cli(["tokenize", "--profile", "smoke", "--splits", "outer", "--no-progress",
                            "--set", f"data.outer={corpus}", "--set", f"data.cache_dir={tmp_path / 'cache'}"], capsys)
    assert_one_line_error(err, code, 1, str(corpus), phrase)
    assert not list((tmp_path / "cache").glob("*.bin")), "a bad corpus must leave no token cache behind"


def test_corpus_without_tokens_is_a_value_error_naming_it(tmp_path, capsys):
    """A ValueError that reaches the CLI (a corpus of empty documents): one line, exit 1."""
    corpus = write_jsonl_xz(tmp_path / "blank.jsonl.xz", ["", ""])
    code, _, err = run_cli(["tokenize", "--profile", "smoke", "--splits", "outer", "--no-progress",
                            "--set", f"data.outer={corpus}", "--set", f"data.cache_dir={tmp_path / 'cache'}"], capsys)
    assert_one_line_error(err, code, 1, str(corpus), "produced no tokens")


# ------------------------------------------------------------------------------------------
# evaluation data


def test_malformed_eval_jsonl_names_file_and_line(tmp_path, capsys):
    data = tmp_path / "data"
    hellaswag = data / "eval" / "hellaswag" / "hellaswag_val.jsonl"
    hellaswag.parent.mkdir(parents=True)
    item = {"query": "A man sits down. He", "choices": ["reads.", "flies.", "swims.", "sings."], "gold": 0, "ind": 0}
    hellaswag.write_text(json.dumps(item) + "\n\n" + json.dumps(item)[:-5] + "\n" + json.dumps(item) + "\n")
    (data / "tokenizer").mkdir()
    os.symlink(data_path("tokenizer"), data / "tokenizer" / "gpt2")
    model = tmp_path / "model"  # GPT-2's vocabulary: a model of another is refused before its data are read
    torch.manual_seed(0)
    save_model(ConnectomeGPTForCausalLM(ConnectomeGPTConfig(vocab_size=50304, n_layer=1, n_head=2, n_embd=16,
                                                            block_size=32)), model)
    code, _, err = run_cli(["evaluate", str(model), "--tasks", "hellaswag", "--results", str(tmp_path / "r.csv"),
                            "--set", f"data_dir={data}", "--set", "progress=false"], capsys)
    assert_one_line_error(err, code, 1, f"{hellaswag}:3: malformed JSON")


# ------------------------------------------------------------------------------------------
# configuration


def test_yaml_syntax_error_in_a_profile_names_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "broken.yaml"
    bad.write_text("extends: smoke\nevolve:\n  generations: [3\n  train: {iters: 4}\n")
    code, _, err = run_cli(["show", "--profile", str(bad)], capsys)
    assert_one_line_error(err, code, 2, str(bad), "YAML syntax error", "line ")


@pytest.mark.parametrize("command", [["show", "--profile", "smoke"], ["pipeline", "--profile", "smoke"]])
def test_override_that_is_not_yaml_is_a_configuration_error(command, capsys):
    code, _, err = run_cli([*command, "--set", "x=[1"], capsys)
    assert_one_line_error(err, code, 2, "override 'x=[1'", "not valid YAML")


@pytest.mark.parametrize(
    "override, key, shown",
    [
        ("evolve.train.lr=0", "evolve.train.lr", "0.0"), ("develop.train.lr=-0.001", "develop.train.lr", "-0.001"),
        ("evolve.train.muon_lr=0", "evolve.train.muon_lr", "0.0"),
        ("model.n_layer=0", "model.n_layer", "0"), ("model.n_head=0", "model.n_head", "0"),
        ("model.n_embd=0", "model.n_embd", "0"), ("model.block_size=1", "model.block_size", "1"),
        ("model.vocab_size=1", "model.vocab_size", "1"),
        ("develop.train.weight_decay=-0.1", "develop.train.weight_decay", "-0.1"),
        ("evolve.train.grad_clip=-1", "evolve.train.grad_clip", "-1.0"),
        ("develop.train.betas=[0.9,1.0]", "develop.train.betas[1]", "1.0"),
        ("evolve.train.betas=[-0.1,0.95]", "evolve.train.betas[0]", "-0.1"),
        ("evolve.reset_value=0", "evolve.reset_value", "0.0"),
        ("develop.init_value=-0.02", "develop.init_value", "-0.02"),
        ("develop.train.val_every=-1", "develop.train.val_every", "-1"),
        ("evolve.train.save_state_every=-1", "evolve.train.save_state_every", "-1"),
        ("develop.train.checkpoint_every=-5", "develop.train.checkpoint_every", "-5"),
        ("data.outer_max_tokens=0", "data.outer_max_tokens", "0"),
        ("data.inner_max_tokens=-10", "data.inner_max_tokens", "-10"),
        ("data.val_max_tokens=0", "data.val_max_tokens", "0"),
    ],
)
def test_values_that_would_fail_late_in_torch_are_refused_up_front(override, key, shown, capsys):
    code, _, err = run_cli(["evolve", "--profile", "smoke", "--no-progress", "--set", override], capsys)
    line = assert_one_line_error(err, code, 2, "configuration error", f"{key} must be")
    assert line.endswith(f"got {shown}"), line


def test_evaluate_unknown_task_suggests_the_closest(capsys):
    code, _, err = run_cli(["evaluate", "nowhere", "--tasks", "hellaswg"], capsys)
    assert_one_line_error(err, code, 2, "'hellaswg'", "did you mean 'hellaswag'")


def test_standalone_evaluate_cli_reports_the_same_way(capsys):
    from connectome_lib.evals.cli import main as evaluate_main

    with pytest.raises(SystemExit) as e:
        evaluate_main(["nowhere", "--tasks", "perplexity,blimpp"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert err.startswith("connectome-evaluate: configuration error:") and "did you mean 'blimp'" in err
    with pytest.raises(EvalConfigError):
        evaluate_main(["--debug", "nowhere", "--tasks", "blimpp"])


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_evaluate_limit_must_be_positive(limit, capsys):
    code, _, err = run_cli(["evaluate", "nowhere", "--tasks", "perplexity", "--limit", limit], capsys)
    assert_one_line_error(err, code, 2, "--limit must be a positive integer", f"got {limit}")
    code, _, err = run_cli(["evaluate", "nowhere", "--set", f"limit={limit}"], capsys)
    assert_one_line_error(err, code, 2, "limit must be a positive integer", f"got {limit}")


# ------------------------------------------------------------------------------------------
# errors of every kind that reach the command line


def test_os_error_reaching_the_cli_names_the_path(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(["tokenize", "--profile", "smoke", "--splits", "val", "--no-progress",
                            "--set", f"data.cache_dir={blocker / 'cache'}"], capsys)
    assert_one_line_error(err, code, 1, str(blocker))


def test_missing_data_reaching_the_cli_names_the_file(tmp_path, capsys):
    code, _, err = run_cli(["tokenize", "--profile", "smoke", "--splits", "val", "--no-progress",
                            "--data-dir", str(tmp_path / "empty-data")], capsys)
    assert_one_line_error(err, code, 1, str(tmp_path / "empty-data"))


def test_unexpected_error_is_one_line_with_a_debug_hint(monkeypatch, capsys):
    import connectome_lib.stages as stages

    def broken(*args, **kwargs):
        raise TypeError("an internal bug")

    monkeypatch.setattr(stages, "evolve", broken)
    code, _, err = run_cli(["evolve", "--profile", "smoke", "--no-progress"], capsys)
    assert_one_line_error(err, code, 1, "TypeError: an internal bug", "--debug")


def test_keyboard_interrupt_exits_130_and_says_how_to_resume(monkeypatch, capsys):
    import connectome_lib.stages as stages

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "evolve", interrupted)
    code, _, err = run_cli(["evolve", "--profile", "smoke", "--no-progress"], capsys)
    assert_one_line_error(err, code, 130, "interrupted", "running the same command again resumes")


def test_debug_flag_reraises_so_that_python_shows_the_traceback(tmp_path, capsys):
    from connectome_lib.config import ConfigError

    bad = tmp_path / "broken.yaml"
    bad.write_text("model: {n_layer: 2\n")
    code, _, err = run_cli(["show", "--profile", str(bad)], capsys)  # without --debug: one line
    assert_one_line_error(err, code, 2, str(bad))
    with pytest.raises(ConfigError, match="YAML syntax error"):
        main(["--debug", "show", "--profile", str(bad)])
    # the real entry point, in a fresh interpreter: Python prints the traceback
    debug = subprocess.run([sys.executable, "-m", "connectome_lib.cli", "--debug", "show", "--profile", str(bad)],
                           capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert debug.returncode == 1, debug.stderr
    assert "Traceback (most recent call last)" in debug.stderr and "ConfigError" in debug.stderr
