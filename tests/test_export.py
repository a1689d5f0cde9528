"""The exported result files (connectome_lib.export)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from connectome_lib import export


def test_load_results_explains_a_missing_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the pipeline"):
        export.load_results(tmp_path)


def test_load_results_reads_every_file_and_tolerates_empty_ones(tmp_path):
    (tmp_path / "provenance.json").write_text(json.dumps({"profile": "smoke"}))
    pd.DataFrame({"label": ["Connectome"], "mean": [1.0]}).to_csv(tmp_path / "summary.csv", index=False)
    (tmp_path / "claims.csv").write_text("")
    res = export.load_results(tmp_path)
    assert res["provenance"] == {"profile": "smoke"}
    assert res["summary"]["mean"].tolist() == [1.0]
    assert res["claims"].empty and res["items"].empty
    assert set(res) == {name.split(".", 1)[0] for name in export.RESULT_FILES}
