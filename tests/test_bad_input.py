"""Issue 18: every input error ends in at most three lines that name the file, line, key or
step and say what to do -- no traceback -- and leaves nothing half-written that looks complete.

Each test runs the real command line in-process (``connectome_lib.cli.main``) on tiny data
generated under ``tmp_path`` and checks the exit status, that the message names what is wrong
(file and line, dotted key, model folder, stage) and that it is short and has no traceback.
"""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli

from connectome_lib.layout import develop_dir
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM
from connectome_lib.paths import data_path
from connectome_lib.training import save_model

DOC = "the quick brown fox jumps over the lazy dog while seven old owls watch quietly. " * 12


def assert_short_error(err: str, code: int, expected_code: int, *needles: str) -> str:
    """The error is at most three ``connectome:`` lines (warnings aside), without a traceback,
    holding every needle, with the expected exit status; return its text."""
    assert code == expected_code, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("connectome") and "warning:" not in ln]
    assert 1 <= len(lines) <= 3, err
    text = "\n".join(lines)
    for needle in needles:
        assert str(needle) in text, (needle, text)
    return text


def corpus_with_bad_byte(path: Path, bad_line: int, n_lines: int = 300) -> Path:
    """A JSON-lines corpus (``.jsonl`` or ``.jsonl.xz``) whose line ``bad_line`` holds a byte
    that is not UTF-8 -- far enough into the file that a block decoder would misplace it."""
    lines = [json.dumps({"text": f"Book {i}. {DOC}"}).encode() for i in range(n_lines)]
    lines[bad_line - 1] = b'{"text": "caf\xff au lait"}'
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(lzma.compress(data) if path.suffix == ".xz" else data)
    return path


@pytest.fixture
def gpt2_vocab_model() -> ConnectomeGPTForCausalLM:
    """A tiny model with GPT-2's vocabulary (so evaluations with GPT-2's tokenizer reach their data)."""
    torch.manual_seed(0)
    return ConnectomeGPTForCausalLM(ConnectomeGPTConfig(vocab_size=50304, n_layer=1, n_head=2, n_embd=16,
                                                        block_size=32))


def data_dir_with(tmp_path: Path, relpath: str, content: bytes) -> Path:
    """A data directory holding GPT-2's tokenizer (linked) and one evaluation file."""
    data = tmp_path / "data"
    (data / relpath).parent.mkdir(parents=True)
    (data / relpath).write_bytes(content)
    (data / "tokenizer").mkdir()
    (data / "tokenizer" / "gpt2").symlink_to(data_path("tokenizer"))
    return data


