"""One writer per step and per results file: exclusive locks that fail at once, never hang.

Two processes writing the same step folder corrupt each other (one deletes the other's training
state; a connectome ends up pruned with two settings). Locks here are exclusive and non-blocking
(``filelock``, an OS-level ``flock`` that the OS releases if the holder dies, so a crash never
leaves a stale lock). A second process gets :class:`RunLockedError` at once -- never a hang --
naming the folder and the PID and command that hold it, recorded beside the lock.

* :func:`step_lock`: one lock per step (``<run_root>/.locks/<kind>__<name>.lock``), held by
  :class:`connectome_lib.step.Step` while it computes: the same step never runs twice at once,
  while different steps of a run (inner models, ablation models) may run in parallel;
* :func:`run_lock`: the lock of a folder (``<folder>/.lock``), held by the evaluation while it
  writes a results file.

A process that already holds a lock may take it again (the nested call neither waits on itself
nor releases the outer lock). With several processes (``torchrun``, ``accelerate launch``) only
the main process, rank 0, takes a step's lock and tells the others whether it got it
(:meth:`connectome_lib.step.Step.lock`); ``enabled=False`` skips the lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

LOCK_NAME = ".lock"
OWNER_NAME = ".lock.owner.json"
#: the folder of the per-step locks, under the run root
STEP_LOCKS = ".locks"


class RunLockedError(RuntimeError):
    """Another process is writing to the same run folder."""


def lock_path(run_root: str | os.PathLike) -> Path:
    return Path(run_root) / LOCK_NAME


def _read_owner(owner_file: Path) -> dict | None:
    try:
        return json.loads(owner_file.read_text())
    except (OSError, ValueError):
        return None


def _locked_message(run_root: Path, stage: str, owner_file: Path) -> str:
    owner = _read_owner(owner_file)
    if owner:
        who = (f"process {owner.get('pid')} on {owner.get('host')} ({owner.get('stage')}, since "
               f"{owner.get('since')})")
    else:
        who = "another process"
    return (f"{run_root} is in use by {who}; {stage} cannot write there at the same time: wait for it to "
            f"finish, or use another runs folder (--runs-dir / runs_dir)")


@contextlib.contextmanager
def _hold(lock_file: Path, owner_file: Path, where: Path, stage: str) -> Iterator[None]:
    """Hold the exclusive lock ``lock_file`` (recording the holder in ``owner_file``); raise
    :class:`RunLockedError` at once if another process holds it. Re-entrant in one process."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_file), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        owner = _read_owner(owner_file) or {}
        if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            yield  # this process holds it already (a stage called from inside another)
            return
        raise RunLockedError(_locked_message(where, stage, owner_file)) from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "stage": stage,
                "command": " ".join(sys.argv)[:300], "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        tmp = owner_file.with_name(owner_file.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info, sort_keys=True))
        os.replace(tmp, owner_file)
        yield
    finally:
        with contextlib.suppress(OSError):
            owner_file.unlink()
        lock.release()


@contextlib.contextmanager
def run_lock(run_root: str | os.PathLike, stage: str, enabled: bool = True) -> Iterator[Path | None]:
    """Hold the exclusive lock of ``run_root`` for the ``with`` block (``stage`` names the holder
    in messages); raise :class:`RunLockedError` immediately if another process holds it. The
    evaluation holds it while it writes a results file."""
    if not enabled:
        yield None
        return
    root = Path(run_root)
    with _hold(lock_path(root), root / OWNER_NAME, root, stage):
        yield root


def step_lock_path(run_root: str | os.PathLike, step_id: str) -> Path:
    """``<run_root>/.locks/<kind>__<name>.lock``: the lock of one step (outside its folder,
    which ``--fresh`` deletes)."""
    return Path(run_root) / STEP_LOCKS / (step_id.replace("/", "__") + ".lock")


@contextlib.contextmanager
def step_lock(run_root: str | os.PathLike, step_id: str, enabled: bool = True) -> Iterator[None]:
    """Hold the lock of step ``step_id`` (e.g. ``develop/connectome_s0``): two workers never
    compute the same step, while different steps of a run may run in parallel."""
    if not enabled:
        yield
        return
    lock_file = step_lock_path(run_root, step_id)
    with _hold(lock_file, lock_file.with_suffix(".owner.json"), Path(run_root) / step_id, f"step {step_id}"):
        yield
