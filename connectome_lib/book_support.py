"""What the book build needs to know about the results it shows: where they are, whether they
come from the profile its stage pages ran with, and whether that profile has changed since.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .config import load_profile
from .fingerprint import flatten
from .paths import project_root

#: the profile the book shows when ``$CONNECTOME_BOOK_PROFILE`` is not set
DEFAULT_BOOK_PROFILE = "cpu"


def book_profile(profile: str | None = None) -> str:
    """``profile``, else ``$CONNECTOME_BOOK_PROFILE``, else :data:`DEFAULT_BOOK_PROFILE`."""
    return profile or os.environ.get("CONNECTOME_BOOK_PROFILE") or DEFAULT_BOOK_PROFILE


def book_results_dir(profile: str | None = None) -> Path:
    """The exported results the book shows: ``$CONNECTOME_RESULTS_DIR`` (default ``results/``)
    / ``$CONNECTOME_BOOK_PROFILE`` (default ``cpu``)."""
    root = Path(os.environ.get("CONNECTOME_RESULTS_DIR") or project_root() / "results")
    return root / book_profile(profile)


class ProfileMismatchError(RuntimeError):
    """The book's results come from another profile than its stage pages."""


def check_results_profile(book_stages_dir: str | Path, results_profile: str | None = None) -> str:
    """Fail when the results the book shows were not made by the profile its stage pages ran with.

    The stage pages (``book/stages/*.ipynb``) are executed by papermill, which records the
    ``profile`` parameter in each notebook's ``metadata.papermill.parameters``. The results page
    reads ``results/<CONNECTOME_BOOK_PROFILE>`` (default ``cpu``). Building the book with the
    gpu stage pages beside the cpu results would silently mix two runs, so this raises
    :class:`ProfileMismatchError` naming the notebooks that disagree (or that papermill did not
    execute). Returns the profile on success.
    """
    profile = book_profile(results_profile)
    notebooks = sorted(Path(book_stages_dir).glob("*.ipynb"))
    if not notebooks:
        raise ProfileMismatchError(f"{book_stages_dir}: no executed stage notebooks to check the profile against")
    found: dict[str, str] = {}
    for nb in notebooks:
        try:
            meta = json.loads(nb.read_text(encoding="utf-8")).get("metadata", {})
        except (OSError, json.JSONDecodeError) as err:
            raise ProfileMismatchError(f"{nb}: cannot read the notebook ({err})") from err
        if (meta.get("connectome") or {}).get("placeholder"):
            continue  # a stage not yet run for these results, saying so on its page
        params = (meta.get("papermill") or {}).get("parameters") or {}
        found[nb.name] = str(params.get("profile", "<not executed by papermill>"))
    wrong = {name: p for name, p in found.items() if p != profile}
    if wrong:
        listed = ", ".join(f"{name} ({p})" for name, p in wrong.items())
        raise ProfileMismatchError(
            f"the results shown are from the '{profile}' profile but these stage pages in {book_stages_dir} "
            f"were executed with another: {listed}; set CONNECTOME_BOOK_PROFILE or re-run the pipeline"
        )
    return profile


def profile_drift(recorded: dict, profile: str) -> list[str]:
    """Dotted keys whose value in a run's recorded configuration (``provenance.json``'s
    ``config``) differs from the profile as it is defined now: non-empty means the results come
    from an earlier version of the profile and must be labelled so. Locations (data/cache/runs
    folders) are not settings and are ignored."""
    try:
        current = load_profile(profile).to_dict()
    except Exception:  # a profile that no longer exists: everything differs
        return ["(profile no longer defined)"]
    ignore = {"runs_dir", "data.data_dir", "data.cache_dir"}
    a, b = flatten(recorded), flatten(current)
    return sorted(k for k in set(a) | set(b) if k not in ignore and a.get(k) != b.get(k))


def setup_page() -> None:
    """What every generated page of the book (Findings, intro, Reproduce) does first, as the
    stage notebooks do in :func:`connectome_lib.notebook.setup`: the figures' theme and the
    tables for people (:func:`connectome_lib.tables.register`)."""
    from . import tables
    from .plots import set_theme

    set_theme()
    tables.register()