# ------------------------------------------------------------------------------------------
# data files


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.xz"])
@pytest.mark.parametrize("tokenizer", ["bpe", "gpt2"])
def test_corpus_line_that_is_not_utf8_names_the_file_and_the_line(suffix, tokenizer, tmp_path, capsys):
    """Before: ``'utf-8' codec can't decode byte 0xff ...``, naming neither file nor line."""
    corpus = corpus_with_bad_byte(tmp_path / f"outer{suffix}", bad_line=200)
    sets = ["--set", f"data.outer={corpus}", "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    if tokenizer == "gpt2":  # tokenising the corpus, not training the BPE on it
        sets += ["--set", "data.tokenizer=null"]
    code, _, err = run_cli(["tokenize", "--profile", "smoke", "--splits", "outer", "--no-progress", *sets], capsys)
    assert_short_error(err, code, 1, f"{corpus}:200: not UTF-8 text (byte 0xff", "re-encode the file as UTF-8")
    assert not list((tmp_path / "cache").rglob("*.bin")) and not list((tmp_path / "cache").rglob("tokenizer.json"))


def test_eval_csv_with_a_malformed_row_names_the_file_and_the_line(tmp_path, gpt2_vocab_model, capsys):
    header = "item_id,sentence,lang_LH_netw\n"
    rows = "".join(f"B.{i},Sentence number {i} is here.,{i / 10}\n" for i in range(30))
    data = data_dir_with(tmp_path, "eval/tuckute2024/tuckute2024_lang_lh_train5.csv",
                         (header + rows + "B.99,one,too,many,fields\n").encode())
    model = tmp_path / "model"
    save_model(gpt2_vocab_model, model)
    code, _, err = run_cli(["evaluate", str(model), "--tasks", "tuckute2024", "--results", str(tmp_path / "r.csv"),
                            "--set", f"data_dir={data}", "--set", "progress=false"], capsys)
    csv = data / "eval/tuckute2024/tuckute2024_lang_lh_train5.csv"
    assert_short_error(err, code, 1, f"{csv}:32: malformed table row", "fix or remove that line")


def test_eval_record_without_a_field_names_the_file_and_the_line(tmp_path, gpt2_vocab_model, capsys):
    pair = {"sentence_good": "The cat sleeps.", "sentence_bad": "The cat sleep.", "UID": "agreement"}
    lines = [json.dumps(pair)] * 3 + [json.dumps({k: v for k, v in pair.items() if k != "UID"})]
    data = data_dir_with(tmp_path, "eval/blimp/blimp.jsonl.xz", lzma.compress(("\n".join(lines) + "\n").encode()))
    model = tmp_path / "model"
    save_model(gpt2_vocab_model, model)
    code, _, err = run_cli(["evaluate", str(model), "--tasks", "blimp", "--results", str(tmp_path / "r.csv"),
                            "--set", f"data_dir={data}", "--set", "progress=false"], capsys)
    assert_short_error(err, code, 1, f"{data / 'eval/blimp/blimp.jsonl.xz'}:4: the record has no field 'UID'")


# ------------------------------------------------------------------------------------------
# models, tokenizers and results files


def _saved(model, folder: Path) -> Path:
    save_model(model, folder)
    return folder


def test_model_and_tokenizer_of_other_vocabularies_name_both_and_the_folder(tmp_path, tiny_model, capsys):
    """Before: ``IndexError: index out of range in self``."""
    folder = _saved(tiny_model, tmp_path / "model")  # 97 tokens, evaluated with GPT-2's 50,257
    code, _, err = run_cli(["evaluate", str(folder), "--tasks", "blimp", "--results", str(tmp_path / "r.csv"),
                            "--set", "limit=2", "--set", "progress=false"], capsys)
    assert_short_error(err, code, 1, f"model folder {folder} has a vocabulary of 97 tokens",
                       f"the tokenizer {data_path('tokenizer')} has 50,257", "the tokenizer it was trained with")
    val = tmp_path / "val.npy"  # validation tokens of a larger vocabulary
    np.save(val, np.arange(300, dtype=np.uint16))
    code, _, err = run_cli(["evaluate", str(folder), "--tasks", "perplexity", "--val-tokens", str(val),
                            "--results", str(tmp_path / "r.csv"), "--set", "progress=false"], capsys)
    assert_short_error(err, code, 1, f"model folder {folder} has a vocabulary of 97 tokens",
                       "validation tokens hold id 299")
    assert not (tmp_path / "r.csv").exists()


def _other_format(kind: str, folder: Path, tiny_model) -> str:
    """Make ``folder`` a model in another format than ours; return a phrase its error holds."""
    save_model(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text())
    if kind == "custom_code":  # a model type transformers does not know (its own code, as the paper's)
        config.update(model_type="mygpt", architectures=["MyGPT"], auto_map={"AutoModelForCausalLM": "modeling.MyGPT"})
        (folder / "config.json").write_text(json.dumps(config))
        return "describes a model transformers does not know (model_type 'mygpt'"
    if kind == "encoder":
        (folder / "config.json").write_text(json.dumps({"model_type": "t5", "architectures": ["T5Model"]}))
        return "describes a model without a causal-LM head (model_type 't5'"
    if kind == "tensorflow":
        (folder / "model.safetensors").rename(folder / "tf_model.h5")
        return "not in a format transformers reads for PyTorch (tf_model.h5)"
    if kind == "other_weights":  # a known causal LM whose weights are another model's
        (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
                                                        "n_layer": 1, "n_embd": 16, "n_head": 2, "vocab_size": 97}))
        return "its weights do not fit the architecture config.json describes"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["custom_code", "encoder", "tensorflow", "other_weights"])
def test_checkpoint_in_another_format_is_not_called_corrupt(kind, tmp_path, tiny_model, capsys):
    """Before: ``model folder ... is corrupt or incomplete (...); delete ... and run connectome develop``."""
    folder = develop_dir(tmp_path / "runs" / "tiny", "dense", 0) / "model"
    phrase = _other_format(kind, folder, tiny_model)
    val = tmp_path / "val.npy"
    np.save(val, np.arange(200, dtype=np.uint16) % 97)
    code, _, err = run_cli(["evaluate", str(folder), "--tasks", "perplexity", "--val-tokens", str(val),
                            "--results", str(tmp_path / "r.csv"), "--set", "progress=false"], capsys)
    text = assert_short_error(err, code, 1, f"model folder {folder}", phrase, "convert")
    assert "corrupt or incomplete" not in text and "delete" not in text
    assert folder.is_dir()


