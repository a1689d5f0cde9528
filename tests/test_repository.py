"""The book's public repository (connectome_lib.repository) and the buttons it turns on
(book/_ext/companion_book.py): resolved from _config.yml, the environment or the git remote,
never from a local path, and never a link to a page that does not exist."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from connectome_lib import repository
from connectome_lib.repository import Repository

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("remote, url", [
    ("https://github.com/owner/name.git", "https://github.com/owner/name"),
    ("https://github.com/owner/name/", "https://github.com/owner/name"),
    ("git@github.com:owner/name.git", "https://github.com/owner/name"),
    ("ssh://git@github.com/owner/name", "https://github.com/owner/name"),
    ("ssh://git@gitlab.example.org:2222/group/sub/name.git", "https://gitlab.example.org/group/sub/name"),
    ("https://token@github.com/owner/name.git", "https://github.com/owner/name"),
])
def test_a_public_remote_gives_its_web_address(remote, url):
    assert repository.web_url(remote) == url


@pytest.mark.parametrize("remote", [
    "/srv/git/connectome", "../connectome", "./connectome", "file:///srv/git/connectome",
    "https://user:secret@github.com/owner/name.git",  # credentials never reach a page
    "https://github.com/owner", "localhost:repo", "", "   ",
])
def test_a_local_path_or_a_remote_with_credentials_names_no_public_page(remote):
    assert repository.web_url(remote) is None


def _git_checkout(path: Path, origin: str | None, branch: str = "work") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True)
    if origin is not None:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", origin], check=True)
    return path


def test_the_git_remote_and_branch_are_used_when_nothing_is_configured(tmp_path):
    root = _git_checkout(tmp_path / "c", "git@github.com:owner/name.git", branch="work")
    expected = Repository("https://github.com/owner/name", "work", "git remote origin")
    assert repository.resolve(root, environ={}) == expected


def test_a_clone_of_a_local_clone_has_no_repository(tmp_path):
    """CI clones main from a local path: its book must not link to a made-up page."""
    assert repository.resolve(_git_checkout(tmp_path / "c", str(tmp_path / "upstream")), environ={}) is None
    assert repository.resolve(_git_checkout(tmp_path / "d", None), environ={}) is None
    assert repository.resolve(tmp_path / "not-a-checkout", environ={}) is None


def test_config_beats_the_environment_which_beats_the_remote(tmp_path):
    root = _git_checkout(tmp_path / "c", "https://github.com/from/remote")
    env = {repository.URL_VAR: "https://github.com/from/env", repository.BRANCH_VAR: "pages"}
    from_env = Repository("https://github.com/from/env", "pages", repository.URL_VAR)
    assert repository.resolve(root, environ=env) == from_env
    configured = repository.resolve(root, configured="https://github.com/from/config", environ=env)
    assert configured.url == "https://github.com/from/config"


def test_a_configured_address_that_is_no_web_address_is_an_error_naming_where_it_came_from(tmp_path):
    with pytest.raises(ValueError, match=r"^_config.yml repository.url: '/srv/git/x' is not a public web address"):
        repository.resolve(tmp_path, configured="/srv/git/x", environ={})
    with pytest.raises(ValueError, match=repository.URL_VAR):
        repository.resolve(tmp_path, environ={repository.URL_VAR: "../x"})


def test_the_book_config_names_no_repository_so_a_fork_is_not_sent_to_another_one():
    assert repository.configured_url(ROOT) is None
    assert yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"] == ""


def test_theme_options_open_the_page_notebook_on_colab_only_from_github():
    gh = repository.theme_options(Repository("https://github.com/owner/name", "main"))
    assert gh["repository_url"] == "https://github.com/owner/name" and gh["path_to_docs"] == ""
    assert gh["use_repository_button"] and gh["use_issues_button"]
    assert gh["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert gh["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    gl = repository.theme_options(Repository("https://gitlab.com/owner/name", "main"))
    assert gl["launch_buttons"]["colab_url"] == "" and not gl["use_issues_button"]
    repo = Repository("https://github.com/owner/name", "dev")
    assert repo.colab_url("book/stages/01_data.ipynb") == (
        "https://colab.research.google.com/github/owner/name/blob/dev/book/stages/01_data.ipynb")
    assert Repository("https://gitlab.com/o/n").colab_url("x.ipynb") is None


def test_hosted_instructions_say_when_there_are_no_buttons_and_what_colab_needs():
    none = repository.hosted_markdown(None)
    assert "no repository, Colab or Binder buttons" in none and repository.URL_VAR in none
    text = repository.hosted_markdown(Repository("https://github.com/owner/name", "dev", "git remote origin"))
    assert "!git clone --depth 1 --branch dev https://github.com/owner/name.git connectome" in text
    assert "colab.research.google.com/github/owner/name/blob/dev/book/stages/" in text
    assert f"%env CONNECTOME_DATA_DIR={repository.HOSTED_DATA_DIR}" in text
    assert "!git clone" not in repository.hosted_markdown(Repository("https://gitlab.com/owner/name"))


def _extension():
    spec = importlib.util.spec_from_file_location("companion_book", ROOT / "book" / "_ext" / "companion_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_book_extension_turns_the_buttons_on_only_for_a_known_repository(tmp_path, monkeypatch):
    ext = _extension()
    monkeypatch.delenv(repository.URL_VAR, raising=False)
    monkeypatch.delenv(repository.BRANCH_VAR, raising=False)
    jb_options = {"repository_url": "", "use_repository_button": False, "launch_buttons": {"colab_url": ""}}

    unknown = SimpleNamespace(html_theme_options=dict(jb_options), html_context={})
    ext.repository_buttons(SimpleNamespace(srcdir=str(_git_checkout(tmp_path / "a", None))), unknown)
    assert unknown.html_theme_options == jb_options

    known = SimpleNamespace(html_theme_options=dict(jb_options), html_context={"default_mode": "light"})
    checkout = _git_checkout(tmp_path / "b", "git@github.com:o/n.git", "main")
    ext.repository_buttons(SimpleNamespace(srcdir=str(checkout)), known)
    assert known.html_theme_options["repository_url"] == "https://github.com/o/n"
    assert known.html_theme_options["launch_buttons"]["colab_url"]
    assert known.html_context == {"default_mode": "light"}

    from sphinx.errors import ExtensionError
    (tmp_path / "_config.yml").write_text("repository:\n  url: /srv/x\n", encoding="utf-8")
    bad = SimpleNamespace(html_theme_options={}, html_context={})
    with pytest.raises(ExtensionError, match="companion_book: _config.yml repository.url"):
        ext.repository_buttons(SimpleNamespace(srcdir=str(tmp_path)), bad)


def _requirement_name(spec: str) -> str:
    import re

    return re.split(r"[<>=!~\[;\s]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_installs_the_project_and_every_dependency_pyproject_names():
    """Binder builds environment.yml: the notebooks import connectome_lib there only if it is installed."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_requirement_name(d) for d in project["dependencies"]}
    for extra in ("book", "test"):
        wanted |= {_requirement_name(d) for d in project["optional-dependencies"].get(extra, [])}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = {_requirement_name(d) for d in env["dependencies"] if isinstance(d, str)}
    have = conda | {_requirement_name(d) for d in pip} | ({"torch"} if "pytorch" in conda else set())
    assert "-e ." in pip
    assert not wanted - have, f"environment.yml lacks {sorted(wanted - have)}"
