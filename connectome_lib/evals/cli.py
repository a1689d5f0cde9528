"""The ``evaluate`` command line: ``connectome evaluate ...`` or ``python -m connectome_lib.evals.cli``.

Use :func:`add_parser` to register the sub-command in another CLI's sub-parsers; the handler is
stored as ``func`` in the parsed namespace (``args.func(args)``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

from .. import registry
from ..cli_support import add_debug_flag, run_command
from ..settings import yaml_problem
from .config import ALL_TASKS, EvalConfig, EvalConfigError, apply_overrides


def task_help() -> str:
    """The tasks and their measures, from :mod:`connectome_lib.registry` (* = the paper's)."""
    import textwrap

    lines = []
    for t in registry.TASKS:
        name = t.name + ("*" if t.name in registry.PAPER_TASKS else "")
        measures = ", ".join(m.metric for m in t.measures)
        lines.append(f"  {name:16s} {t.title}" + (f": {measures}" if measures else ""))
        if t.options:
            lines.append(textwrap.fill(f"options: {', '.join(t.options)}", 98, initial_indent=" " * 21,
                                       subsequent_indent=" " * 30))
    return "\n".join(lines)


DESCRIPTION = f"""\
Evaluate language models on the paper's benchmarks and write tidy results.

PATH may be
  * a model folder (a transformers folder with config.json), e.g. runs/P/develop/connectome_s0/model
  * a training folder (develop/<init>_s<seed>/ with checkpoints/iter_XXXXXX/ and model/): every
    checkpoint is evaluated (learning curves) plus the final model; --set checkpoints=final for the
    final model only
  * with --run, a run root (runs/<profile>/): every training folder under develop/ is evaluated.
  * with --model PATH, any Hugging Face causal-LM folder (e.g. GPT-2 saved with save_pretrained),
    evaluated with the tokenizer saved in it (else the configured one), to put a known model
    beside ours.

Tasks (* = the paper's, evaluated by default) and the measures each reports; "options" are the
EvalConfig fields that shape its results:
{task_help()}
After an evaluation the command prints the headline metrics
({', '.join(sorted(registry.HEADLINE_METRICS))}); results.csv holds every one.

Results: rows model, init, label, seed, iteration, task, metric, value, n in results.csv and
results.json (default <run_root>/evals/); rows already there are skipped, so re-running the same
command resumes a stopped evaluation.

Options: every field of EvalConfig can be set with --set NAME=VALUE (repeatable; YAML values:
--set limit=20 --set tasks=[hellaswag,mmlu] --set mmlu_prompt=paper; an "evals." prefix is
accepted), or in a YAML file with --config (a mapping of fields, or one with an "evals:" section).
The shortcuts --tasks, --limit, --device, --batch-size override both.

Examples:
  python -m connectome_lib.evals.cli runs/tiny/develop/connectome_s0 --tasks hellaswag,blimp --limit 20
  python -m connectome_lib.evals.cli --run runs/tiny --set tasks=[futrell2018,tuckute2024]
"""


def field_help() -> str:
    cfg = EvalConfig()
    return "EvalConfig fields and defaults:\n" + "\n".join(f"  {k} = {v!r}" for k, v in cfg.to_dict().items())


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``evaluate`` sub-command on an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "evaluate", help="evaluate models (NLP, reading times, brain) into tidy results",
        description=DESCRIPTION, epilog=field_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure_parser(p)
    return p


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", help="model folder, training folder, or (with --run) run root; "
                   "with --profile and no PATH: the profile's run root (every inner-loop model)")
    p.add_argument("--run", action="store_true", help="PATH is a run root: evaluate every develop/* folder")
    p.add_argument("--profile", help="take the options from this profile's 'evals' section (and its data "
                   "directory, tokenizer and validation corpus, so the loss matches the training curves); "
                   "--config/--set/shortcuts still override")
    p.add_argument("--runs-dir", help="with --profile: where its run folders are (default: $CONNECTOME_RUNS_DIR, "
                   "else the profile's runs_dir), as for `connectome evolve`")
    p.add_argument("--cache-dir", help="with --profile: its token files and trained tokenizers (default: "
                   "$CONNECTOME_CACHE_DIR, else the profile's data.cache_dir)")
    p.add_argument("--config", help="YAML file with EvalConfig fields (or an 'evals:' section), or a named preset "
                   "(released: the settings for the paper's released checkpoints)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override one EvalConfig field (repeatable)")
    p.add_argument("--tasks", help=f"comma-separated tasks (known: {','.join(ALL_TASKS)})")
    p.add_argument("--limit", type=int, help="smoke subset: first N items (BLiMP: per paradigm)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=int, help="sequences per forward pass")
    p.add_argument("--results", help="results CSV path (JSON written beside it)")
    p.add_argument("--val-tokens", help="validation tokens for perplexity: .npy, or raw uint16 .bin")
    p.add_argument("--name", help="model name in the results (default: the folder name)")
    p.add_argument("--fresh", action="store_true", help="drop and recompute result rows computed with other "
                   "options or from another model, instead of stopping with an error")
    p.add_argument("--model", metavar="PATH", help="any Hugging Face causal-LM folder (e.g. a GPT-2 saved with "
                   "save_pretrained), instead of PATH; its own tokenizer is used when the folder has one")
    p.set_defaults(func=run_from_args)


def _profile(args: argparse.Namespace):
    """The ``--profile``, with the folders every command and notebook resolves (flags, environment)."""
    if not getattr(args, "profile", None):
        if getattr(args, "runs_dir", None) or getattr(args, "cache_dir", None):
            raise EvalConfigError("evaluate: --runs-dir and --cache-dir need --profile")
        return None
    from ..cli_support import resolved_profile
    from ..config import load_profile

    return resolved_profile(argparse.Namespace(runs_dir=args.runs_dir, cache_dir=args.cache_dir),
                            load_profile(args.profile)).profile


#: named evaluation settings: ``--config NAME`` reads ``connectome_lib/profiles/evals/NAME.yaml``
EVAL_PRESETS_DIR = Path(__file__).resolve().parent.parent / "profiles" / "evals"


def eval_presets() -> list[str]:
    return sorted(p.stem for p in EVAL_PRESETS_DIR.glob("*.yaml"))


def _read_config_file(path: str) -> dict:
    """The EvalConfig fields of a ``--config`` YAML file (a mapping, or one with an ``evals:``
    section), or of a named preset (:data:`EVAL_PRESETS_DIR`, e.g. ``released``)."""
    if not Path(path).is_file() and path in eval_presets():
        path = str(EVAL_PRESETS_DIR / f"{path}.yaml")
    elif not Path(path).is_file():
        raise EvalConfigError(f"--config {path}: no such file, and no preset of that name "
                              f"(presets: {', '.join(eval_presets()) or 'none'})")
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise EvalConfigError(f"--config {path}: YAML syntax error: {yaml_problem(e)}") from None
    section = loaded.get("evals", loaded) if isinstance(loaded, dict) else loaded
    if not isinstance(section, dict):
        raise EvalConfigError(f"--config {path} must be a mapping of EvalConfig fields, got {type(section).__name__}")
    return section


def build_config(args: argparse.Namespace, profile=None) -> EvalConfig:
    if profile is not None:
        from ..config import eval_config

        cfg = eval_config(profile)
    else:
        cfg = EvalConfig()
    if args.config:
        cfg = apply_overrides(cfg, _read_config_file(args.config))
    cfg = apply_overrides(cfg, args.overrides, prefix="evals.")
    for name in ("limit", "batch_size"):  # the shortcuts, named as typed
        value = getattr(args, name)
        if value is not None and value < 1:
            raise EvalConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks is not None else None
    if tasks is not None and not tasks:
        raise EvalConfigError(f"--tasks names no task; known: {','.join(ALL_TASKS)}")
    short = {"tasks": tasks, "limit": args.limit, "device": args.device, "batch_size": args.batch_size}
    return cfg.replace(**{k: v for k, v in short.items() if v is not None})


def load_val_tokens(path: str | None):
    """A loader (called on first use) for ``--val-tokens``: ``.npy``, or raw uint16 ``.bin``."""
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--val-tokens {p}: no such file")

    def load():
        from ..jsonl import DataFileError

        try:
            tokens = np.load(p) if p.suffix == ".npy" else np.fromfile(p, dtype=np.uint16)
        except (OSError, ValueError, EOFError) as e:
            raise DataFileError(f"validation tokens {p} could not be read ({' '.join(str(e).split())})") from e
        if tokens.ndim != 1 or tokens.size < 2:
            raise DataFileError(
                f"validation tokens {p} must be a 1-D array of at least 2 tokens, got shape {tokens.shape}"
            )
        return tokens

    return load


def run_from_args(args: argparse.Namespace) -> int:
    from .runner import evaluate, evaluate_run, expected_models

    if getattr(args, "model", None):
        if args.path or args.run:
            raise SystemExit("evaluate: give either PATH or --model PATH, not both (and no --run)")
        from ..released import evaluation_source

        folder, name = evaluation_source(args.model)  # a hub id (owner/name) is downloaded
        args.path, args.name = str(folder), args.name or name
    profile = _profile(args)
    cfg = build_config(args, profile)
    val = load_val_tokens(args.val_tokens)
    if profile is not None:
        if val is None:
            from ..data import load_corpus_tokens

            val = lambda: load_corpus_tokens("val", profile.data, progress=cfg.progress)  # noqa: E731
        if args.path is None:
            args.path, args.run = str(profile.run_root), True
    if args.path is None:
        raise EvalConfigError("evaluate: give a PATH, or --profile to evaluate that profile's run")
    if args.run:
        develop_root = Path(args.path) / "develop"
        if not develop_root.is_dir():  # nothing trained at all: an error, not an empty evaluation
            raise FileNotFoundError(f"no training folders under {develop_root}: run the inner loop first "
                                    "(connectome develop), or give the run root as PATH")
        expected = expected_models(profile) if profile is not None else None  # the profile's inits x seeds
        df = evaluate_run(args.path, cfg, val_tokens=val, results_path=args.results, expected=expected,
                          fresh=getattr(args, "fresh", False))
    else:
        df = evaluate(args.path, cfg, val_tokens=val, results_path=args.results, model_name=args.name,
                      fresh=getattr(args, "fresh", False))
    show = df[df["metric"].isin(registry.HEADLINE_METRICS)]
    print(show.to_string(index=False) if len(show) else "no rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="connectome-evaluate")
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = argv[:1] == ["--debug"]
    if debug:
        argv = argv[1:]
    if not argv or argv[0] != "evaluate":
        if argv[:1] in (["-h"], ["--help"]):
            argv = ["evaluate", "--help"]
        else:
            argv = ["evaluate", *argv]
    args = parser.parse_args(["--debug", *argv] if debug else argv)
    return run_command(args.func, args, parser)


if __name__ == "__main__":
    sys.exit(main())
