"""The ``connectome`` command line: every stage of the pipeline, configured by profiles.

Examples::

    connectome profiles                              # list the profiles
    connectome show --profile smoke                  # the resolved configuration, as YAML
    connectome tokenize --profile cpu                # tokenise the corpora (cached)
    connectome evolve --profile smoke --set evolve.generations=3
    connectome develop --profile smoke --init connectome --seed 0
    connectome steps --profile smoke                 # every step, its status and its command
    connectome step develop/dense_s0 --profile smoke # one step alone (a job of a cluster array)
    connectome evaluate --run runs/smoke             # see `connectome evaluate --help`
    connectome --debug evolve --profile smoke        # on an error: the full traceback, not one line
    CONNECTOME_RUNS_DIR=/tmp/runs connectome evolve --profile smoke   # the notebooks' folders, too
    accelerate launch -m connectome_lib.cli evolve --profile gpu    # several GPUs
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

from .cli_support import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    add_debug_flag,
    add_folder_args,
    describe_error,
    folder_flag,
    resolved_profile,
    run_command,
)
from .config import CACHE_DIR_ENV, RESULTS_DIR_ENV, RUNS_DIR_ENV, available_profiles, load_profile, profile_to_yaml

__all__ = ["main", "build_parser", "COMMANDS", "Command", "add_profile_args", "add_folder_args", "resolved_profile",
           "EXIT_CONFIG", "EXIT_INTERRUPTED", "add_debug_flag", "describe_error", "run_command"]

_SET_HELP = (
    "override one configuration field, by its dotted name, with a YAML value; repeatable. "
    "Examples: --set evolve.generations=3  --set develop.seeds=[0,1]  --set develop.train.lr=1e-3  "
    "--set data.data_dir=/path/to/data. A misspelt key is an error. See `connectome show` for every field."
)


# --------------------------------------------------------------------------------------------
# the options every profile command shares, and the folders they resolve to


def add_profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile", default="cpu",
        help="profile name (%s) or path to a YAML profile; default: cpu" % ", ".join(available_profiles()),
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=_SET_HELP)
    add_folder_args(p)
    p.add_argument("--data-dir", help="data directory (default: the profile's data.data_dir, else "
                   "$CONNECTOME_DATA_DIR, else ../shared/data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")


def _profile(args: argparse.Namespace):
    return resolved_profile(args).profile


# --------------------------------------------------------------------------------------------
# the commands


def _cmd_profiles(args) -> int:
    for name in available_profiles():
        p = load_profile(name)
        print(f"{name:8s} {p.description}")
    return 0


def _cmd_show(args) -> int:
    print(profile_to_yaml(_profile(args)), end="")
    return 0


def _cmd_tokenize(args) -> int:
    from .data import corpus_manifest

    profile = _profile(args)
    for split in args.splits:
        t0 = time.time()
        m = corpus_manifest(split, profile.data)
        print(f"{split:6s} {m['n_tokens']:>12,d} tokens, {m['n_documents']:>6,d} documents  "
              f"source={m['source']}  tokenised in {m['seconds']} s (this call: {time.time() - t0:.1f} s)")
    return 0


def _cmd_evolve(args) -> int:
    from . import layout
    from .stages import evolution_summary, evolve

    profile = _profile(args)
    finals = evolve(profile, progress=not args.no_progress, fresh=getattr(args, "fresh", False))
    print(evolution_summary(profile).to_string(index=False))
    for k, connectome in enumerate(finals):
        print(f"final connectome of lineage {k}: density {connectome.density():.4f} -> "
              f"{layout.final_connectome_path(profile.run_root, k)}")
    return 0


def _cmd_develop(args) -> int:
    from .stages import develop

    profile = _profile(args)
    folders = develop(
        profile,
        inits=[args.init] if args.init else None,
        seeds=[args.seed] if args.seed is not None else None,
        progress=not args.no_progress,
        fresh=getattr(args, "fresh", False),
    )
    for f in folders:
        print(f)
    return 0


def _tokenize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--splits", nargs="+", default=["outer", "inner", "val"], choices=["outer", "inner", "val"],
                   help="which corpora to tokenise (default: all three)")


def _evolve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fresh", action="store_true", help="recompute generations computed with other settings "
                   "(and every later one) instead of stopping with an error")


def _develop_args(p: argparse.ArgumentParser) -> None:
    from .registry import INITS

    p.add_argument("--init", choices=list(INITS), help="train only this model type")
    p.add_argument("--seed", type=int, help="train only this seed")
    p.add_argument("--fresh", action="store_true", help="retrain models computed with other settings or from "
                   "another connectome instead of stopping with an error")


def _cmd_steps(args) -> int:
    from .plan import cmd_steps

    return cmd_steps(args, _profile(args))


def _cmd_step(args) -> int:
    from .plan import cmd_step

    return cmd_step(args, _profile(args))


def _steps_args(p: argparse.ArgumentParser) -> None:
    from .plan import STATUSES

    p.add_argument("--status", nargs="+", choices=STATUSES, help="list only the steps with these statuses")
    p.add_argument("--ids", action="store_true", help="print only the step ids, one a line (for a job array)")


def _step_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("step_id", metavar="STEP", help="the step to run, as `connectome steps` names it, e.g. "
                   "evolve/gen_00, develop/connectome_s0, ablation/random_wte_s0, evaluate/dense_s1")
    p.add_argument("--fresh", action="store_true", help="recompute the step if it was computed with other "
                   "settings instead of stopping with an error")


def _cmd_report(args) -> int:
    """``connectome report``: this run's key numbers beside the committed ones
    (:mod:`connectome_lib.reproduction`)."""
    from . import reproduction
    from .paths import project_root

    r = resolved_profile(args)
    report = reproduction.make_report(project_root(), r.results_dir, r.run_root, ref=args.against)
    if report is None:
        print(f"no committed results at {r.results_dir} in {args.against}: nothing to compare with")
        return 0
    print(reproduction.report_markdown(report))
    print(f"report: {r.run_root / reproduction.REPORT_FILE}")
    return 0


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results-dir", help="the folder of exported results, as for the pipeline "
                   "(default: $CONNECTOME_RESULTS_DIR, else results/); its <profile>/ is checked")
    p.add_argument("--against", default="HEAD", metavar="COMMIT",
                   help="the commit whose results/<profile>/ are the reference (default: HEAD)")


def _cmd_timings(args) -> int:
    """``connectome timings``: the run's measured wall times into ``results/<profile>/timings.json``
    (:mod:`connectome_lib.timings`)."""
    from . import layout, timings
    from .config import ConfigError
    from .export import _git_commit
    from .paths import project_root

    r = resolved_profile(args)
    record = timings.collect(r.run_root, args.command_line or f"connectome pipeline --profile {r.profile.name}",
                             _git_commit(project_root()), args.total_seconds, args.note)
    if args.second_pass:
        first = r.results_dir / timings.TIMINGS_FILE
        if not first.exists():
            raise ConfigError(f"--second-pass: {first} holds no timings of a first pass to add it to")
        record = timings.with_second_pass(layout.read_json(first), record, args.second_pass)
    print(f"timings: {timings.write(r.results_dir, record)}")
    return 0


def _timings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results-dir", help="the folder of exported results, as for the pipeline "
                   "(default: $CONNECTOME_RESULTS_DIR, else results/); written to its <profile>/timings.json")
    p.add_argument("--total-seconds", type=float, help="the whole command's wall time (set-up included)")
    p.add_argument("--command-line", help="the command that ran (default: connectome pipeline --profile P)")
    p.add_argument("--note", help="a sentence about the run's conditions (e.g. other work on the same cores)")
    p.add_argument("--second-pass", metavar="WHAT", help="the stage pages were executed again on the same run "
                   "folders: keep the first pass's timings and add this pass's, with what it was for")


def _cmd_estimate(args) -> int:
    from .estimate import cmd_estimate

    return cmd_estimate(args, _profile(args))


def _estimate_args(p: argparse.ArgumentParser) -> None:
    from .estimate import add_estimate_args

    add_estimate_args(p)


def _register_evaluate(sub) -> argparse.ArgumentParser:
    from .evals import cli as evals_cli

    return evals_cli.add_parser(sub)


def _register_convert(sub) -> None:
    """``connectome convert SRC OUT`` (:mod:`connectome_lib.released`)."""
    from . import released

    released.add_parsers(sub)


def _register_push(sub) -> None:
    """``connectome push --model PATH --repo-id ID`` (:mod:`connectome_lib.hub`)."""
    from . import hub

    hub.add_parsers(sub)


def _register_pipeline(sub) -> argparse.ArgumentParser:
    """``connectome pipeline`` (:mod:`connectome_lib.pipeline`), plus the folder flags: they are
    handed to the stage notebooks as the ``CONNECTOME_*_DIR`` variables their set-up reads."""
    from . import pipeline

    p = pipeline.add_parser(sub)
    add_folder_args(p, results=True)
    p.set_defaults(func=_with_folder_env(p.get_default("func")))
    return p


def _with_folder_env(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        flags = {RUNS_DIR_ENV: folder_flag(args, "runs_dir"), CACHE_DIR_ENV: folder_flag(args, "cache_dir"),
                 RESULTS_DIR_ENV: folder_flag(args, "results_dir")}
        saved = {k: os.environ.get(k) for k in flags}
        try:
            os.environ.update({k: v for k, v in flags.items() if v})
            r = resolved_profile(args)
            print(f"runs: {r.run_root} | token cache: {r.profile.data.cache_dir} | results: {r.results_dir}",
                  flush=True)
            return func(args)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return run


@dataclass(frozen=True)
class Command:
    """One sub-command: either ``func`` with the shared profile options (``profile=True``) plus
    its own (``add_args``), or ``register(subparsers)`` for a module that builds its own parser."""

    name: str
    help: str = ""
    func: Callable[[argparse.Namespace], int] | None = None
    description: str | None = None
    add_args: Callable[[argparse.ArgumentParser], None] | None = None
    profile: bool = True
    register: Callable[..., argparse.ArgumentParser] | None = None


#: the sub-commands, in the order ``connectome --help`` lists them; add one here
COMMANDS: list[Command] = [
    Command("profiles", "list the available profiles", _cmd_profiles, profile=False),
    Command("show", "print a profile's resolved configuration (YAML), overrides applied", _cmd_show),
    Command("tokenize", "tokenise the profile's corpora into cached uint16 token files", _cmd_tokenize,
            add_args=_tokenize_args),
    Command("evolve", "outer loop: train -> prune -> reset for evolve.generations generations; writes the connectome",
            _cmd_evolve, add_args=_evolve_args,
            description="Run the outer loop. One folder per generation under <runs_dir>/<profile>/evolve; "
            "finished generations are skipped and an interrupted one resumes from its last saved state."),
    Command("develop", "inner loop: train fresh models from the connectome, a random connectome, or dense init",
            _cmd_develop, add_args=_develop_args,
            description="Train the inner-loop models (every init x seed of the profile, or one of them). "
            "Needs the connectome of the evolve stage for init=connectome and init=random."),
    Command("steps", "list every step of a profile (generations, inner models, ablations, evaluations) with its "
            "status and the command that runs it alone", _cmd_steps, add_args=_steps_args,
            description="List every step of the profile's run: its status (done, partial = interrupted and "
            "resumable, stale = computed with other settings, absent, waiting for a step it needs), what it needs "
            "and the command that runs it alone, so that a cluster scheduler can run the steps in parallel."),
    Command("step", "run one step alone (see `connectome steps`)", _cmd_step, add_args=_step_args,
            description="Run one step of the profile's run. Its lock keeps a second worker off the same step; "
            "a step whose inputs are missing stops naming the step to run first."),
    Command("estimate", "a dry run: tokens, FLOPs, time, memory and disk per stage, before anything runs",
            _cmd_estimate, add_args=_estimate_args,
            description="Estimate what the profile's run costs per stage (outer loop, inner loop, ablations, "
            "evaluations) on --gpus accelerators of kind --gpu at --mfu utilisation; nothing is run."),
    Command("evaluate", register=_register_evaluate),
    Command("pipeline", register=_register_pipeline),
    Command("convert", register=_register_convert),
    Command("push", register=_register_push),
    Command("timings", "write the run's measured wall times (stages, training steps) beside its exported "
            "results", _cmd_timings, add_args=_timings_args),
    Command("report", "compare this run's exported results with the committed ones: identical, reproduced "
            "(within the seed spread) or differs", _cmd_report, add_args=_report_args),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connectome",
        description=(
            "Reproduce Kotar & Tuckute (2025), 'Model Connectomes'. The outer loop (evolve) trains, prunes "
            "20%% of the remaining weights per tensor and resets survivors to sign x 0.02 for G generations; "
            "the inner loop (develop) trains fresh models that inherit the connectome, a random connectome of "
            "matched density, or a dense standard init. Every stage reads a profile (smoke, cpu, gpu, paper) "
            "and resumes where it stopped when run again."
        ),
        epilog=__doc__.split("Examples::", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS:
        if cmd.register is not None:
            cmd.register(sub)
            continue
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description or cmd.help)
        if cmd.profile:
            add_profile_args(p)
        if cmd.add_args is not None:
            cmd.add_args(p)
        p.set_defaults(func=cmd.func)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args.func, args, parser)


if __name__ == "__main__":
    sys.exit(main())
