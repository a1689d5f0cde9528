"""Sphinx hooks of the companion book (registered in _config.yml, sphinx.local_extensions).

1. The build fails when the results the book shows (``results/$CONNECTOME_BOOK_PROFILE``,
   default ``cpu``) come from another profile than the one the stage pages in ``book/stages``
   were executed with (see :func:`connectome_lib.book_support.check_results_profile`), instead of
   silently mixing two runs on one site.
2. Scripts that two extensions both add to a page (sphinx-thebe's ``const THEBE_JS_URL``
   config under Sphinx 7 is added twice, a JavaScript error on every page) are kept once.
3. The repository, issues and launch (Colab, Binder) buttons are on when the book knows its
   public repository (:func:`connectome_lib.repository.resolve`: ``repository.url``, else
   ``$CONNECTOME_REPOSITORY_URL``, else the checkout's ``origin`` remote) and off, with one line
   in the build log, when it does not: a button to a page that does not exist helps nobody.
   Launch buttons are kept on the pages rendered from ``.ipynb`` files only.
4. The bibliography's labels match the author-year citations in the text: the pybtex style
   ``authoryear`` (``bibtex_default_style``) labels an entry "Kotar and Tuckute, 2025" instead
   of the "alpha" style's "[KT25]", and sorts by author, year and title.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.errors import ExtensionError


def check_profile(app) -> None:
    from connectome_lib.book_support import ProfileMismatchError, check_results_profile

    stages = Path(app.srcdir) / "book" / "stages"
    try:
        profile = check_results_profile(stages)
    except ProfileMismatchError as err:
        raise ExtensionError(f"companion_book: {err}") from err
    app.config.html_context = {**(app.config.html_context or {}), "results_profile": profile}


def repository_buttons(app, config) -> None:
    from sphinx.util import logging

    from connectome_lib import repository

    try:  # the same reading of _config.yml as the Reproduce page's (repository.of_book)
        repo = repository.of_book(app.srcdir)
    except ValueError as err:
        raise ExtensionError(f"companion_book: {err}") from err
    if repo is None:
        logging.getLogger(__name__).info(
            "companion_book: no public repository known (repository.url in _config.yml, "
            f"${repository.URL_VAR} or a web address as git remote origin): no repository or launch buttons")
        return
    config.html_theme_options = {**(config.html_theme_options or {}), **repository.theme_options(repo)}


def launch_only_notebook_files(app, pagename, templatename, context, doctree) -> None:
    """No launch buttons on pages written as MyST Markdown (results.md, reproduce.md): the theme
    links them as ``.md`` files, which Colab cannot open and Binder opens as text."""
    if Path(app.env.doc2path(pagename)).suffix == ".ipynb":
        return
    buttons = context.get("header_buttons")
    if buttons:
        context["header_buttons"] = [b for b in buttons if b.get("label") != "launch-buttons"]


def _script_key(js) -> tuple:
    attributes = getattr(js, "attributes", {}) or {}
    # a script added with filename None and the same script re-added with '' are one script
    return (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def _register_authoryear_style() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabelStyle(BaseLabelStyle):
        """'Zador, 2019', 'Kotar and Tuckute, 2025', 'Frankle et al., 2020'; 'a', 'b' on clashes."""

        def format_labels(self, sorted_entries):
            labels = []
            for entry in sorted_entries:
                persons = entry.persons.get("author") or entry.persons.get("editor") or []
                last = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in persons]
                if not last:
                    names = entry.fields.get("title", entry.key).split(":")[0]
                elif len(last) == 1:
                    names = last[0]
                elif len(last) == 2:
                    names = f"{last[0]} and {last[1]}"
                else:
                    names = f"{last[0]} et al."
                labels.append(f"{names}, {entry.fields.get('year', 'n.d.')}")
            counts = {label: labels.count(label) for label in labels}
            seen: dict[str, int] = {}
            for label in labels:
                if counts[label] > 1:
                    seen[label] = seen.get(label, 0) + 1
                    yield f"{label}{chr(ord('a') + seen[label] - 1)}"
                else:
                    yield label

    class AuthorYearStyle(UnsrtStyle):
        default_label_style = "authoryear"
        default_sorting_style = "author_year_title"

    register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle, force=True)
    register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle, force=True)


def setup(app):
    _register_authoryear_style()
    app.connect("config-inited", repository_buttons)
    app.connect("builder-inited", check_profile)
    app.connect("html-page-context", launch_only_notebook_files, priority=600)  # after the theme's (501)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
