"""One writer per run folder: a stage holds ``<run_root>/.lock`` while it writes there.

Two processes writing the same run folder corrupt each other (one deletes the other's training
state; a connectome ends up pruned with two settings). :func:`run_lock` takes an exclusive,
non-blocking lock (``filelock``, an OS-level ``flock`` that the OS releases if the holder dies,
so a crash never leaves a stale lock). A second process gets :class:`RunLockedError` at once --
never a hang -- naming the folder and the PID and command that hold it, recorded beside the
lock in ``.lock.owner.json``.

Stages lock in their public entry points (``evolve``, ``develop``, ``develop_one``,
``evaluate``, ``evaluate_run``); a process that already holds the lock may take it again (the
nested call neither waits on itself nor releases the outer lock). Under ``accelerate launch`` only the main process locks (``enabled=False`` elsewhere).
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


class RunLockedError(RuntimeError):
    """Another process is writing to the same run folder."""


def lock_path(run_root: str | os.PathLike) -> Path:
    return Path(run_root) / LOCK_NAME


def lock_owner(run_root: str | os.PathLike) -> dict | None:
    """What the holder of the lock recorded (pid, host, stage, command, since), if readable."""
    try:
        return json.loads((Path(run_root) / OWNER_NAME).read_text())
    except (OSError, ValueError):
        return None


def _locked_message(run_root: Path, stage: str) -> str:
    owner = lock_owner(run_root)
    if owner:
        who = (f"process {owner.get('pid')} on {owner.get('host')} ({owner.get('stage')}, since "
               f"{owner.get('since')})")
    else:
        who = "another process"
    return (f"{run_root} is in use by {who}; {stage} cannot write there at the same time: wait for it to "
            f"finish, or use another runs folder (--runs-dir / runs_dir)")


@contextlib.contextmanager
def run_lock(run_root: str | os.PathLike, stage: str, enabled: bool = True) -> Iterator[Path | None]:
    """Hold the exclusive lock of ``run_root`` for the ``with`` block (``stage`` names the holder
    in messages); raise :class:`RunLockedError` immediately if another process holds it."""
    if not enabled:
        yield None
        return
    root = Path(run_root)
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(root)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        owner = lock_owner(root) or {}
        if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            yield root  # this process holds it already (a stage called from inside another)
            return
        raise RunLockedError(_locked_message(root, stage)) from None
    owner = root / OWNER_NAME
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "stage": stage,
                "command": " ".join(sys.argv)[:300], "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        tmp = owner.with_name(owner.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info, sort_keys=True))
        os.replace(tmp, owner)
        yield root
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()