def _results_file(tmp_path: Path, tiny_model, capsys) -> tuple[list[str], Path]:
    """Evaluate a tiny model's validation loss into ``results.csv``; return the evaluate arguments."""
    folder = _saved(tiny_model, tmp_path / "model")
    val = tmp_path / "val.npy"
    np.save(val, np.arange(200, dtype=np.uint16) % 97)
    results = tmp_path / "results.csv"
    argv = ["evaluate", str(folder), "--tasks", "perplexity", "--val-tokens", str(val), "--results", str(results),
            "--set", "progress=false"]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    return argv, results


@pytest.mark.parametrize("damage, phrase", [
    (lambda row: row.replace(",-1,perplexity", ",,perplexity"), "iteration is empty, not a whole number"),
    (lambda row: row.replace(",-1,perplexity", ",x1,perplexity"), "iteration is 'x1', not a whole number"),
    (lambda row: row.rsplit(",", 2)[0] + ",abc," + row.rsplit(",", 1)[1], "value is 'abc', not a number"),
    (lambda row: row.replace("perplexity", ""), "no task"),
])
def test_damaged_results_row_names_the_file_and_the_line(damage, phrase, tmp_path, tiny_model, capsys):
    """Before: ``Cannot convert non-finite values (NA or inf) to integer``, naming neither."""
    argv, results = _results_file(tmp_path, tiny_model, capsys)
    lines = results.read_text().splitlines()
    lines[2] = damage(lines[2])
    results.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(argv, capsys)
    assert_short_error(err, code, 1, f"{results}:3: damaged results row ({phrase})", "delete that line")


def test_results_file_that_is_no_table_names_the_file_and_the_line(tmp_path, tiny_model, capsys):
    argv, results = _results_file(tmp_path, tiny_model, capsys)
    results.write_text(results.read_text() + "a,b,c,d,e,f,g,h,i,j,k,l\n")
    code, _, err = run_cli(argv, capsys)
    assert_short_error(err, code, 1, f"{results}:4: malformed table row")
    results.write_text("model,task\nm,perplexity\n")
    code, _, err = run_cli(argv, capsys)
    assert_short_error(err, code, 1, f"{results}:1: the header has no column 'init'")


@pytest.mark.parametrize("kind", ["no_such_folder", "folder_without_tokenizer"])
def test_tokenizer_that_is_no_tokenizer_names_the_key(kind, tmp_path, capsys):
    """Before: a hub error about repo ids, or (an empty folder) every text tokenised to nothing."""
    source = tmp_path / "nowhere" / "tok" if kind == "no_such_folder" else tmp_path
    code, _, err = run_cli(["tokenize", "--profile", "smoke", "--splits", "val", "--no-progress", "--set",
                            f"data.tokenizer={source}", "--set", f"data.cache_dir={tmp_path / 'cache'}"], capsys)
    assert_short_error(err, code, 1, f"data.tokenizer '{source}'")
    assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------------------------------
# configuration values


@pytest.mark.parametrize("override, key", [
    ("develop.inits=[]", "develop.inits"), ("develop.seeds=[]", "develop.seeds"),
    ("develop.dense_seeds=[]", "develop.dense_seeds"), ("evolve.seeds=[]", "evolve.seeds"),
    ("ablations.seeds=[]", "ablations.seeds"), ("evals.tasks=[]", "evals: tasks"),
    ("evals.language_units_fractions=[]", "evals: language_units_fractions"),
    ("ablations.variants=[]", "ablations.variants"),
])
def test_empty_list_is_an_error_naming_the_key(override, key, tmp_path, capsys):
    """Before (develop.inits=[]): exit 0, nothing trained."""
    code, out, err = run_cli(["develop", "--profile", "smoke", "--no-progress", "--set", override,
                              "--runs-dir", str(tmp_path / "runs")], capsys)
    assert_short_error(err, code, 2, "configuration error", key)
    assert not (tmp_path / "runs").exists()


def test_empty_runs_dir_is_an_error_naming_the_key(tmp_path, capsys):
    """Before: ``TypeError: expected str, bytes or os.PathLike object, not NoneType``."""
    code, _, err = run_cli(["show", "--profile", "smoke", "--set", "runs_dir="], capsys)
    assert_short_error(err, code, 2, "configuration error", "runs_dir")


@pytest.mark.parametrize("override, key", [
    ("evolve.prune_include=(attn", "evolve.prune_include"), ("evolve.prune_exclude='[wte'", "evolve.prune_exclude"),
])
def test_invalid_regular_expression_names_the_key(override, key, tmp_path, capsys):
    """Before: accepted, then a bare ``re`` message when the first generation was pruned."""
    code, _, err = run_cli(["evolve", "--profile", "smoke", "--no-progress", "--set", override,
                            "--runs-dir", str(tmp_path / "runs")], capsys)
    assert_short_error(err, code, 2, f"{key}:", "is not a valid regular expression")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("override, key, what", [
    ("evolve.generations=three", "evolve.generations", "expected an integer"),
    ("develop.train.lr=fast", "develop.train.lr", "expected a number"),
    ("evolve.train.iters=-4", "evolve.train.iters", "must be >= 1"),
    ("model.n_layer=1.5", "model.n_layer", "expected an integer"),
])
def test_non_numeric_or_negative_value_names_the_key(override, key, what, capsys):
    code, _, err = run_cli(["evolve", "--profile", "smoke", "--no-progress", "--set", override], capsys)
    assert_short_error(err, code, 2, key, what)


