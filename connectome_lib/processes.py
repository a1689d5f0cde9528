"""The processes of a run, for every launcher: one place that sets up accelerate's process state.

Every module that asks "am I the main process?" or "wait for the others" (the steps, the
trainer, tokenising, training the BPE) calls :func:`process_state`, never a plain
``accelerate.PartialState()``: the state is set up once per process, and whichever call comes
first decides how (see :func:`process_state`).
"""

from __future__ import annotations

import os

import torch


class LaunchError(RuntimeError):
    """Several processes were asked for, but the launcher started one."""


#: what the launchers that start every process set: torchrun (and ``accelerate launch --multi_gpu``,
#: which runs it), MPI (``accelerate launch --cpu --mpirun_hostfile``)
_RANK_VARIABLES = ("WORLD_SIZE", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def _check_launch() -> None:
    """Refuse ``accelerate launch --cpu --num_processes N`` (N > 1) without MPI: accelerate's CPU
    launcher then starts a single process whatever N says (it only sets ``ACCELERATE_USE_CPU`` and
    ``MASTER_ADDR``), which would silently train with a batch N times smaller than asked for."""
    env = os.environ
    if (env.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") and "MASTER_ADDR" in env
            and not any(k in env for k in _RANK_VARIABLES)):
        raise LaunchError(
            "`accelerate launch --cpu --num_processes N` starts one process, not N (accelerate's CPU "
            "launcher runs several only through MPI, --mpirun_hostfile). For several CPU processes use "
            "`torchrun --nproc_per_node N -m connectome_lib.cli ...`, or on a machine without a GPU "
            "`accelerate launch --multi_gpu --num_processes N -m connectome_lib.cli ...` (it runs torchrun)")


def process_state():
    """The processes of this run: accelerate's ``PartialState``, shared by every ``Accelerator``
    of the process, set up so that every launcher works on every machine.

    Without a GPU it is set up with ``cpu=True``: processes started by ``torchrun`` (or by
    ``accelerate launch --multi_gpu``, which runs torchrun) then join one gloo process group
    (rank 0 is the main process). A plain ``PartialState()`` would instead leave each of them a
    process of its own -- every rank the main one, all writing (and locking) the same step -- and
    since the state is set up once per process, whichever call comes first decides: the steps
    (:meth:`connectome_lib.step.Step.lock`) and the trainer call this before anything else.
    Raises :class:`LaunchError` for ``accelerate launch --cpu --num_processes N`` (one process
    started, see :func:`_check_launch`)."""
    from accelerate import PartialState

    _check_launch()
    return PartialState(cpu=not torch.cuda.is_available())
