"""Settings fingerprints: which settings shaped a finished step, so a stale result is never reused.

Every finished step of a run records, in its ``done.json`` (and ``run.json``), the *settings*
that shaped it and their *fingerprint*: the SHA-256 of the settings as canonical JSON (sorted
keys, no whitespace). A later run computes the fingerprint its own settings give; when the two
differ, the step is stale: it is recomputed (``fresh=True``, ``--fresh``) or the run stops with a
one-line :class:`StaleResultError` that lists the settings that changed.

What shapes what (the builders below):

* **generation g** of the outer loop (:func:`generation_settings`): ``model``, ``data``
  (without the purely locational ``data_dir`` and ``cache_dir``), ``evolve`` with its ``train``
  section (as :func:`train_settings` gives it; without ``generations``: generation g does not
  depend on how many follow it), and the fingerprint of generation g-1, so a change anywhere
  upstream reaches every later one.
* **an inner-loop model** (:func:`inner_settings`): ``model``, ``data`` (as above),
  ``develop.train`` (as :func:`train_settings` gives it), ``develop.init_value``, its ``init``
  and ``seed`` and, for the connectome and random inits, the SHA-256 of the connectome file it
  was initialised from -- replacing the connectome under finished models is therefore noticed.
* **an evaluation task row** (:func:`eval_task_settings`): the evaluation options that shape
  that task (:attr:`connectome_lib.registry.Task.options`) and the fingerprint of the model folder it scores.

**Training settings** (:func:`train_settings`) are fingerprinted as what shapes the trained
weights, the learning curve (``curve.csv``, whose validation losses the analyses and figures
read) and the checkpoints (which evaluations read: the reading-times task scores every
checkpoint of an inner model). Left out, because they change none of these
(:mod:`connectome_lib.training`):

* ``log_every``: when the progress bar and the curve's ``train_loss`` (a diagnostic: the mean
  training loss since the previous log or validation point) are updated;
* ``save_state_every``: when the resumable state is saved (it holds the losses not yet logged,
  so a resumed run writes the same curve);
* ``compile``: how fast the model runs (torch.compile's kernels agree with eager ones to rounding);
* the split of a batch into ``batch_size`` x ``grad_accum``: with ``sampling`` ``sequential`` or
  ``shuffled``, iteration i reads windows ``i*B .. (i+1)*B - 1`` of the sampler's order for
  ``B = batch_size * grad_accum`` (x processes) whatever the split
  (:class:`connectome_lib.data.BatchSampler`), and the gradient is their mean, so only ``B``
  (``batch_sequences``) is recorded (the results agree to rounding). With ``sampling: random`` the windows are drawn
  per micro-batch, so both numbers are kept.

Kept although they do not touch the weights: ``val_every`` (which iterations the curve has),
``val_batches`` (the validation set every loss of the curve is measured on: ``val_batches``
batches of ``batch_size * grad_accum`` windows, so it too is independent of the split), and
``checkpoint_every`` and ``checkpoint_iters`` (the checkpoints evaluations read). The number of
processes is not part of the fingerprint (a plan made on one machine must agree with a run on
several); it is recorded in the resumable state, and a resume with another number is refused
(:class:`connectome_lib.training.ResumeMismatchError`).

The stages and the evaluation runner use these; this module only computes and compares.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from .registry import TASKS_BY_NAME

#: data fields that say *where* files are, not what they contain: never part of a fingerprint
LOCATIONAL_DATA_FIELDS = ("data_dir", "cache_dir")

#: evaluation options read by every task (each task's own are declared with it:
#: :attr:`connectome_lib.registry.Task.options`) (the tokenizer decides every score too, but it enters
#: as the SHA-256 of its vocabulary, not as the folder it was loaded from: a path is no setting)
EVAL_COMMON_FIELDS = ("dtype",)
#: bumped when a task's definition changes (e.g. BLiMP's leading space, seeded subsets), so rows
#: computed by the older definition are never mixed with new ones
EVAL_DEFINITIONS_VERSION = 2
class StaleResultError(ValueError):
    """A finished step was computed with other settings than the current ones."""


# ------------------------------------------------------------------------------ primitives
def _plain(obj: Any) -> Any:
    """``obj`` as plain JSON types (dataclasses as dicts, paths as strings, tuples as lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if hasattr(obj, "item"):  # numpy / torch scalars
        return _plain(obj.item())
    raise TypeError(f"cannot fingerprint a {type(obj).__name__}: {obj!r}")


def canonical_json(obj: Any) -> str:
    """Canonical JSON of ``obj``: sorted keys, no whitespace, so equal settings give equal text."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def fingerprint(obj: Any) -> str:
    """SHA-256 (hex) of :func:`canonical_json` of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


MODEL_FILES = ("config.json", "*.safetensors", "*.bin", "tokenizer.json", "tokenizer_config.json", "vocab.json",
               "merges.txt")


def folder_sha256(folder: str | os.PathLike, patterns: Iterable[str] = MODEL_FILES) -> str:
    """SHA-256 over a model folder's config, weight and tokenizer files (names and bytes, sorted
    by name): the fingerprint of a model folder that records none."""
    folder = Path(folder)
    h = hashlib.sha256()
    files = sorted({p for pat in patterns for p in folder.glob(pat) if p.is_file()})
    for p in files:
        h.update(p.name.encode())
        h.update(file_sha256(p).encode())
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """SHA-256 of a tokenizer's vocabulary (token -> id) and class: two tokenizers with the same
    fingerprint split text identically for every evaluation here."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True, ensure_ascii=True).encode())
    return h.hexdigest()


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"evolve": {"prune_fraction": 0.2}}`` -> ``{"evolve.prune_fraction": 0.2}``."""
    obj = _plain(obj)
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: obj}


