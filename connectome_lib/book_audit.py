"""Checks of the built book's HTML that need no browser (``scripts/check_book.py`` runs them).

Two passes over each page's article (``article.bd-article``; the whole ``<body>`` when there is
none), both pure functions of the page's HTML text so that they are unit-testable:

**Raw pandas artefacts in tables** (:func:`table_findings`): every ``<table>`` (notebook output
``table.dataframe`` and Markdown tables alike) fails on a cell that reads ``NaN``/``nan``/``<NA>``
/``NaT``; an integer-valued float (``578.0``: a count that went through a float column); a bare
float with more than :data:`MAX_SIGNIFICANT` significant digits (``1.333333``: an unformatted
column); and a displayed pandas default index (a first column without a header reading
0, 1, 2, ...). A reader sees these as noise, and each one means a table was not formatted.

**Hand-typed numbers in static prose** (:func:`stale_number_findings`): numbers in generated
output (notebook cell outputs ``div.cell_output``/``.output``, glued values ``span.pasted-text``)
are computed from the results by construction and exempt. Every other number in the article
(paragraphs, list items, headings, admonitions, captions, Markdown tables) must be traceable to
a source (:func:`default_sources`, :func:`library_numbers`): the paper facts file
``shared/PAPER.md``, the data card ``shared/data/README.md``, the profile YAMLs
``connectome_lib/profiles/**/*.yaml``, the values of :mod:`connectome_lib.paper_numbers`, the
chance levels of :mod:`connectome_lib.registry`, the numeric defaults of the configuration
dataclasses (:data:`CONFIG_CLASSES`: the paper's configuration, the evaluation and test options)
and of the library calls the code runs with their defaults (:data:`CALL_DEFAULTS`). A
prose number traces when some source number equals it at the printed precision (``0.28``
matches 0.2764; ``20 %`` matches 0.2 or 20; ``10,256`` is 10256; ``100M`` is 100 or 1e8). A number
that traces to nothing was typed by hand and goes stale when the run changes: the page should
show it from a result file (a cell output or ``{glue}``), or word the claim without it.

A third pass reads the whole page, header included: **launch buttons** (:func:`launch_findings`)
must open the page's own notebook (``<page>.ipynb``, a file of the book's sources), and when
some pages have them every notebook page has them.

Not checked (exempt by construction): code and literals, maths, citations and the bibliography,
section/figure/table numbers, URLs, arXiv ids, dates and times, version numbers (``0.1.5``),
numbers glued to letters (``GPT-2``, ``bf16``, ``B.1000``), years (integers 1900-2099) and small
integers 0-12. The last two are a known limitation: "3 seeds" about a run is a run number that
can go stale, but counts like "two", "5-fold" or "layer 3" are too common to trace, and a run's
seed count is not in any source; likewise a hand-typed year-like count (2000 iterations) passes.
Tracing is by value, not by meaning: a number with few digits can trace by coincidence to an
unrelated source number (about a third of the two-decimal numbers in [0, 1) and half of the
whole percentages do; under 1 % of the four-decimal ones), so the check catches hand-typed
numbers that match nothing, not every wrong one.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

# ------------------------------------------------------------------------------ a minimal DOM

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr", "param"}


@dataclass(eq=False)
class Node:
    """An element of a parsed page: its tag, attributes, children (elements and text) and parent."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = None

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> Iterator[Node]:
        """This element and every element below it, in document order."""
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str) -> list[Node]:
        return [n for n in self.iter() if n.tag == tag]

    def text(self) -> str:
        """The text below this element, whitespace collapsed."""
        parts: list[str] = []

        def walk(n: Node) -> None:
            for c in n.children:
                if isinstance(c, str):
                    parts.append(c)
                else:
                    walk(c)

        walk(self)
        return " ".join("".join(parts).split())


