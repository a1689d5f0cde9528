"""What every command line of the package shares: ``--debug``, and errors as one line + exit status.

An error that reaches a command line is printed as ONE line that names the file (no traceback;
``--debug`` shows it) and mapped to an exit status: configuration errors 2 (as argparse uses for
bad arguments), data and file errors 1, an interrupt 130. Used by :mod:`connectome_lib.cli` and
:mod:`connectome_lib.evals.cli`, which import it (and not each other), as are the folder flags
(``--runs-dir``, ``--cache-dir``, ``--results-dir``) and :func:`resolved_profile`, which resolves a
command's folders exactly as the notebooks do.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import TYPE_CHECKING

from .settings import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .config import ResolvedProfile

#: exit status of a configuration error (as argparse uses for bad arguments) and of an interrupt
EXIT_CONFIG, EXIT_INTERRUPTED = 2, 130


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full Python traceback instead of one line")


def one_line(text: object, limit: int = 2000) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe_error(e: BaseException, prog: str = "connectome") -> tuple[int, str]:
    """The exit status and the one-line message for an error that reached the command line.

    Configuration errors (:class:`~connectome_lib.settings.ConfigError`, and so the evaluation
    options' ``EvalConfigError``) exit 2; data and file errors (``ConnectomeError``, ``OSError``,
    ``ValueError``, ...) exit 1; an interrupt exits 130. The library's messages already name the
    file (and line); this only flattens them to one line.
    """
    if isinstance(e, KeyboardInterrupt):
        return EXIT_INTERRUPTED, (f"{prog}: interrupted; finished steps are kept, and running the same "
                                  "command again resumes the run where it stopped")
    if isinstance(e, ConfigError):
        return EXIT_CONFIG, f"{prog}: configuration error: {one_line(e)}"
    if hasattr(e, "ename") and hasattr(e, "evalue"):  # papermill.PapermillExecutionError (pipeline)
        return 1, (f"{prog}: a stage notebook failed in cell [{getattr(e, 'exec_count', '?')}]: "
                   f"{e.ename}: {one_line(e.evalue)} (its partial output is kept as *.failed.ipynb)")
    if isinstance(e, (OSError, ValueError, EOFError)) or type(e).__module__.startswith("connectome_lib"):
        return 1, f"{prog}: error: {one_line(e)}"  # ConnectomeError, DataMissingError, DataFileError, ...
    return 1, (f"{prog}: error: {type(e).__name__}: {one_line(e)} "
               f"(run `{prog} --debug ...` to see the traceback)")


def _show_warning_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"connectome: warning: {one_line(message)}", file=sys.stderr if file is None else file)


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


# --------------------------------------------------------------------------------------------
# folders


def add_folder_args(p: argparse.ArgumentParser, results: bool = False) -> None:
    """``--runs-dir`` and ``--cache-dir`` (and, with ``results``, ``--results-dir``): folder flags
    that beat the ``CONNECTOME_*_DIR`` environment variables, which beat the profile."""
    p.add_argument("--runs-dir", help="where run folders are written (default: $CONNECTOME_RUNS_DIR, else the "
                   "profile's runs_dir, 'runs' under the project root)")
    p.add_argument("--cache-dir", help="token files and trained tokenizers (default: $CONNECTOME_CACHE_DIR, else the "
                   "profile's data.cache_dir)")
    if results:
        p.add_argument("--results-dir",
                       help="where exported results go (default: $CONNECTOME_RESULTS_DIR, else results/)")


def folder_flag(args: argparse.Namespace, name: str) -> str | None:
    """A folder flag as an absolute path (a relative one is relative to the working directory)."""
    value = getattr(args, name, None)
    return os.path.abspath(os.path.expanduser(value)) if value else None


def resolved_profile(args: argparse.Namespace, profile=None) -> "ResolvedProfile":
    """The profile of ``--profile``/``--set`` (or ``profile``) with the folders the notebooks would
    use under the same environment (:func:`~connectome_lib.config.resolve_folders`)."""
    from .config import load_profile, resolve_folders

    overrides = list(getattr(args, "overrides", None) or [])
    if profile is None:
        profile = load_profile(args.profile, overrides)
    return resolve_folders(profile, runs_dir=folder_flag(args, "runs_dir"), cache_dir=folder_flag(args, "cache_dir"),
                           results_dir=folder_flag(args, "results_dir"), data_dir=folder_flag(args, "data_dir"),
                           overrides=overrides)