_MISSING = "<absent>"


def settings_diff(old: Any, new: Any) -> list[str]:
    """The settings that differ, one ``key: old -> new`` string each, in key order."""
    a, b = flatten(old or {}), flatten(new or {})
    return [f"{k}: {a.get(k, _MISSING)!r} -> {b.get(k, _MISSING)!r}".replace("'", "")
            for k in sorted(set(a) | set(b)) if a.get(k, _MISSING) != b.get(k, _MISSING)]


def describe_change(recorded: Mapping[str, Any] | None, settings: Any, limit: int = 6) -> str:
    """A short account of what changed between a recorded step and the current settings."""
    if not recorded or "settings" not in recorded:
        return "it records no settings fingerprint (written by an older version)"
    diff = settings_diff(recorded.get("settings"), settings)
    if not diff:
        return "its fingerprint differs"
    more = f", and {len(diff) - limit} more" if len(diff) > limit else ""
    return ", ".join(diff[:limit]) + more


def stale_message(step: str, recorded: Mapping[str, Any] | None, settings: Any, how: str) -> str:
    """The one-line message of a :class:`StaleResultError`."""
    return f"{step} was computed with other settings ({describe_change(recorded, settings)}); {how}"


def is_current(recorded: Mapping[str, Any] | None, fp: str) -> bool:
    """Whether a record (a step's ``done.json``/``run.json``, an evaluation row's ``meta`` file,
    an executed stage notebook's metadata) carries fingerprint ``fp``: the one staleness test
    of every step, evaluation row and stage."""
    return isinstance(recorded, Mapping) and recorded.get("fingerprint") == fp


# ------------------------------------------------------------------------------ builders
#: training settings that shape no result (see the module docstring): never fingerprinted
UNSHAPING_TRAIN_FIELDS = ("log_every", "save_state_every", "compile")


def train_settings(train: Any) -> dict[str, Any]:
    """The training settings that shape results (see the module docstring): all but
    :data:`UNSHAPING_TRAIN_FIELDS`, with (unless ``sampling`` is ``random``) the batch as
    ``batch_sequences = batch_size * grad_accum`` instead of its split."""
    t = {k: v for k, v in _plain(train).items() if k not in UNSHAPING_TRAIN_FIELDS}
    if t.get("sampling") != "random":
        t["batch_sequences"] = int(t.pop("batch_size")) * int(t.pop("grad_accum"))
    return t


def data_settings(data: Any) -> dict[str, Any]:
    """The data settings that shape results: everything but :data:`LOCATIONAL_DATA_FIELDS`."""
    d = _plain(data)
    return {k: v for k, v in d.items() if k not in LOCATIONAL_DATA_FIELDS}


def generation_settings(profile: Any, generation: int, previous: str | None, lineage: int = 0) -> dict[str, Any]:
    """Settings that shape generation ``generation`` of lineage ``lineage`` of the outer loop (see
    the module docstring); ``previous`` is the fingerprint of generation ``generation - 1``
    (``None`` for generation 0). The lineage counts through its seed only, so adding a lineage
    leaves the others current."""
    evolve = _plain(profile.evolve)
    for name in ("generations", "seeds"):
        evolve.pop(name, None)
    evolve["train"] = train_settings(profile.evolve.train)
    evolve["train"]["seed"] = profile.evolve.lineage_seeds[lineage]
    return {"step": "evolve", "generation": int(generation), "model": _plain(profile.model),
            "data": data_settings(profile.data), "evolve": evolve, "previous": previous}


def inner_settings(profile: Any, init: str, seed: int, connectome_sha256: str | None,
                   lineage: int | None = None) -> dict[str, Any]:
    """Settings that shape the inner-loop model (``init``, ``seed``); ``connectome_sha256`` is the
    SHA-256 of the connectome file of lineage ``lineage`` it starts from (both ``None`` for the
    dense init)."""
    return {"step": "develop", "model": _plain(profile.model), "data": data_settings(profile.data),
            "develop": {"train": train_settings(profile.develop.train), "init_value": profile.develop.init_value},
            "init": init, "seed": int(seed), "lineage": lineage, "connectome_sha256": connectome_sha256}


def _task_options(task: str) -> tuple[str, ...]:
    return TASKS_BY_NAME[task].options if task in TASKS_BY_NAME else ()


def eval_task_settings(
    cfg: Any, task: str, model_fingerprint: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Settings that shape the rows of ``task`` for one model folder: the options named in
    :attr:`Task.options <connectome_lib.registry.Task.options>` (plus, for ``baselines``, those of
    its untrained-model tasks), ``extra`` inputs (e.g. the validation tokens' SHA-256) and the model's fingerprint."""
    fields = set(EVAL_COMMON_FIELDS) | set(_task_options(task))
    if task == "baselines":
        for t in getattr(cfg, "baseline_tasks", ()):
            fields |= set(_task_options(t))
    options = {f: _plain(getattr(cfg, f)) for f in sorted(fields) if hasattr(cfg, f)}
    return {"step": "evaluate", "task": task, "definitions": EVAL_DEFINITIONS_VERSION, "options": options,
            "inputs": _plain(dict(extra or {})), "model": model_fingerprint}
