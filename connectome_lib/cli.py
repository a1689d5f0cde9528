"""The ``connectome`` command line: every stage of the pipeline, configured by profiles.

Examples::

    connectome profiles                              # list the profiles
    connectome show --profile smoke                  # the resolved configuration, as YAML
    connectome tokenize --profile cpu                # tokenise the corpora (cached)
    connectome evolve --profile smoke --set evolve.generations=3
    connectome develop --profile smoke --init connectome --seed 0
    connectome evaluate --run runs/smoke             # see `connectome evaluate --help`
    connectome --debug evolve --profile smoke        # on an error: the full traceback, not one line
    accelerate launch -m connectome_lib.cli evolve --profile gpu    # several GPUs
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from .config import ConfigError, available_profiles, load_profile, profile_to_yaml

_SET_HELP = (
    "override one configuration field, by its dotted name, with a YAML value; repeatable. "
    "Examples: --set evolve.generations=3  --set develop.seeds=[0,1]  --set develop.train.lr=1e-3  "
    "--set data.data_dir=/path/to/data. A misspelt key is an error. See `connectome show` for every field."
)


def _add_profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile", default="cpu",
        help="profile name (%s) or path to a YAML profile; default: cpu" % ", ".join(available_profiles()),
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=_SET_HELP)
    p.add_argument("--runs-dir", help="where run folders are written (default: the profile's runs_dir, 'runs')")
    p.add_argument("--data-dir", help="data directory (default: $CONNECTOME_DATA_DIR, else ../shared/data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")


def _profile(args: argparse.Namespace):
    overrides = list(args.overrides)
    if args.runs_dir:
        overrides.append(f"runs_dir={args.runs_dir}")
    if args.data_dir:
        overrides.append(f"data.data_dir={args.data_dir}")
    return load_profile(args.profile, overrides)


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
    from .stages import evolution_summary, evolve

    profile = _profile(args)
    connectome = evolve(profile, progress=not args.no_progress, fresh=getattr(args, "fresh", False))
    print(evolution_summary(profile).to_string(index=False))
    print(f"final connectome: density {connectome.density():.4f} -> {profile.run_root / 'evolve' / 'connectome.cmask'}")
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

    p = sub.add_parser("profiles", help="list the available profiles")
    p.set_defaults(func=_cmd_profiles)

    p = sub.add_parser("show", help="print a profile's resolved configuration (YAML), overrides applied")
    _add_profile_args(p)
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("tokenize", help="tokenise the profile's corpora into cached uint16 token files")
    _add_profile_args(p)
    p.add_argument("--splits", nargs="+", default=["outer", "inner", "val"], choices=["outer", "inner", "val"],
                   help="which corpora to tokenise (default: all three)")
    p.set_defaults(func=_cmd_tokenize)

    p = sub.add_parser(
        "evolve",
        help="outer loop: train -> prune -> reset for evolve.generations generations; writes the connectome",
        description="Run the outer loop. One folder per generation under <runs_dir>/<profile>/evolve; "
        "finished generations are skipped and an interrupted one resumes from its last saved state.",
    )
    _add_profile_args(p)
    p.add_argument("--fresh", action="store_true", help="recompute generations computed with other settings "
                   "(and every later one) instead of stopping with an error")
    p.set_defaults(func=_cmd_evolve)

    p = sub.add_parser(
        "develop",
        help="inner loop: train fresh models from the connectome, a random connectome, or dense init",
        description="Train the inner-loop models (every init x seed of the profile, or one of them). "
        "Needs the connectome of the evolve stage for init=connectome and init=random.",
    )
    _add_profile_args(p)
    p.add_argument("--init", choices=["connectome", "random", "dense"], help="train only this model type")
    p.add_argument("--seed", type=int, help="train only this seed")
    p.add_argument("--fresh", action="store_true", help="retrain models computed with other settings or from "
                   "another connectome instead of stopping with an error")
    p.set_defaults(func=_cmd_develop)

    try:
        from .evals import cli as evals_cli
    except ImportError:  # pragma: no cover - the evals package is part of the library
        evals_cli = None
    if evals_cli is not None and hasattr(evals_cli, "add_parser"):
        evals_cli.add_parser(sub)
    try:
        from . import pipeline
    except ImportError:
        pipeline = None
    if pipeline is not None and hasattr(pipeline, "add_parser"):
        pipeline.add_parser(sub)
    return parser


# --------------------------------------------------------------------------------------------
# errors: one line that names the file, no traceback (``--debug`` shows it)

#: exit status of a configuration error (as argparse uses for bad arguments) and of an interrupt
EXIT_CONFIG, EXIT_INTERRUPTED = 2, 130


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full Python traceback instead of one line")


def _one_line(text: object, limit: int = 2000) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe_error(e: BaseException, prog: str = "connectome") -> tuple[int, str]:
    """The exit status and the one-line message for an error that reached the command line.

    Configuration errors (:class:`ConfigError`, the evaluation options' ``EvalConfigError``)
    exit 2; data and file errors (``ConnectomeError``, ``OSError``, ``ValueError``, ...) exit 1;
    an interrupt exits 130. The library's messages already name the file (and line); this only
    flattens them to one line.
    """
    from .evals.config import EvalConfigError

    if isinstance(e, KeyboardInterrupt):
        return EXIT_INTERRUPTED, (f"{prog}: interrupted; finished steps are kept, and running the same "
                                  "command again resumes the run where it stopped")
    if isinstance(e, (ConfigError, EvalConfigError)):
        return EXIT_CONFIG, f"{prog}: configuration error: {_one_line(e)}"
    if hasattr(e, "ename") and hasattr(e, "evalue"):  # papermill.PapermillExecutionError (pipeline)
        return 1, (f"{prog}: a stage notebook failed in cell [{getattr(e, 'exec_count', '?')}]: "
                   f"{e.ename}: {_one_line(e.evalue)} (its partial output is kept as *.failed.ipynb)")
    if isinstance(e, (OSError, ValueError, EOFError)) or type(e).__module__.startswith("connectome_lib"):
        return 1, f"{prog}: error: {_one_line(e)}"  # ConnectomeError, DataMissingError, DataFileError, ...
    return 1, (f"{prog}: error: {type(e).__name__}: {_one_line(e)} "
               f"(run `{prog} --debug ...` to see the traceback)")


def _show_warning_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"connectome: warning: {_one_line(message)}", file=sys.stderr if file is None else file)


def run_command(func, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Call ``func(args)``; turn an error into one line on stderr and an exit status.

    With ``args.debug`` the error is re-raised, so Python prints the traceback. Warnings are
    printed as one line each, too (``connectome: warning: ...``).
    """
    debug = bool(getattr(args, "debug", False))
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _show_warning_one_line
        try:
            return int(func(args) or 0)
        except SystemExit:
            raise
        except BaseException as e:  # noqa: BLE001 - every error becomes one line (or, --debug, a traceback)
            if debug:
                raise
            code, message = describe_error(e, parser.prog)
            sys.stdout.flush()
            parser.exit(code, message + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args.func, args, parser)


if __name__ == "__main__":
    sys.exit(main())
