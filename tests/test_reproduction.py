"""The reproduction report (connectome_lib.reproduction): statuses, and the committed reference
read back from a real git repository."""

import math
import shutil
import subprocess

import pandas as pd
import pytest

from connectome_lib import reproduction
from connectome_lib.reproduction import TOLERANCE_Z, compare, key_numbers, make_report, status


def _summary(loss_c=4.0, loss_d=4.1, se=0.01):
    return pd.DataFrame([
        {"label": "Connectome", "task": "perplexity", "metric": "loss", "mean": loss_c, "n_seeds": 4, "se": se},
        {"label": "NoConnectome", "task": "perplexity", "metric": "loss", "mean": loss_d, "n_seeds": 8, "se": se},
        # not a headline or claim measure: never compared
        {"label": "Connectome", "task": "hellaswag", "metric": "chosen_frac/0", "mean": 0.3, "n_seeds": 4, "se": 0.0},
    ])


def _claims(effect=-0.1):
    return pd.DataFrame([{"measure": "validation loss", "claim": "Connectome ≥ NoConnectome", "effect": effect,
                          "ci_low": effect - 0.0392, "ci_high": effect + 0.0392}])


def test_key_numbers_take_the_headline_measures_and_the_claim_effects():
    k = key_numbers(_summary(), _claims())
    names = list(k["number"])
    assert any(n.startswith("Connectome: ") and "alidation" in n for n in names)
    assert not any("chosen_frac" in n for n in names)
    eff = k[k["number"].str.startswith("effect:")]
    assert len(eff) == 1
    assert eff["se"].iloc[0] == pytest.approx(0.02, rel=1e-3)  # the 95 % interval's half-width / 1.96


@pytest.mark.parametrize("current, se, expected", [
    (4.0, 0.01, "identical"),
    (4.000001, 0.01, "identical"),  # below the files' 6 significant digits
    (4.0 + 0.99 * TOLERANCE_Z * math.sqrt(2) * 0.01, 0.01, "reproduced"),
    (4.0 + 1.01 * TOLERANCE_Z * math.sqrt(2) * 0.01, 0.01, "differs"),
    (4.01, math.nan, "no spread"),
    (math.nan, 0.01, "differs"),
])
def test_status(current, se, expected):
    assert status(4.0, current, se)[0] == expected


def test_compare_marks_numbers_only_one_side_has():
    a = key_numbers(_summary(), _claims())
    b = key_numbers(_summary(loss_c=4.5), pd.DataFrame())
    r = compare(a, b).set_index("number")
    assert (r["status"] == "missing").sum() == 1  # the claim's effect
    assert "differs" in set(r["status"])  # Connectome moved by 50 SE
    assert "identical" in set(r["status"])  # NoConnectome did not
    assert set(r["status"]) <= set(reproduction.STATUSES)


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"})


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_make_report_compares_the_working_copy_with_the_commit(tmp_path):
    root = tmp_path / "repo"
    res = root / "results" / "cpu"
    res.mkdir(parents=True)
    _summary().to_csv(res / "summary.csv", index=False)
    _claims().to_csv(res / "claims.csv", index=False)
    (res / "provenance.json").write_text("{}")  # what marks an exported folder as complete
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "results")
    # the re-run's export overwrites the working copy: Connectome moves within the spread, the effect beyond it
    _summary(loss_c=4.0 + 0.02).to_csv(res / "summary.csv", index=False)
    _claims(effect=-0.5).to_csv(res / "claims.csv", index=False)
    run_root = tmp_path / "runs" / "cpu"
    report = make_report(root, res, run_root)
    by = report.set_index("number")["status"]
    assert by[by.index.str.startswith("Connectome:")].item() == "reproduced"
    assert by[by.index.str.startswith("NoConnectome:")].item() == "identical"
    assert by[by.index.str.startswith("effect:")].item() == "differs"
    written = reproduction.read_report(run_root)
    assert list(written["status"]) == list(report["status"])
    # and beside the results, to be committed with them
    assert list(reproduction.read_report(res)["status"]) == list(report["status"])
    md = reproduction.report_markdown(report)
    assert md.startswith("3 numbers: 1 identical, 1 reproduced, 1 differs.")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_make_report_writes_nothing_without_committed_results(tmp_path):
    root = tmp_path / "repo"
    (root / "results" / "cpu").mkdir(parents=True)
    _git(root, "init", "-q")
    _summary().to_csv(root / "results" / "cpu" / "summary.csv", index=False)
    assert make_report(root, root / "results" / "cpu", tmp_path / "runs") is None
    assert reproduction.read_report(tmp_path / "runs") is None


def test_book_markdown_names_no_absolute_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CONNECTOME_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CONNECTOME_RESULTS_DIR", str(tmp_path / "results"))
    text = reproduction.book_markdown("smoke")
    assert "no re-run of the `smoke` profile" in text and str(tmp_path) not in text
    assert "When the results shown in this book were made" not in text
    same = compare(key_numbers(_summary(), _claims()), key_numbers(_summary(), _claims()))
    reproduction.write_report(same, tmp_path / "results" / "smoke")  # the committed run's record
    text = reproduction.book_markdown("smoke")
    assert "When the results shown in this book were made" in text and "3 numbers: 3 identical." in text
    report = compare(key_numbers(_summary(), _claims()), key_numbers(_summary(), _claims()))
    reproduction.write_report(report, tmp_path / "runs" / "smoke")
    text = reproduction.book_markdown("smoke")
    assert "3 numbers: 3 identical." in text and str(tmp_path) not in text
