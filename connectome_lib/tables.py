"""Tables for people: how every DataFrame in the book is shown.

pandas' default HTML shows what a reader should not have to decode: a ``0, 1, 2, ...`` index
that means nothing, ``NaN``, ``578.0`` for a count and ``1.333333`` for a ratio. :func:`show`
turns a DataFrame into a :class:`pandas.io.formats.style.Styler` that

- hides a default (``RangeIndex``) index; a named index is kept (it says what a row is);
- writes missing values as an en dash (:data:`MISSING`);
- writes integer-valued numbers as integers with thousands separators (``60,184``);
- writes other numbers with :data:`SIGNIFICANT` significant digits (``4.048``, ``0.0006``), and
  numbers of 1,000 or more as whole numbers with separators.

:func:`register` makes it the HTML of every DataFrame a notebook or book page displays (the
stage notebooks call it through :func:`connectome_lib.notebook.setup`, the book's generated
pages directly), so no page formats a table of its own. Text output (the key numbers that nbval
compares) is not touched.
"""

from __future__ import annotations

import math
import numbers

import pandas as pd

#: significant digits of a non-integer number in a table
SIGNIFICANT = 4
#: how a missing value is shown
MISSING = "–"


def number(value, significant: int = SIGNIFICANT) -> str:
    """One cell: see the module docstring. Text and other objects are shown as they are."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            return MISSING
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x.is_integer() and abs(x) < 1e15:
            return f"{int(x):,}"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.{significant}g}"
    return str(value)


def show(df: pd.DataFrame, significant: int = SIGNIFICANT):
    """``df`` as a Styler for people (module docstring)."""
    styler = df.style.format(lambda v: number(v, significant), na_rep=MISSING)
    styler = styler.format_index(lambda v: number(v, significant), axis=0)
    if isinstance(df.index, pd.RangeIndex) and df.index.name is None:
        styler = styler.hide(axis="index")
    return styler.set_table_attributes('class="dataframe"')  # the book's table style


def _html(df: pd.DataFrame) -> str:
    return show(df).to_html()


def register() -> None:
    """Show every DataFrame displayed in this IPython kernel through :func:`show` (a no-op
    outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, _html)