class _TreeBuilder(HTMLParser):
    """Builds :class:`Node` trees with the standard library's parser (no bs4 dependency).
    A stray end tag closes up to its matching open element, or is ignored."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.stack[-1])
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}, parent=self.stack[-1]))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse_html(html: str) -> Node:
    """The page as a :class:`Node` tree (its root is a ``#document`` node)."""
    b = _TreeBuilder()
    b.feed(html)
    b.close()
    return b.root


def article(root: Node) -> Node:
    """The page's article (``article.bd-article``, the theme's text column), else ``<body>``:
    navigation, sidebars and the footer are not the page's content."""
    for n in root.iter():
        if n.tag == "article" and "bd-article" in n.classes:
            return n
    bodies = root.find_all("body")
    return bodies[0] if bodies else root


# ------------------------------------------------------------------------------ findings


@dataclass(frozen=True)
class Finding:
    """One problem on one page: its ``kind`` (see :data:`KINDS`), the offending ``text`` and the
    text around it."""

    kind: str
    page: str
    text: str
    context: str = ""

    def message(self) -> str:
        """At most three lines: page and kind, the text, its context."""
        text = repr(self.text) if self.kind in ("untraced-number", "missing-source") else self.text
        lines = [f"{self.page}: {KINDS.get(self.kind, self.kind)}: {text}"]
        if self.context and self.context != self.text:
            lines.append(f"    in: {_clip(self.context, 110)}")
        return "\n".join(lines)


#: the kinds of finding, in words
KINDS = {
    "missing-value": "missing value shown in a table (NaN/<NA>)",
    "float-integer": "integer shown as a float in a table",
    "float-digits": f"unrounded float in a table (more than {4} significant digits)",
    "default-index": "pandas default index (0, 1, 2, ...) shown as a table's first column",
    "untraced-number": "number in static prose traces to no source (hand-typed? show it from a result)",
    "missing-source": "a source of the stale-number check is missing",
    "launch-target": "launch button opens another file than the page's own notebook",
    "launch-missing": "notebook page without the launch buttons the other pages have",
}


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ------------------------------------------------------------------------------ table artefacts

#: a bare float with more digits than this is an unformatted column
MAX_SIGNIFICANT = 4
_MISSING = {"nan", "<na>", "nat"}
_FLOAT = re.compile(r"^[-−+]?(\d*)\.(\d+)(?:[eE][-+−]?\d+)?$")
_INT_FLOAT = re.compile(r"^[-−+]?\d+\.0+$")


def significant_digits(text: str) -> int:
    """Significant digits of a printed float (``"0.002764"`` -> 4, ``"4.04112"`` -> 6):
    all digits of the mantissa after the leading zeros."""
    mantissa = re.split(r"[eE]", text.strip().lstrip("-−+"))[0]
    return len(mantissa.replace(".", "").lstrip("0"))


def cell_artefact(text: str) -> str | None:
    """The kind of artefact one table cell shows by itself (a :data:`KINDS` key), or None:
    a missing value, or a bare float with more than :data:`MAX_SIGNIFICANT` significant digits
    (trailing zeros count: ``0.500000`` is pandas' unformatted 0.5). Integer-valued floats
    (``1.0000``, ``578.0``) are judged by column (:func:`integer_float_lines`): ``0.0`` among
    ``0.5`` and ``1.2`` is a rounded float, ``578.0`` among ``12.0`` and ``3.0`` a count."""
    t = " ".join(text.split())
    if t.lower() in _MISSING:
        return "missing-value"
    if _FLOAT.match(t) and not _INT_FLOAT.match(t) and significant_digits(t) > MAX_SIGNIFICANT:
        return "float-digits"
    return None


def _ancestors(node: Node, stop: Node | None = None) -> Iterator[Node]:
    p = node.parent
    while p is not None and p is not stop:
        yield p
        p = p.parent


def _rows(table: Node, section: str) -> list[list[Node]]:
    """The cell rows (``th``/``td``) of a table's ``thead``, or of its body (every row outside
    ``thead``) for ``section="tbody"``."""
    rows = []
    for tr in table.find_all("tr"):
        in_head = any(p.tag == "thead" for p in _ancestors(tr, stop=table))
        if in_head == (section == "thead"):
            rows.append([c for c in tr.children if isinstance(c, Node) and c.tag in ("th", "td")])
    return rows


def has_default_index(table: Node) -> bool:
    """Whether the table's first column is a pandas default index: no header over it (every
    header row's first cell empty) and the body rows' first cells read 0, 1, 2, ... in order."""
    head, body = _rows(table, "thead"), _rows(table, "tbody")
    if not body or any(not r or r[0].text() for r in head):
        return False
    return [r[0].text() if r else None for r in body] == [str(i) for i in range(len(body))]


def integer_float_lines(table: Node) -> list[str]:
    """Cells of the body columns and rows whose every value is an integer-valued float
    (``578.0``, ``2.00``): pandas' signature of integers that went through a float column (a
    NaN in the column, a transposed frame). One example cell per such column or row."""
    body = [[c.text() for c in r] for r in _rows(table, "tbody")]
    width = max((len(r) for r in body), default=0)
    lines = [[r[j] for r in body if len(r) == width] for j in range(width)] + body
    out = []
    for line in lines:
        values = [t for t in line if t and t.lower() not in _MISSING]
        if values and all(_INT_FLOAT.match(t) for t in values):
            out.append(values[0])
    return out


def _table_name(table: Node) -> str:
    """A table in words for messages: its caption, else its widest header row."""
    captions = table.find_all("caption")
    if captions and captions[0].text():
        return f"table {_clip(captions[0].text(), 60)!r}"
    head = max(_rows(table, "thead"), key=lambda r: sum(bool(c.text()) for c in r), default=[])
    return f"table with columns {_clip(' | '.join(c.text() for c in head if c.text()), 70)!r}"


def _examples(texts: list[str], n: int = 3) -> str:
    unique = list(dict.fromkeys(texts))
    shown = ", ".join(repr(t) for t in unique[:n])
    return shown + (f" and {len(unique) - n} more" if len(unique) > n else "")


def table_findings(html: str, page: str) -> list[Finding]:
    """Raw pandas artefacts in every table of the page's article (module docstring): one
    finding per table and kind, with examples of the offending cells."""
    out: list[Finding] = []
    for table in article(parse_html(html)).find_all("table"):
        where = _table_name(table)
        if has_default_index(table):
            out.append(Finding("default-index", page, "0, 1, 2, ...", where))
        cells: dict[str, list[str]] = {}
        for cell in table.iter():
            if cell.tag in ("td", "th") and (kind := cell_artefact(cell.text())):
                cells.setdefault(kind, []).append(cell.text())
        if ints := integer_float_lines(table):
            cells["float-integer"] = ints
        out += [Finding(kind, page, _examples(texts), where) for kind, texts in sorted(cells.items())]
    return out


# ------------------------------------------------------------------------------ numbers in prose

#: elements whose text is not static prose: generated output, code, maths, citations, numbering
_SKIP_TAGS = {"code", "pre", "tt", "kbd", "samp", "script", "style", "math", "svg", "mjx-container",
              "noscript", "nav", "footer", "button", "form", "textarea", "select", "head", "title"}
_SKIP_CLASSES = {"cell_output", "output", "cell_input", "highlight", "math", "MathJax", "pasted-text",
                 "pasted-inline", "section-number", "caption-number", "std-numref", "bibtex-citation",
                 "citation", "footnote-reference", "headerlink", "literal", "pre", "toctree-wrapper",
                 "prev-next-area", "prev-next-footer"}
#: elements that make a block of prose (the unit of a finding's context)
_BLOCK_TAGS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "td", "th", "figcaption",
               "caption", "blockquote", "div", "section", "article", "body", "table", "tr", "ul", "ol",
               "dl", "figure", "aside", "details", "summary"}


