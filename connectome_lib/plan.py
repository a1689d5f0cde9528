"""Every step of a profile, whether it is done, and the command that runs it alone.

A run of a profile is a set of steps, each runnable on its own (``connectome step ID``), so that
a cluster scheduler -- a SLURM job array, one ``accelerate launch`` per step -- can run them in
parallel; this project writes no scheduler of its own. The steps and what each needs:

* ``evolve/c<k>/gen_<gg>`` -- one generation of lineage k of the outer loop; needs the
  lineage's previous generation;
* ``develop/<init>_s<seed>`` -- one inner-loop model; the models that start from a connectome
  (Connectome and the random controls) need their lineage's final connectome
  (:func:`~connectome_lib.stages.lineage_of`), NoConnectome needs nothing;
* ``ablation/<variant>_s<seed>`` -- one ablation model; needs the final connectome of
  ``ablations.lineage``;
* ``evaluate/<init>_s<seed>`` -- one inner-loop model on every evaluation task, as the stage
  notebooks evaluate it (:func:`evaluation_schedule`: the final model, and every checkpoint for
  the tasks drawn over the inner loop), into the run's ``evals/results.csv``; needs that model;
* ``evaluate/ablations`` -- the validation loss per window of every ablation model and the
  three main model types (``<run_root>/ablations/evals/``); needs all of them.

Training steps hold their own lock (:func:`connectome_lib.locking.step_lock`), so two workers
never compute the same step; the evaluation steps of a run share one results file, whose lock
lets one evaluation write at a time (a second one stops at once with
:class:`~connectome_lib.locking.RunLockedError`: run them in one job, after the training steps).

:func:`plan` lists the steps with their status (``done``, ``partial``, ``stale``, ``absent``,
``waiting`` for a step it needs); :func:`run_step` runs one.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from . import ablation, layout, stages
from .config import ConfigError, Profile
from .registry import CONNECTOME_INITS
from .step import STATUSES as STEP_STATUSES
from .step import Step

#: what :func:`plan` says of a step: those of :meth:`Step.status` and ``waiting`` for a step it needs
STATUSES = (*STEP_STATUSES, "waiting")


@dataclass(frozen=True)
class PlannedStep:
    """One row of :func:`plan`."""

    id: str
    kind: str
    folder: Path
    status: str
    needs: tuple[str, ...]
    command: str


def _ablation_seeds_variants(profile: Profile) -> tuple[list[int], list[str]]:
    return ablation.ablation_seeds(profile), ablation.ablation_variants(profile)


def _command(step_id: str, profile_arg: str, overrides: Sequence[str], extra: str = "") -> str:
    sets = "".join(f" --set {shlex.quote(o)}" for o in overrides)
    return f"connectome step {step_id} --profile {shlex.quote(profile_arg)}{sets}" + (f" {extra}" if extra else "")


def training_step_ids(profile: Profile) -> list[str]:
    """The ids of every training step of the profile, in the order a single worker runs them."""
    ids = [_generation_id(profile, g, k) for k in stages.lineages(profile) for g in range(profile.evolve.generations)]
    ids += [f"develop/{init}_s{s}" for init, s in profile.develop.models()]
    seeds, variants = _ablation_seeds_variants(profile)
    ids += [f"ablation/{v}_s{int(s)}" for s in seeds for v in variants]
    return ids


def _generation_id(profile: Profile, g: int, lineage: int) -> str:
    gdir = layout.generation_dir(profile.run_root, g, lineage)
    return f"evolve/{gdir.parent.name}/{gdir.name}"


def _parse_generation_id(name: str) -> tuple[int, int]:
    """``"c1/gen_03"`` -> (lineage 1, generation 3)."""
    lineage, _, gen = name.partition("/")
    m, g = layout.LINEAGE_NAME.match(lineage), layout.parse_generation_name(gen)
    if m is None or g is None:
        raise ConfigError(f"step name {name!r} should be c<lineage>/gen_<generation>")
    return int(m.group(1)), g


def _training_step(profile: Profile, step_id: str) -> Step | None:
    """The :class:`Step` of a training step id (``None`` while the final connectome it needs is
    missing, so its settings cannot be known yet)."""
    kind, name = step_id.split("/", 1)
    try:
        if kind == "evolve":
            lineage, g = _parse_generation_id(name)
            return stages.generation_steps(profile, lineage)[g]
        init, seed = _split_seed(name)
        if kind == "develop":
            return stages.develop_step(profile, init, seed)
        return ablation.ablation_step(profile, init, seed)
    except FileNotFoundError:
        return None


def _split_seed(name: str) -> tuple[str, int]:
    parsed = layout.parse_seeded_name(name)
    if parsed is None:
        raise ConfigError(f"step name {name!r} should end in _s<seed>")
    return parsed


def _needs(profile: Profile, step_id: str) -> tuple[str, ...]:
    kind, name = step_id.split("/", 1)

    def last(lineage: int) -> str:
        return _generation_id(profile, profile.evolve.generations - 1, lineage)

    if kind == "evolve":
        lineage, g = _parse_generation_id(name)
        return (_generation_id(profile, g - 1, lineage),) if g > 0 else ()
    if kind == "develop":
        init, seed = _split_seed(name)
        return (last(stages.lineage_of(profile, seed)),) if init in CONNECTOME_INITS else ()
    if kind == "ablation":
        return (last(profile.ablations.lineage),)
    if name == "ablations":
        seeds, variants = _ablation_seeds_variants(profile)
        return tuple([f"develop/{i}_s{int(s)}" for s in seeds for i in profile.develop.inits]
                     + [f"ablation/{v}_s{int(s)}" for s in seeds for v in variants])
    return (f"develop/{name}",)


def _evaluation_done(profile: Profile, name: str) -> bool:
    """Whether the run's results file has a row of every evaluated task for every checkpoint of
    inner model ``name`` (their fingerprints are checked when the step runs)."""
    from .evals.runner import find_targets, read_results

    if name == "ablations":
        path = ablation.ablation_results_path(profile)
        folders = [f for _, _, f in ablation.ablation_folders(profile, *_ablation_seeds_variants(profile))]
        schedule = {"final": ["perplexity"]}
    else:
        path = layout.evals_dir(profile.run_root) / "results.csv"
        folders = [layout.develop_dir(profile.run_root, *_split_seed(name))]
        schedule = evaluation_schedule()
    if not path.exists():
        return False
    res = read_results(path)
    have = set(zip(res["model"].astype(str), res["iteration"].astype(int), res["task"].astype(str)))
    for folder in folders:
        for checkpoints, tasks in schedule.items():
            try:
                targets = find_targets(folder, checkpoints)
            except FileNotFoundError:
                return False
            if any((t.model, t.iteration, task) not in have for t in targets for task in tasks):
                return False
    return True


def evaluation_schedule() -> dict[str, list[str]]:
    """What the evaluation of one inner model computes, as the stage notebooks do: every task of
    the registry, on the final model or, for tasks drawn over the inner loop, on every checkpoint
    (:attr:`connectome_lib.registry.Task.checkpoints`): ``{"final": [...], "all": [...]}``."""
    from .registry import TASKS

    out: dict[str, list[str]] = {}
    for t in TASKS:
        out.setdefault(t.checkpoints, []).append(t.name)
    return out


def evaluation_step_ids(profile: Profile) -> list[str]:
    ids = [f"evaluate/{init}_s{s}" for init, s in profile.develop.models()]
    return ids + ["evaluate/ablations"]


def plan(profile: Profile, profile_arg: str | None = None, overrides: Sequence[str] = (),
         extra: str = "") -> list[PlannedStep]:
    """Every step of ``profile`` with its status, what it needs and the command that runs it
    (with ``profile_arg`` and ``overrides`` as given on the command line)."""
    profile_arg = profile_arg or profile.name
    rows: list[PlannedStep] = []
    status: dict[str, str] = {}
    for sid in training_step_ids(profile) + evaluation_step_ids(profile):
        kind, name = sid.split("/", 1)
        needs = _needs(profile, sid)
        if kind == "evaluate":
            folder = (ablation.ablation_results_path(profile).parent if name == "ablations"
                      else layout.evals_dir(profile.run_root))
            st = "done" if _evaluation_done(profile, name) else "absent"
        else:
            step = _training_step(profile, sid)
            folder = (step.folder if step
                      else Path(profile.run_root) / ("ablations" if kind == "ablation" else kind) / name)
            st = step.status() if step else "absent"
        if st != "done" and any(status.get(n) != "done" for n in needs):
            st = "waiting"
        status[sid] = st
        rows.append(PlannedStep(sid, kind, folder, st, needs, _command(sid, profile_arg, overrides, extra)))
    return rows


def _needs_text(needs: Sequence[str]) -> str:
    if not needs:
        return "-"
    if len(needs) <= 2:
        return " ".join(needs)
    return f"{len(needs)} steps ({needs[0]} ... {needs[-1]})"


def step_group(step_id: str) -> str:
    """``evolve``, ``develop``, ``ablation``, ``evaluate`` (an inner model's evaluation) or
    ``evaluate-ablations``: the groups of steps a stage notebook shows (:mod:`connectome_lib.pipeline`)."""
    return "evaluate-ablations" if step_id == "evaluate/ablations" else step_id.split("/", 1)[0]


def plan_table(steps: Sequence[PlannedStep]) -> pd.DataFrame:
    """:func:`plan` as a table: step, status, needs (long lists shortened), command."""
    return pd.DataFrame([{"step": s.id, "status": s.status, "needs": _needs_text(s.needs), "command": s.command}
                         for s in steps])


def run_step(profile: Profile, step_id: str, fresh: bool = False, progress: bool = True) -> Path:
    """Run the step ``step_id`` alone (see the module docstring); return its folder. A step
    whose inputs are missing stops with a one-line error naming the step to run first."""
    known = training_step_ids(profile) + evaluation_step_ids(profile)
    if step_id not in known:
        import difflib

        close = difflib.get_close_matches(step_id, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"profile {profile.name} has no step {step_id!r}{hint}; `connectome steps --profile "
                          f"{profile.name}` lists them")
    kind, name = step_id.split("/", 1)
    if kind == "evolve":
        lineage, g = _parse_generation_id(name)
        stages.run_generation(profile, g, lineage=lineage, progress=progress, fresh=fresh)
        return layout.generation_dir(profile.run_root, g, lineage)
    if kind == "develop":
        return stages.develop_one(profile, *_split_seed(name), progress=progress, fresh=fresh)
    if kind == "ablation":
        return ablation.train_ablation(profile, *_split_seed(name), progress=progress, fresh=fresh)
    return _run_evaluation(profile, name, fresh=fresh, progress=progress)


def _run_evaluation(profile: Profile, name: str, fresh: bool, progress: bool) -> Path:
    import dataclasses

    from .config import eval_config
    from .data import load_corpus_tokens
    from .evals.runner import evaluate

    cfg = dataclasses.replace(eval_config(profile), progress=progress)
    val = lambda: load_corpus_tokens("val", profile.data, progress=progress)  # noqa: E731
    if name == "ablations":
        seeds, variants = _ablation_seeds_variants(profile)
        ablation.evaluate_ablations(profile, cfg, val, seeds=seeds, variants=variants)
        return ablation.ablation_results_path(profile).parent
    trained = stages.develop_step(profile, *_split_seed(name))
    status = trained.status()
    if status != "done":
        how = "retrain it with --fresh" if status == "stale" else "train it"
        raise FileNotFoundError(f"{trained.title} is {status}, not done with these settings: {how} first "
                                f"(connectome step {trained.id})")
    folder = trained.folder
    results = layout.evals_dir(profile.run_root) / "results.csv"
    for checkpoints, tasks in evaluation_schedule().items():
        evaluate(folder, dataclasses.replace(cfg, checkpoints=checkpoints), tasks=tasks, val_tokens=val,
                 results_path=results, fresh=fresh)
    return results.parent


# ------------------------------------------------------------------------------ command line
def cmd_steps(args, profile: Profile) -> int:
    """``connectome steps``: print every step of the profile with its status and command."""
    flags = [f"--{name.replace('_', '-')} {shlex.quote(str(getattr(args, name)))}"
             for name in ("runs_dir", "cache_dir", "data_dir") if getattr(args, name, None)]
    steps = plan(profile, args.profile, args.overrides, extra=" ".join(flags))
    if getattr(args, "status", None):
        steps = [s for s in steps if s.status in args.status]
    if getattr(args, "ids", False):
        print("\n".join(s.id for s in steps))
        return 0
    table = plan_table(steps)
    if table.empty:
        print("no steps")
        return 0
    counts = table["status"].value_counts()
    widths = {c: max(len(c), *(len(str(v)) for v in table[c])) for c in ("step", "status", "needs")}
    for row in [dict(zip(table.columns, table.columns)), *table.to_dict("records")]:
        print("  ".join(f"{row[c]:<{widths[c]}}" for c in widths) + f"  {row['command']}")
    print(f"{len(table)} steps: " + ", ".join(f"{counts[k]} {k}" for k in STATUSES if k in counts))
    return 0


def cmd_step(args, profile: Profile) -> int:
    """``connectome step ID``: run one step alone."""
    folder = run_step(profile, args.step_id, fresh=args.fresh, progress=not args.no_progress)
    print(f"{args.step_id}: done -> {folder}")
    return 0