def test_profile_yaml_error_names_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "mine.yaml"
    bad.write_text("extends: smoke\ndevelop:\n  seeds: [0, 1\n  train: {iters: 4}\n")
    code, _, err = run_cli(["develop", "--profile", str(bad), "--no-progress"], capsys)
    assert_short_error(err, code, 2, str(bad), "YAML syntax error", "line 4")


# ------------------------------------------------------------------------------------------
# a failed pipeline stage


def _failing_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell('profile = "smoke"\noverrides = {}', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('print("set up")'),
                nbformat.v4.new_code_cell('raise ValueError("data/corpus.jsonl:3: bad record; fix it")')]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def test_failed_stage_names_the_stage_and_its_partial_notebook_and_the_old_page_is_not_current(
        tmp_path, monkeypatch, capsys):
    """Before: ``a stage notebook failed in cell [3]: ...``, and the earlier page stayed as if current."""
    from connectome_lib import pipeline
    from connectome_lib.config import load_profile

    root, out = tmp_path / "project", tmp_path / "stages"
    src = root / "notebooks" / "01_data.ipynb"
    _failing_notebook(src)
    monkeypatch.setattr(pipeline, "project_root", lambda: root)
    monkeypatch.setenv("CONNECTOME_RUNS_DIR", str(tmp_path / "runs"))
    page = out / "01_data.ipynb"  # the page of an earlier, successful run with these very settings
    out.mkdir()
    page.write_text(json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {
        "papermill": {"parameters": {"profile": "smoke", "overrides": {}}},
        "connectome": {"stage_fingerprint": pipeline.stage_fingerprint(load_profile("smoke"), src)}}}))
    stage = pipeline.stage_by_key("data")
    assert pipeline.stage_is_current(stage, "smoke", {}, page, src)[0]

    code, _, err = run_cli(["pipeline", "--profile", "smoke", "--stages", "data", "--out-dir", str(out), "--force"],
                           capsys)
    failed = out / "01_data.failed.ipynb"
    assert_short_error(err, code, 1, "stage data (01_data.ipynb) failed", "raised ValueError: data/corpus.jsonl:3",
                       f"its partial output is {failed}", f"earlier page {page} is marked out of date",
                       "connectome pipeline --stages data")
    assert failed.is_file() and not list(out.glob("*.running.ipynb"))
    current, why = pipeline.stage_is_current(stage, "smoke", {}, page, src)
    assert not current and "failed" in why
    cells = json.loads(page.read_text())["cells"]
    assert "Out of date" in "".join(cells[0]["source"])


def test_failed_export_leaves_no_folder_that_passes_for_complete(tmp_path, monkeypatch):
    from connectome_lib import export, layout

    out = tmp_path / "results"
    out.mkdir()
    (out / "provenance.json").write_text("{}")  # an earlier export
    written = []

    def full_disk(df, path, **kw):
        if written:
            raise OSError(28, "No space left on device", str(path))
        written.append(path)

    monkeypatch.setattr(layout, "write_csv_atomic", full_disk)
    tables = {"units.csv": None, "summary.csv": None}
    with pytest.raises(OSError, match="No space left"):
        export._write_results(out, tables, {"profile": "x"})
    with pytest.raises(FileNotFoundError, match="no exported results"):
        export.load_results(out)


@pytest.mark.parametrize("task, relpath", [("hellaswag", "eval/hellaswag/hellaswag_val.jsonl"),
                                           ("blimp", "eval/blimp/blimp.jsonl.xz")])
def test_eval_file_without_records_names_the_file(task, relpath, tmp_path, gpt2_vocab_model, capsys):
    content = lzma.compress(b"\n\n") if relpath.endswith(".xz") else b"\n\n"
    data = data_dir_with(tmp_path, relpath, content)
    model = _saved(gpt2_vocab_model, tmp_path / "model")
    code, _, err = run_cli(["evaluate", str(model), "--tasks", task, "--results", str(tmp_path / "r.csv"),
                            "--set", f"data_dir={data}", "--set", "progress=false"], capsys)
    assert_short_error(err, code, 1, f"{data / relpath} holds no records", "replace it with a complete copy")
    assert not (tmp_path / "r.csv").exists()
