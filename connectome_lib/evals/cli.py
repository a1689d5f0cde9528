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

from .config import ALL_TASKS, EvalConfig, EvalConfigError, apply_overrides

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

Tasks: {', '.join(ALL_TASKS)}.
  perplexity      validation loss and exp(loss), non-overlapping windows of the context length
  hellaswag       HellaSwag validation (10,042): acc, acc_norm_chars (lm-eval-harness),
                  acc_norm_tokens (official script); acc_norm = the one hellaswag_norm picks
  mmlu            MMLU test (14,042), zero-shot; mmlu_prompt=harness (default) or paper
  blimp           BLiMP, 67 paradigms; sentence log-likelihood after <|endoftext|>
  futrell2018     word surprisal (bits) vs. Natural Stories mean reading times (Pearson r)
  tuckute2024     last-token hidden state per layer -> ridge CV -> fMRI of lang_LH_netw
  language_units  top 1 % / 10 % language-selective units (generated localizer) -> ridge CV
  baselines       untrained same-architecture model; word length/frequency; sentence length

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
    p.add_argument("--config", help="YAML file with EvalConfig fields (or an 'evals:' section)")
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
    if not getattr(args, "profile", None):
        return None
    from ..config import load_profile

    return load_profile(args.profile)


def _read_config_file(path: str) -> dict:
    """The EvalConfig fields of a ``--config`` YAML file (a mapping, or one with an ``evals:`` section)."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise EvalConfigError(f"--config {path}: YAML syntax error: {getattr(e, 'problem', None) or e}{where}") from None
    section = loaded.get("evals", loaded) if isinstance(loaded, dict) else loaded
    if not isinstance(section, dict):
        raise EvalConfigError(f"--config {path} must be a mapping of EvalConfig fields, got {type(section).__name__}")
    return section


def build_config(args: argparse.Namespace, profile=None) -> EvalConfig:
    values = {}
    if profile is not None:
        from ..tokenizer import tokenizer_source

        values = {**profile.evals.to_dict(), "data_dir": profile.data.data_dir,
                  "tokenizer": tokenizer_source(profile.data, progress=False)}
    if args.config:
        values = {**values, **_read_config_file(args.config)}
    cfg = apply_overrides(EvalConfig.from_dict(values), args.overrides, prefix="evals.")
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
        from .io import DataFileError

        try:
            tokens = np.load(p) if p.suffix == ".npy" else np.fromfile(p, dtype=np.uint16)
        except (OSError, ValueError, EOFError) as e:
            raise DataFileError(f"validation tokens {p} could not be read ({' '.join(str(e).split())})") from e
        if tokens.ndim != 1 or tokens.size < 2:
            raise DataFileError(f"validation tokens {p} must be a 1-D array of at least 2 tokens, got shape {tokens.shape}")
        return tokens

    return load


def run_from_args(args: argparse.Namespace) -> int:
    from .runner import evaluate, evaluate_run, expected_models

    if getattr(args, "model", None):
        if args.path or args.run:
            raise SystemExit("evaluate: give either PATH or --model PATH, not both (and no --run)")
        args.path = args.model
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
    main_metrics = {"loss", "acc", "acc_norm", "r", "r_best", "r_top1pct", "r_top10pct"}
    show = df[df["metric"].isin(main_metrics)]
    print(show.to_string(index=False) if len(show) else "no rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..cli import add_debug_flag, run_command

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
