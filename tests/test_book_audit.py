"""The book's HTML passes (connectome_lib.book_audit): pandas artefacts in tables, untraced numbers
in static prose. Tiny hand-written pages in the shape Sphinx/MyST-NB writes them; no browser."""

from __future__ import annotations

from html import escape
from pathlib import Path

import pytest

from connectome_lib import book_audit as ba


def page(body: str) -> str:
    """A page in the theme's shape: navigation, the article, a footer."""
    return ("<html><head><title>t 4.987</title></head><body>"
            "<nav class='bd-docs-nav'><a>1. Data 4.987</a></nav>"
            f"<main><article class='bd-article'>{body}</article></main>"
            "<footer>© Copyright 2025. 4.987</footer></body></html>")


def output(inner: str) -> str:
    """A notebook cell's output, as MyST-NB renders it."""
    return f"<div class='cell docutils container'><div class='cell_output docutils container'>{inner}</div></div>"


@pytest.fixture(scope="module")
def allowed() -> ba.Allowed:
    return ba.Allowed.from_numbers([0.2764, 10256, 20, 162, 0.2, 14042])


# ------------------------------------------------------------------------------ stale numbers


def test_planted_number_in_static_prose_is_flagged(allowed):
    found = ba.stale_number_findings(page("<p>In our run the final loss was 4.987 nats.</p>"), "p.html", allowed)
    assert [(f.kind, f.page, f.text) for f in found] == [("untraced-number", "p.html", "4.987")]
    assert "final loss was 4.987" in found[0].context
    msg = found[0].message()
    assert "p.html" in msg and "4.987" in msg and len(msg.splitlines()) <= 3


def test_number_in_a_cell_output_is_not_flagged(allowed):
    html = page(output("<div class='output text_html'><p>the final loss was 4.987</p>"
                       "<table class='dataframe'><tr><td>4.987</td></tr></table></div>")
                + "<p>Glued: <span class='pasted-text'>4.987</span>.</p>")
    assert ba.stale_number_findings(html, "p.html", allowed) == []


def test_number_traced_to_a_source_is_not_flagged(allowed, tmp_path):
    html = page("<p>The final loss was 4.987 nats; HellaSwag 0.2764, 10,256 words, prune 20 %.</p>")
    assert [f.text for f in ba.stale_number_findings(html, "p.html", allowed)] == ["4.987"]
    src = tmp_path / "PAPER.md"
    src.write_text("Validation loss 4.987 at the end.\n", encoding="utf-8")
    traced = ba.allowed_numbers([ba.Source("paper", src)], library=False)
    assert ba.stale_number_findings(page("<p>the final loss was 4.987</p>"), "p.html", traced) == []
    assert traced.missing == []


def test_printed_precision_percent_and_suffixes(allowed):
    def traces(text: str) -> bool:
        (n,) = ba.numbers_in(text)
        return allowed.traces(n)

    assert traces("0.28") and traces("0.276") and not traces("0.2765")  # 0.2764 at the printed precision
    assert traces("10,256") and traces("20 %") and traces("0.20") and traces("162M")
    assert traces("27.64 %")  # a fraction printed as a percentage
    assert traces("14k") and not traces("15k")
    assert not traces("4.987")


def test_exempt_numbers():
    html = page(
        "<h2><span class='section-number'>5.3. </span>Stage 977</h2>"  # a section number; 977: a heading's number
        "<p>Three seeds, 5-fold, layer 12, in 2024 "
        "<span class='bibtex-citation'>[Kotar, 2025; 777]</span>, "
        "<code class='docutils literal'><span class='pre'>lr=0.0037</span></code>, "
        "<span class='math notranslate nohighlight'>\\(x^{333}\\)</span>, "
        "GPT-2, bf16, B.1000, arXiv:2504.21047, v1.2.3, 0.1.5, Python 3.11, PyTorch ≥ 2.9, "
        "https://example.org/a/123, on 2025-12-04 at 03:26, "
        "<a class='reference internal' href='#f'><span class='std std-numref'>Figure 7.3</span></a>.</p>"
        "<div class='citation' role='doc-biblioentry'><p>K. Kotar. 2025. 11(45):e2105646118.</p></div>")
    found = ba.stale_number_findings(html, "p.html", ba.Allowed.from_numbers([]))
    assert [f.text for f in found] == ["977"]


def test_static_markdown_table_is_prose_with_its_row_as_context(allowed):
    html = page("<table class='table'><thead><tr><th>run</th><th>loss</th></tr></thead>"
                "<tbody><tr><td><p>the earlier profile</p></td><td><p>6.678</p></td></tr></tbody></table>")
    (f,) = ba.stale_number_findings(html, "r.html", allowed)
    assert f.text == "6.678" and "the earlier profile | 6.678" in f.context


