"""Tables for people (connectome_lib.tables), checked with the book's own artefact audit."""

import numpy as np
import pandas as pd

from connectome_lib import book_audit, tables


def test_cells_read_as_people_write_them():
    assert tables.number(578.0) == "578" and tables.number(60184.0) == "60,184"
    assert tables.number(1.333333) == "1.333" and tables.number(4.04823) == "4.048"
    assert tables.number(0.000512345) == "0.0005123" and tables.number(12345.6) == "12,346"
    assert tables.number(np.nan) == tables.MISSING and tables.number(None) == tables.MISSING
    assert tables.number(np.int64(1024)) == "1,024" and tables.number("c0") == "c0" and tables.number(True) == "True"


def test_shown_table_has_no_pandas_artefacts_the_audit_would_flag():
    df = pd.DataFrame({"count": [578.0, 3738.0], "ratio": [1.333333, np.nan], "unit": ["c0", None]})
    def audit(table_html):
        return book_audit.table_findings(f"<html><body><article>{table_html}</article></body></html>", "page")

    assert {f.kind for f in audit(df.to_html())} >= {"default-index", "float-digits"}, \
        "the raw pandas table is what the audit exists to catch"
    shown = tables.show(df).to_html()
    assert audit(shown) == []
    assert ">0<" not in shown.replace(" ", "")  # the default index is hidden
    named = tables.show(df.set_index("unit")).to_html()
    assert ">c0<" in named.replace(" ", "")  # a named index stays