def _skipped(node: Node) -> bool:
    return (node.tag in _SKIP_TAGS or bool(node.classes & _SKIP_CLASSES)
            or node.attrs.get("role") == "doc-biblioentry")


@dataclass(frozen=True)
class Block:
    """A block of static prose (paragraph, list item, heading, table cell, caption) with every
    exempt element replaced by a space, and its context for messages (a cell's whole row)."""

    text: str
    context: str


def static_blocks(html: str) -> list[Block]:
    """The static prose of the page's article, block by block (see :class:`Block`)."""
    blocks: list[Block] = []
    buf: list[str] = []

    def flush(context: str = "") -> None:
        text = " ".join("".join(buf).split())
        if text:
            blocks.append(Block(text, context or text))
        buf.clear()

    def walk(n: Node, row: str) -> None:
        for c in n.children:
            if isinstance(c, str):
                buf.append(c)
            elif _skipped(c):
                buf.append(" ")
            elif c.tag in _BLOCK_TAGS:
                flush(row)
                inner = row
                if c.tag in ("td", "th") and c.parent is not None:
                    inner = " | ".join(x.text() for x in c.parent.children if isinstance(x, Node))
                walk(c, inner)
                flush(inner)
            else:
                walk(c, row)

    walk(article(parse_html(html)), "")
    flush()
    return blocks