def test_source_numbers_are_read_liberally():
    got = ba.source_numbers("10,256 words; prune 26.2 %; U = 210k; n_layer: 12; alpha 1e-30; (3.4445, -4.775)")
    assert {10256, 26.2, 210, 210000, 12, 1e-30, 3.4445, 4.775} <= got
    assert any(abs(v - 0.262) < 1e-12 for v in got)  # the percentage as a fraction


def test_missing_source_is_a_finding(tmp_path):
    (tmp_path / "index.html").write_text(page("<p>nothing</p>"), encoding="utf-8")
    allowed = ba.allowed_numbers([ba.Source("paper facts", tmp_path / "absent.md")], library=False)
    res = ba.audit_book(tmp_path, allowed)
    assert [f.kind for f in res["<sources>"]] == ["missing-source"] and res["index.html"] == []


def test_default_sources_exist_and_trace_the_paper():
    allowed = ba.allowed_numbers()
    assert allowed.missing == [], [str(s.path) for s in allowed.missing]
    for text in ("0.2764", "10,256", "14,042", "73.79 %", "0.25", "0.05", "50,304", "1,024"):
        (n,) = ba.numbers_in(text)
        assert allowed.traces(n), text


# ------------------------------------------------------------------------------ table artefacts


def frame(index: list[str], rows: list[list[str]], columns=("a", "b"), index_header: str = "") -> str:
    """A pandas ``to_html`` table."""
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(f"<tr><th>{i}</th>" + "".join(f"<td>{escape(v)}</td>" for v in r) + "</tr>"
                   for i, r in zip(index, rows))
    return (f"<table border='1' class='dataframe'><thead><tr style='text-align: right;'><th>{index_header}</th>"
            f"{head}</tr></thead><tbody>{body}</tbody></table>")


@pytest.mark.parametrize("text, kind", [
    ("NaN", "missing-value"), ("nan", "missing-value"), ("<NA>", "missing-value"),
    ("1.333333", "float-digits"), ("4.04112", "float-digits"), ("0.500000", "float-digits"),
    ("-0.107200", "float-digits"), ("1.234567e-05", "float-digits"),
    ("0.2764", None), ("4.048", None), ("0.0008", None), ("1.0000", None), ("578.0", None),  # 578.0: by column
    ("10256", None), ("better (+0.01)", None), ("", None),
])
def test_cell_artefact(text, kind):
    assert ba.cell_artefact(text) == kind


def test_significant_digits():
    texts = ("0.002764", "4.04112", "1.333333", "-0.10", "1.2e-05")
    assert [ba.significant_digits(t) for t in texts] == [4, 6, 7, 2, 2]


def kinds(html: str) -> list[str]:
    return [f.kind for f in ba.table_findings(page(output(html)), "t.html")]


def test_clean_table_passes():
    assert kinds(frame(["Connectome", "NoConnectome"], [["0.2764", "12"], ["0.2691", "3"]])) == []


def test_default_index_is_flagged_but_a_named_or_labelled_one_is_not():
    assert kinds(frame(["0", "1", "2"], [["x", "1"], ["y", "2"], ["z", "3"]])) == ["default-index"]
    assert kinds(frame(["0", "1"], [["x", "1"], ["y", "2"]], index_header="generation")) == []
    assert kinds(frame(["Connectome", "NoConnectome"], [["x", "1"], ["y", "2"]])) == []
    assert kinds(frame(["1", "2"], [["x", "1"], ["y", "2"]])) == []  # not pandas' default (starts at 1)


def test_integer_valued_float_column_is_flagged_a_rounded_zero_is_not():
    assert kinds(frame(["Connectome", "Random"], [["578.0", "0.5"], ["3738.0", "0.0"]])) == ["float-integer"]
    found = ba.table_findings(page(frame(["x", "y"], [["578.0", "0.5"], ["3738.0", "0.0"]])), "t.html")
    assert "'578.0'" in found[0].text and "columns 'a | b'" in found[0].context


def test_raw_floats_and_missing_values_are_one_finding_per_table_and_kind():
    html = frame(["Connectome", "Random"], [["1.333333", "NaN"], ["4.04112", "<NA>"]])
    found = ba.table_findings(page(html), "t.html")
    assert sorted(f.kind for f in found) == ["float-digits", "missing-value"]
    digits = next(f for f in found if f.kind == "float-digits")
    assert digits.text == "'1.333333', '4.04112'" and len(digits.message().splitlines()) <= 3


