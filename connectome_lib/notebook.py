"""What every stage notebook does first: load the profile, resolve folders, print provenance.

Notebooks stay thin: a papermill ``parameters`` cell (``profile``, ``overrides``), then
``ctx = setup(profile, overrides, stage=...)``, then calls into the library. Paths in a profile
are relative to the project root (found from the working directory), so a notebook runs the
same under papermill, nbval and Jupyter. Three environment variables redirect outputs without
touching the profile — the test suite uses them to keep its runs apart from yours:
``CONNECTOME_RUNS_DIR`` (run folders), ``CONNECTOME_RESULTS_DIR`` (exported results) and
``CONNECTOME_CACHE_DIR`` (token files and trained tokenizers). The folders are resolved by
:func:`connectome_lib.config.resolve_folders`, as by every ``connectome`` command, so a notebook
and the command line with the same environment use the same folders.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import config
from .config import Profile, load_profile, resolve_folders
from .evals.config import EvalConfig
from .paths import project_root

__all__ = ["StageContext", "setup", "project_root", "cpu_name", "device_description", "key_numbers"]


def cpu_name() -> str:
    """The processor's model name (Linux ``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return (f"CPU: {platform.processor() or platform.machine()} "
            f"({os.cpu_count()} cores, {torch.get_num_threads()} threads)")


@dataclass
class StageContext:
    """The resolved profile and folders of one notebook run."""

    profile: Profile
    stage: str
    root: Path
    run_root: Path
    results_dir: Path

    def eval_config(self, **changes: Any) -> EvalConfig:
        """The profile's evaluation options, with its data directory and tokenizer, plus changes
        (:func:`connectome_lib.config.eval_config`)."""
        return config.eval_config(self.profile, **changes)

    def val_tokens(self) -> np.ndarray:
        """The validation tokens the training curves use (so perplexity matches them)."""
        from .data import load_corpus_tokens

        return load_corpus_tokens("val", self.profile.data, progress=False)


def setup(
    profile: str = "cpu", overrides: dict[str, Any] | None = None, stage: str = "", quiet: bool = False
) -> StageContext:
    """Load ``profile`` with ``overrides`` (dotted keys; a misspelt key is an error), make its
    paths absolute, apply the plotting theme and print where the numbers come from."""
    root = project_root()
    overrides = dict(overrides or {})
    p, results_dir = resolve_folders(load_profile(profile, overrides), root=root, overrides=overrides)
    ctx = StageContext(p, stage, root, p.run_root, results_dir)
    from transformers.utils import logging as hf_logging

    from .book_support import setup_page

    hf_logging.disable_progress_bar()  # one "Loading weights" bar per checkpoint floods the page
    setup_page()  # the figures' theme; every DataFrame shown for people
    if not quiet:
        print(f"stage: {stage or '-'} | profile: {p.name} ({p.description})")
        print(f"hardware: {device_description()} | profile written for: {p.hardware or '-'}")
        if overrides:
            print(f"overrides: {dict(overrides)}")
    return ctx


def key_numbers(values: dict[str, Any], exact: tuple[str, ...] | list[str] = (), digits: int = 6) -> None:
    """Print the stage's regression values (see :mod:`connectome_lib.regression`).

    The nbval tests compare ``exact`` keys (counts, densities) exactly and every other number
    within the tolerance measured across CPU kernels.
    """
    from .regression import print_key_numbers

    print_key_numbers(values, exact, digits)