@dataclass(frozen=True)
class Number:
    """A number as printed: its text, value, the half-unit of its last printed digit (``tol``),
    whether a ``%`` follows and the multiplier of a ``k``/``M``/``B`` suffix (1 without)."""

    text: str
    value: float
    tol: float
    percent: bool = False
    scale: float = 1.0
    start: int = 0

    @property
    def exempt(self) -> bool:
        """Small integers (0-12) and years (1900-2099) are not traced (module docstring)."""
        if self.tol != 0.5 or self.percent or self.scale != 1 or "," in self.text:
            return False
        return self.value <= 12 or 1900 <= self.value <= 2099


_SCALES = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9}
_PROSE_NUMBER = re.compile(
    r"(?<![\w.,/#@$\\])(?<![A-Za-z_][-‑])"  # not part of an identifier (GPT-2, bf16, B.1000)
    r"(?P<body>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?(?P<exp>[eE][-+−]?\d+)?"
    r"(?!\.\d|,\d)"  # not a version (0.1.5)
    r"(?P<suffix>[ \u00a0\u202f]?%|[kKMB](?![A-Za-z])|st\b|nd\b|rd\b|th\b)?"
    r"(?![A-Za-z_\d])"  # nor glued to letters (2x64, 3D)
)
#: text that holds digits but no quantity: URLs, arXiv ids and DOIs, dates and times, versions
_NOT_QUANTITIES = re.compile(
    r"https?://\S+|\b[\w-]+(?:\.[\w-]+)+/\S*"
    r"|(?i:arxiv):?\s?\d{4}\.\d{4,5}(?:v\d+)?|\bdoi:\S+"
    r"|\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?|\b\d{1,2}:\d{2}(?::\d{2})?\b"
    r"|(?i:\b(?:python|pytorch|torch|transformers|cuda|version|release)\s*[≥>=<≤~^]*\s*\d+(?:\.\d+)+)"
)


def numbers_in(text: str) -> list[Number]:
    """The numbers of a piece of prose (see :data:`_PROSE_NUMBER` for what counts as one)."""
    text = _NOT_QUANTITIES.sub(lambda m: " " * len(m.group()), text)
    out = []
    for m in _PROSE_NUMBER.finditer(text):
        frac, exp, suffix = m.group("frac") or "", m.group("exp") or "", (m.group("suffix") or "").strip()
        value = float((m.group("body").replace(",", "") + frac + exp).replace("−", "-"))
        decimals = len(frac) - 1 if frac else 0
        power = int(exp[1:].replace("−", "-")) if exp else 0
        out.append(Number(m.group().strip(), value, 0.5 * 10.0 ** (power - decimals), percent=suffix == "%",
                          scale=_SCALES.get(suffix, 1.0), start=m.start()))
    return out


_SOURCE_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?(?P<suffix>[ \u00a0\u202f]?%|[kKMB](?![A-Za-z]))?")


def source_numbers(text: str) -> set[float]:
    """Every number of a source text, read liberally (inside identifiers too): ``10,256`` counts
    as 10256 and as 10 and 256 (a list without spaces), ``26.2 %`` as 26.2 and 0.262, ``210k``
    as 210 and 210000."""
    out: set[float] = set()
    for m in _SOURCE_NUMBER.finditer(text):
        suffix = (m.group("suffix") or "").strip()
        tok = m.group()[: len(m.group()) - len(m.group("suffix") or "")].rstrip(",")
        pieces = [tok.replace(",", "")] + (tok.split(",") if "," in tok else [])
        for p in pieces:
            try:
                v = float(p)
            except ValueError:
                continue
            out.add(v)
            if suffix == "%":
                out.add(v / 100)
            elif suffix:
                out.add(v * _SCALES[suffix])
    return out


@dataclass(frozen=True)
class Source:
    """A file whose numbers prose may quote: a label for messages and its path."""

    label: str
    path: Path


def default_sources() -> list[Source]:
    """The sources of :func:`stale_number_findings` (module docstring). ``shared/`` is found as
    the project finds its data (:func:`connectome_lib.paths.resolve_data_dir`; ``PAPER.md``
    sits next to ``data/``), falling back to ``../shared`` beside the checkout."""
    from .paths import _PROJECT_ROOT, resolve_data_dir

    data = resolve_data_dir()
    paper = data.parent / "PAPER.md"
    if not paper.exists():
        paper = _PROJECT_ROOT.parent / "shared" / "PAPER.md"
    profiles = sorted((_PROJECT_ROOT / "connectome_lib" / "profiles").rglob("*.yaml"))
    return [Source("paper facts (shared/PAPER.md)", paper), Source("data card (shared/data/README.md)",
            data / "README.md"), *(Source(f"profile {p.name}", p) for p in profiles)]


