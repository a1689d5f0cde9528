"""Where the data live, and where each data set comes from.

The project never ships data. It reads local copies from a *data directory* that is resolved,
in order, from

1. an explicit argument (``data_dir=...`` in a profile or on the command line),
2. the environment variable ``CONNECTOME_DATA_DIR``,
3. ``../shared/data`` next to the project checkout (the layout of the development machines),
4. ``./data`` under the current working directory.

Every data set the project uses is listed once in :data:`DATASETS` with its path relative to the
data directory and its public source, so that a missing file produces an error that names the
file *and* tells the user how to obtain it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "CONNECTOME_DATA_DIR"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DatasetInfo:
    """A data set: its path under the data directory, and where the public original lives."""

    key: str
    relpath: str
    description: str
    source: str
    hub_id: str | None = None


DATASETS: dict[str, DatasetInfo] = {
    d.key: d
    for d in [
        DatasetInfo(
            "tokenizer",
            "tokenizer/gpt2",
            "GPT-2 byte-level BPE tokenizer (vocab.json, merges.txt)",
            "OpenAI GPT-2; identical to the files of the Hugging Face hub model 'gpt2'",
            hub_id="gpt2",
        ),
        DatasetInfo(
            "corpus_outer",
            "corpus/gutenberg-outer.jsonl.xz",
            "outer-loop (evolution) corpus, 402 Project Gutenberg books",
            "Project Gutenberg texts, GitHub rcdm-uga/Gutenberg_Text (one book per JSON line)",
        ),
        DatasetInfo(
            "corpus_inner",
            "corpus/gutenberg-inner.jsonl.xz",
            "inner-loop (developmental) corpus, 77 Project Gutenberg books",
            "Project Gutenberg texts, GitHub rcdm-uga/Gutenberg_Text (one book per JSON line)",
        ),
        DatasetInfo(
            "corpus_val",
            "corpus/gutenberg-val.jsonl.xz",
            "validation corpus, 17 Project Gutenberg books",
            "Project Gutenberg texts, GitHub rcdm-uga/Gutenberg_Text (one book per JSON line)",
        ),
        DatasetInfo(
            "hellaswag",
            "eval/hellaswag/hellaswag_val.jsonl",
            "HellaSwag validation split, lm-evaluation-harness preprocessing",
            "Zellers et al. 2019, GitHub rowanz/hellaswag",
            hub_id="Rowan/hellaswag",
        ),
        DatasetInfo(
            "mmlu_test",
            "eval/mmlu/test.jsonl",
            "MMLU test split (57 subjects)",
            "Hendrycks et al. 2021",
            hub_id="cais/mmlu",
        ),
        DatasetInfo(
            "mmlu_dev",
            "eval/mmlu/dev.jsonl",
            "MMLU dev split (5 examples per subject)",
            "Hendrycks et al. 2021",
            hub_id="cais/mmlu",
        ),
        DatasetInfo(
            "blimp",
            "eval/blimp/blimp.jsonl.xz",
            "BLiMP minimal pairs, 67 paradigms",
            "Warstadt et al. 2020, GitHub alexwarstadt/blimp",
            hub_id="nyu-mll/blimp",
        ),
        DatasetInfo(
            "naturalstories_rt",
            "eval/naturalstories/processed_wordinfo.tsv",
            "Natural Stories per-word mean self-paced reading times",
            "Futrell et al. 2018/2021, GitHub languageMIT/naturalstories (naturalstories_RTS/processed_wordinfo.tsv)",
        ),
        DatasetInfo(
            "naturalstories_words",
            "eval/naturalstories/all_stories.tok",
            "Natural Stories words in reading order",
            "Futrell et al. 2018/2021, GitHub languageMIT/naturalstories (words/all_stories.tok)",
        ),
        DatasetInfo(
            "tuckute2024",
            "eval/tuckute2024/tuckute2024_lang_lh_train5.csv",
            "fMRI responses of the left-hemisphere language network to 1,000 sentences",
            "Tuckute et al. 2024, Nature Human Behaviour; GitHub gretatuckute/drive_suppress_brains",
        ),
    ]
}


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The folder holding ``pyproject.toml`` and ``connectome_lib/``, searched upwards from
    ``start`` (default: the working directory); else the folder this package is installed in.
    Relative paths of a profile (runs, caches, results) are relative to it."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").exists() and (d / "connectome_lib").is_dir():
            return d
    return _PROJECT_ROOT


class DataMissingError(FileNotFoundError):
    """A data file the project needs is not in the data directory."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the data directory (see the module docstring for the search order).

    The returned path need not exist; :func:`data_path` raises a helpful error when a file
    inside it is missing.
    """
    if data_dir not in (None, ""):
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    shared = _PROJECT_ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return shared.resolve()
    return (Path.cwd() / "data").resolve()


def data_path(key: str, data_dir: str | os.PathLike | None = None, must_exist: bool = True) -> Path:
    """Path of the data set ``key`` (a key of :data:`DATASETS`) inside the data directory.

    Raises :class:`DataMissingError` naming the file and its public source when it is missing.
    """
    if key not in DATASETS:
        raise KeyError(f"unknown data set {key!r}; known: {', '.join(sorted(DATASETS))}")
    info = DATASETS[key]
    root = resolve_data_dir(data_dir)
    path = root / info.relpath
    if must_exist and not path.exists():
        hub = f" (Hugging Face hub: {info.hub_id})" if info.hub_id else ""
        raise DataMissingError(
            f"missing data file {path}\n"
            f"  what: {info.description}\n"
            f"  obtain it from: {info.source}{hub}\n"
            f"  and place it at <data_dir>/{info.relpath}; the data directory is set by the "
            f"'data_dir' option or the {ENV_VAR} environment variable (now: {root})"
        )
    return path


def dataset_table(data_dir: str | os.PathLike | None = None):
    """Every data set: its file under the data directory, whether it is there, size and source."""
    import pandas as pd

    root = resolve_data_dir(data_dir)
    rows = []
    for d in DATASETS.values():
        p = root / d.relpath
        size = (sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir()
                else (p.stat().st_size if p.exists() else 0))
        rows.append({"data set": d.key, "file": d.relpath, "present": p.exists(), "MB": round(size / 1e6, 1),
                     "source": d.source + (f" (hub: {d.hub_id})" if d.hub_id else "")})
    return pd.DataFrame(rows)
