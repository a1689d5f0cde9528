"""Where this project's public repository is, for the book's repository and launch buttons.

The book links to its source repository (the theme's repository and issues buttons) and offers
each notebook page on Colab and Binder. Those links need the repository's public address, which
a checkout knows only from its git remote. It is resolved, in order, from

1. ``repository.url`` in ``_config.yml`` (a maintainer who publishes the book writes it there),
2. the environment variable ``CONNECTOME_REPOSITORY_URL`` (a build elsewhere: a fork, CI),
3. the checkout's ``origin`` remote, when that is a public web address (``https://...`` or
   ``git@host:owner/name.git``); a local path, as a clone of a clone has, names no public page.

Without one the book is built without those buttons (and says so in the build log) rather than
with links to a page that does not exist. ``CONNECTOME_REPOSITORY_BRANCH`` names the branch the
links point at, else the checkout's current branch, else ``main``.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

URL_VAR = "CONNECTOME_REPOSITORY_URL"
BRANCH_VAR = "CONNECTOME_REPOSITORY_BRANCH"
DEFAULT_BRANCH = "main"

#: the hosted notebook services a launch button opens a notebook page on (sphinx-book-theme's keys)
LAUNCH_SERVICES = {"colab_url": "https://colab.research.google.com", "binderhub_url": "https://mybinder.org"}

_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>[^/].*)$")


@dataclass(frozen=True)
class Repository:
    """A public git repository: its web address (``https://host/owner/name``) and a branch."""

    url: str
    branch: str = DEFAULT_BRANCH
    source: str = ""

    @property
    def on_github(self) -> bool:
        """Colab opens notebooks from GitHub only (and the theme's issues button is GitHub's)."""
        return self.url.startswith("https://github.com/")

    def colab_url(self, path: str) -> str | None:
        """The address that opens a notebook of the repository on Colab (None off GitHub)."""
        if not self.on_github:
            return None
        return f"{LAUNCH_SERVICES['colab_url']}/github/{self.url.removeprefix('https://github.com/')}/blob/{self.branch}/{path.lstrip('/')}"


def web_url(remote: str) -> str | None:
    """The web address of a git remote, or None when the remote is not a public web address.

    ``git@github.com:owner/name.git``, ``ssh://git@github.com/owner/name`` and
    ``https://github.com/owner/name.git`` all give ``https://github.com/owner/name``; a local path
    (``/srv/git/project``, ``file://...``, ``../project``) gives None, and so does an address with
    credentials in it, which must never end up on a public page.
    """
    remote = remote.strip()
    if not remote or remote.startswith(("/", ".", "file:")) or os.path.isabs(remote):
        return None
    if remote.startswith(("https://", "http://", "ssh://", "git://")):
        rest = remote.split("://", 1)[1]
        userinfo, _, hostpath = rest.rpartition("@")
        if ":" in userinfo:  # user:password@host
            return None
        host, _, path = hostpath.partition("/")
        host = host.split(":", 1)[0]
    else:
        match = _SCP_LIKE.match(remote)
        if not match:
            return None
        host, path = match["host"], match["path"]
    path = path.strip("/").removesuffix(".git")
    if not host or "." not in host or path.count("/") < 1 or not all(path.split("/")):
        return None
    return f"https://{host}/{path}"


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def resolve(root: str | os.PathLike, configured: str | None = None,
            environ: Mapping[str, str] | None = None) -> Repository | None:
    """The public repository of the checkout at ``root``, or None when none is known.

    ``configured`` is ``repository.url`` of ``_config.yml``; see the module docstring for the
    order. A configured or environment address that is not a public web address is an error
    naming where it came from, not a silently missing button.
    """
    environ = os.environ if environ is None else environ
    root = Path(root)
    branch = environ.get(BRANCH_VAR) or None
    for given, where in ((configured, "_config.yml repository.url"), (environ.get(URL_VAR), URL_VAR)):
        if given:
            url = web_url(given)
            if url is None:
                raise ValueError(f"{where}: {given!r} is not a public web address of a repository "
                                 "(https://host/owner/name or git@host:owner/name.git)")
            return Repository(url, branch or _current_branch(root), where)
    remote = _git(root, "remote", "get-url", "origin")
    url = web_url(remote) if remote else None
    if url is None:
        return None
    return Repository(url, branch or _current_branch(root), "git remote origin")


def _current_branch(root: Path) -> str:
    # the checked-out branch (also before its first commit); none on a detached HEAD
    return _git(root, "symbolic-ref", "--short", "-q", "HEAD") or DEFAULT_BRANCH


def theme_options(repo: Repository) -> dict:
    """The ``html_theme_options`` of sphinx-book-theme that turn the buttons on for ``repo``.

    The book's sources sit at the repository root (``path_to_docs`` empty), so a page's launch
    link opens the very notebook the page was rendered from.
    """
    return {
        "repository_url": repo.url,
        "repository_branch": repo.branch,
        "path_to_docs": "",
        "use_repository_button": True,
        "use_issues_button": repo.on_github,
        "launch_buttons": {"notebook_interface": "classic",
                           "colab_url": LAUNCH_SERVICES["colab_url"] if repo.on_github else "",
                           "binderhub_url": LAUNCH_SERVICES["binderhub_url"]},
    }


def configured_url(root: str | os.PathLike) -> str | None:
    """``repository.url`` of the book's ``_config.yml`` at ``root`` (None when empty or absent)."""
    import yaml

    path = Path(root) / "_config.yml"
    if not path.is_file():
        return None
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    url = (config.get("repository") or {}).get("url")
    return str(url) if url else None


def of_book(root: str | os.PathLike, environ: Mapping[str, str] | None = None) -> Repository | None:
    """The repository the book at ``root`` links to: :func:`resolve` with its ``_config.yml``."""
    return resolve(root, configured=configured_url(root), environ=environ)


#: where the hosted runtimes find the data: a folder the user fills from the data card
HOSTED_DATA_DIR = "/content/drive/MyDrive/connectome-data"


def hosted_markdown(repo: Repository | None, notebook: str = "book/stages/03_development.ipynb") -> str:
    """What the book's launch buttons give a reader, as MyST Markdown for the Reproduce page.

    With no public repository known the page says so (the buttons are then absent) and names
    the three ways to give the build one. With one, it names the Colab link of a stage notebook
    and the three cells a Colab runtime needs before that notebook's own cells: the project,
    and the data directory (no data set ships with the project; the data card lists them).
    """
    if repo is None:
        return (
            "This copy of the book was built from a checkout that names no public repository, so its "
            "pages carry no repository, Colab or Binder buttons. A build gets them from `repository.url` "
            f"in `_config.yml`, from `${URL_VAR}`, or from a checkout whose `origin` remote is the "
            "repository's web address (`connectome_lib/repository.py`)."
        )
    lines = [
        f"Every notebook page links to this repository ({repo.url}, branch `{repo.branch}`, from "
        f"{repo.source}) and opens on Binder, which builds `environment.yml` with the project "
        "installed (a small CPU machine: meant for the `smoke` profile)."
    ]
    colab = repo.colab_url(notebook)
    if colab:
        lines += [
            "",
            f"The Colab button opens a page's notebook by itself (for example {colab}), so on a GPU "
            "runtime run these cells first, then set `profile = \"gpu\"` in the notebook's second "
            "parameters cell (papermill's *injected-parameters*, which overrides the defaults above it). A stage "
            "notebook reads the run folders of the stages before it, so run the stages in order, or "
            "the whole pipeline in one cell: `!connectome pipeline --profile gpu`.",
            "",
            "```ipython3",
            f"!git clone --depth 1 --branch {repo.branch} {repo.url}.git connectome && pip install -q -e connectome",
            "%cd connectome",
            "from google.colab import drive; drive.mount('/content/drive')",
            f"%env CONNECTOME_DATA_DIR={HOSTED_DATA_DIR}",
            "```",
            "",
            f"`{HOSTED_DATA_DIR}` must hold the data directory laid out as on the {{doc}}`data` page "
            "({ref}`reproduce-data` says how to rebuild it from the public sources). This project has "
            "not been run on Colab or Binder by its tests.",
        ]
    return "\n".join(lines)