#: the configuration dataclasses whose numeric defaults prose may quote: the paper's
#: configuration (:mod:`connectome_lib.config`: its defaults are the paper's), the evaluation
#: options and the statistical tests' options (resamples, level, alpha)
CONFIG_CLASSES = ("connectome_lib.config:ModelSize", "connectome_lib.config:DataConfig",
                  "connectome_lib.config:TrainConfig", "connectome_lib.config:EvolveConfig",
                  "connectome_lib.config:DevelopConfig", "connectome_lib.config:AblationConfig",
                  "connectome_lib.evals.config:EvalConfig", "connectome_lib.stats:StatsConfig")


def _numbers_of(value) -> Iterator[float]:
    """The numbers in a default value (lists, tuples and dicts searched; booleans are not numbers)."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _numbers_of(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers_of(v)


def config_default_numbers(classes: Iterable[str] = CONFIG_CLASSES) -> set[float]:
    """Every numeric default (``default`` or ``default_factory()``) of the dataclasses named
    ``module:Class``."""
    import dataclasses
    import importlib

    out: set[float] = set()
    for name in classes:
        module, cls = name.split(":")
        for f in dataclasses.fields(getattr(importlib.import_module(module), cls)):
            if f.default is not dataclasses.MISSING:
                out |= set(_numbers_of(f.default))
            elif f.default_factory is not dataclasses.MISSING:
                out |= set(_numbers_of(f.default_factory()))
    return out


#: callables whose keyword defaults the code relies on and prose may quote (the Muon
#: optimiser is PyTorch's, run with its default Newton-Schulz steps and coefficients)
CALL_DEFAULTS = ("torch.optim:Muon",)


def call_default_numbers(names: Iterable[str] = CALL_DEFAULTS) -> set[float]:
    """Every numeric keyword default of the callables named ``module:name`` (absent ones skipped)."""
    import importlib
    import inspect

    out: set[float] = set()
    for name in names:
        module, attr = name.split(":")
        obj = getattr(importlib.import_module(module), attr, None)
        if obj is None:
            continue
        for p in inspect.signature(obj).parameters.values():
            if p.default is not inspect.Parameter.empty:
                out |= set(_numbers_of(p.default))
    return out


def library_numbers() -> set[float]:
    """The paper's numbers (:func:`connectome_lib.paper_numbers.paper_results`: values, standard
    errors, iterations, layers), every chance level of :mod:`connectome_lib.registry`, the
    configuration defaults (:func:`config_default_numbers`) and those of :data:`CALL_DEFAULTS`."""
    from .paper_numbers import paper_results
    from .registry import MEASURES_BY_KEY

    df = paper_results()
    out = {float(v) for col in ("value", "se", "iteration", "layer") for v in df[col].dropna()}
    out |= {float(m.chance) for m in MEASURES_BY_KEY.values() if m.chance is not None}
    return out | config_default_numbers() | call_default_numbers()


@dataclass
class Allowed:
    """The numbers prose may quote, sorted for range look-ups, and the sources that were missing."""

    values: list[float]
    missing: list[Source] = field(default_factory=list)

    @classmethod
    def from_numbers(cls, numbers: Iterable[float], missing: Iterable[Source] = ()) -> Allowed:
        return cls(sorted({abs(v) for v in numbers if math.isfinite(v)}), list(missing))

    def has(self, lo: float, hi: float) -> bool:
        i = bisect.bisect_left(self.values, lo - 1e-12)
        return i < len(self.values) and self.values[i] <= hi + 1e-12

    def traces(self, n: Number) -> bool:
        """Whether some allowed value equals ``n`` at its printed precision (a percentage also as
        a fraction, a ``k``/``M``/``B`` number also multiplied out)."""
        v, t = abs(n.value), n.tol
        candidates = [(v, t)]
        if n.percent:
            candidates.append((v / 100, t / 100))
        if n.scale != 1:
            candidates.append((v * n.scale, t * n.scale))
        return any(self.has(c - tol, c + tol) for c, tol in candidates)


def allowed_numbers(sources: Iterable[Source] | None = None, library: bool = True) -> Allowed:
    """Every number of the sources (default :func:`default_sources`) and, with ``library``, of
    :func:`library_numbers`."""
    sources = default_sources() if sources is None else list(sources)
    values: set[float] = set(library_numbers()) if library else set()
    missing = []
    for s in sources:
        if s.path.is_file():
            values |= source_numbers(s.path.read_text(encoding="utf-8"))
        else:
            missing.append(s)
    return Allowed.from_numbers(values, missing)


def _context(text: str, start: int, width: int = 100) -> str:
    lo = max(0, start - width // 2)
    return ("…" if lo else "") + _clip(text[lo:lo + width], width + 1)


def stale_number_findings(html: str, page: str, allowed: Allowed) -> list[Finding]:
    """Numbers in the page's static prose that trace to no source (module docstring)."""
    out = []
    for block in static_blocks(html):
        for n in numbers_in(block.text):
            if not n.exempt and not allowed.traces(n):
                context = _context(block.text, n.start) if block.context == block.text else _clip(block.context, 100)
                out.append(Finding("untraced-number", page, n.text, context))
    return out