def test_audit_book_reads_every_page(tmp_path: Path):
    (tmp_path / "book").mkdir()
    (tmp_path / "_static").mkdir()
    (tmp_path / "index.html").write_text(page("<p>fine: 0.2764</p>"), encoding="utf-8")
    (tmp_path / "book" / "a.html").write_text(page("<p>loss 4.987</p>" + output(frame(["0", "1"], [["x", "1"],
                                              ["y", "2"]]))), encoding="utf-8")
    (tmp_path / "_static" / "skip.html").write_text(page("<p>9.999</p>"), encoding="utf-8")
    (tmp_path / "search.html").write_text(page("<p>9.999</p>"), encoding="utf-8")
    res = ba.audit_book(tmp_path, ba.Allowed.from_numbers([0.2764]))
    assert sorted(res) == ["book/a.html", "index.html"]
    assert res["index.html"] == []
    assert sorted(f.kind for f in res["book/a.html"]) == ["default-index", "untraced-number"]


# ------------------------------------------------------------------------------ launch buttons

COLAB = "https://colab.research.google.com/github/example/model-connectomes/blob/main/{}"
BINDER = "https://mybinder.org/v2/gh/example/model-connectomes/main?urlpath=tree/{}"


def launch_page(*targets: str) -> str:
    """A page whose header carries Colab and Binder links to ``targets``."""
    links = "".join(f'<a href="{COLAB.format(t)}">Colab</a><a href="{BINDER.format(t)}">Binder</a>' for t in targets)
    return f"<html><body><div class='header'>{links}</div><main><p>text</p></main></body></html>"


def test_launch_targets_reads_colab_and_binder_links():
    html = launch_page("notebooks/01%20data.ipynb") + '<a href="https://example.org/x.ipynb">other</a>'
    assert ba.launch_targets(html) == [("Colab", "notebooks/01 data.ipynb"), ("Binder", "notebooks/01 data.ipynb")]


def test_launch_buttons_must_open_the_pages_own_notebook(tmp_path: Path):
    (tmp_path / "notebooks").mkdir()
    for name in ("01_data", "02_outer"):
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text("{}", encoding="utf-8")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "results.md").write_text("# r", encoding="utf-8")
    pages = {
        "notebooks/01_data.html": launch_page("notebooks/01_data.ipynb"),    # right
        "notebooks/02_outer.html": launch_page("02_outer.ipynb"),            # wrong path_to_docs
        "book/results.html": launch_page("book/results.ipynb"),              # a Markdown page
    }
    found = ba.launch_findings(pages, tmp_path)
    assert {(f.kind, f.page) for f in found} == {("launch-target", "notebooks/02_outer.html"),
                                                 ("launch-target", "book/results.html")}
    assert all(len(f.message().splitlines()) <= 3 for f in found)
    # the page's own path but no such file in the sources: also wrong
    pages["notebooks/02_outer.html"] = launch_page("notebooks/02_outer.ipynb")
    (tmp_path / "notebooks" / "02_outer.ipynb").unlink()
    found = ba.launch_findings(pages, tmp_path)
    assert ("launch-target", "notebooks/02_outer.html") in {(f.kind, f.page) for f in found}


def test_a_notebook_page_without_the_buttons_the_others_have_is_flagged(tmp_path: Path):
    (tmp_path / "notebooks").mkdir()
    for name in ("01_data", "02_outer"):
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text("{}", encoding="utf-8")
    plain = page("<p>text</p>")
    pages = {"notebooks/01_data.html": launch_page("notebooks/01_data.ipynb"),
             "notebooks/02_outer.html": plain, "intro.html": plain}
    found = ba.launch_findings(pages, tmp_path)
    assert [(f.kind, f.page) for f in found] == [("launch-missing", "notebooks/02_outer.html")]
    # a book with no launch buttons at all (no public repository) is not at fault
    pages["notebooks/01_data.html"] = plain
    assert ba.launch_findings(pages, tmp_path) == []


def test_audit_book_runs_the_launch_pass_against_the_sources(tmp_path: Path):
    html_root = tmp_path / "_build" / "html"
    (html_root / "notebooks").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_data.ipynb").write_text("{}", encoding="utf-8")
    (html_root / "notebooks" / "01_data.html").write_text(launch_page("01_data.ipynb"), encoding="utf-8")
    res = ba.audit_book(html_root, ba.Allowed.from_numbers([]))
    texts = [f.text for f in res["notebooks/01_data.html"]]
    assert texts == ["Colab opens 01_data.ipynb", "Binder opens 01_data.ipynb"]