# ------------------------------------------------------------------------------ launch buttons

_COLAB = re.compile(r"^https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/(?P<path>[^?#]+)$")
_BINDER = re.compile(r"^https://mybinder\.org/v2/.+[?&]urlpath=(?:lab/)?tree/(?P<path>[^&#]+)")


def launch_targets(html: str) -> list[tuple[str, str]]:
    """``(service, file)`` of every Colab and Binder link on a page: the repository file it opens."""
    out = []
    for a in parse_html(html).find_all("a"):
        href = a.attrs.get("href", "")
        for service, pattern in (("Colab", _COLAB), ("Binder", _BINDER)):
            match = pattern.match(href)
            if match:
                out.append((service, unquote(match["path"])))
    return out


def launch_findings(pages: dict[str, str], source_root: Path | None) -> list[Finding]:
    """The launch buttons over the whole book (``pages``: ``{page relative path: html}``).

    A launch link must open the page's own notebook, ``<page>.ipynb`` at the same place in the
    repository, and that file must be in the book's sources (``source_root``, when given): a wrong
    ``path_to_docs`` or a Markdown page offered on Colab opens nothing. When some pages carry
    launch links, every page whose notebook is in the sources must carry them too.
    """
    def own(page: str) -> str:
        return page.removesuffix(".html") + ".ipynb"

    findings, launched = [], set()
    for page, html in pages.items():
        for service, path in launch_targets(html):
            launched.add(page)
            if path != own(page):
                findings.append(Finding("launch-target", page, f"{service} opens {path}", f"expected {own(page)}"))
            elif source_root is not None and not (Path(source_root) / path).is_file():
                findings.append(Finding("launch-target", page, f"{service} opens {path}",
                                        f"no such file in {source_root}"))
    if launched and source_root is not None:
        for page in pages:
            if page not in launched and (Path(source_root) / own(page)).is_file():
                findings.append(Finding("launch-missing", page, own(page)))
    return findings


# ------------------------------------------------------------------------------ the whole book

#: pages of the build that are no part of the text
SKIP_PAGES = {"search.html", "genindex.html", "py-modindex.html"}


def book_pages(html_root: Path) -> list[Path]:
    """The built book's pages (search, index and ``_static``-like folders excepted)."""
    return sorted(p for p in Path(html_root).rglob("*.html")
                  if p.name not in SKIP_PAGES
                  and not any(part.startswith(("_", ".")) for part in p.relative_to(html_root).parts))


def audit_book(html_root: Path, allowed: Allowed | None = None,
               source_root: Path | None = None) -> dict[str, list[Finding]]:
    """Every pass over every page of a built book: ``{page: findings}`` (pages relative to
    ``html_root``; a missing source is a finding on the pseudo-page ``<sources>``).
    ``source_root`` is the book's source folder, for the launch pass (default: two folders up
    from ``html_root``, where ``jupyter-book build`` writes ``_build/html``)."""
    allowed = allowed_numbers() if allowed is None else allowed
    html_root = Path(html_root)
    if source_root is None and html_root.resolve().parent.name == "_build":
        source_root = html_root.resolve().parent.parent
    out: dict[str, list[Finding]] = {}
    if allowed.missing:
        out["<sources>"] = [Finding("missing-source", "<sources>", s.label, str(s.path)) for s in allowed.missing]
    pages = {p.relative_to(html_root).as_posix(): p.read_text(encoding="utf-8") for p in book_pages(html_root)}
    for rel, html in pages.items():
        out[rel] = table_findings(html, rel) + stale_number_findings(html, rel, allowed)
    for f in launch_findings(pages, source_root):
        out[f.page].append(f)
    return out
