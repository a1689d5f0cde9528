"""The run's own record of its wall times (connectome_lib.timings, `connectome timings`)."""

import json

import pytest

from connectome_lib import findings, layout, timings
from connectome_lib.cli import main


def _done(folder, seconds):
    folder.mkdir(parents=True)
    layout.write_json_atomic(folder / "done.json", {"seconds": seconds})


def test_collect_reads_stage_records_and_every_finished_step(tmp_path):
    run = tmp_path / "run"
    timings.record_stage(run, "development", 12.34)
    timings.record_stage(run, "evolution", 100.0)
    timings.record_stage(run, "evolution", 90.0)  # executed again: the last time counts
    _done(run / "evolve" / "c0" / "gen_00", 40.0)
    _done(run / "evolve" / "c1" / "gen_00", 50.0)
    _done(run / "evolve" / "c1" / "gen_01", 60.0)
    (run / "evolve" / "c1" / "gen_02").mkdir()  # unfinished: not counted
    _done(run / "develop" / "dense_s0", 7.5)
    t = timings.collect(run, "bash scripts/reproduce.sh", "abc1234", total_seconds=321.6, note="idle machine")
    assert t["stage_seconds"] == {"evolution": 90.0, "development": 12.3}
    gens = t["step_seconds"]["outer-loop generations"]
    assert gens == {"count": 3, "seconds_sum": 150.0, "seconds_median": 50.0, "seconds_min": 40.0, "seconds_max": 60.0}
    assert t["step_seconds"]["inner-loop models"]["count"] == 1
    assert "ablation models" not in t["step_seconds"]
    assert t["total_seconds"] == 322 and t["note"] == "idle machine"

    timings.write(tmp_path / "results", t)
    text = findings.timings_markdown(tmp_path / "results")
    assert "**5 min** in all (set-up included, book build not)" in text
    assert "evolution 1.5 min" in text and "Outer-loop generations: 3, 50 s each" in text
    assert text.index("evolution 1.5 min") < text.index("development 0.2 min")  # the pipeline's order


def test_cli_writes_timings_beside_the_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONNECTOME_RUNS_DIR", str(tmp_path / "runs"))
    timings.record_stage(tmp_path / "runs" / "smoke", "data", 3.0)
    assert main(["timings", "--profile", "smoke", "--results-dir", str(tmp_path / "results"),
                 "--total-seconds", "61"]) == 0
    written = json.loads((tmp_path / "results" / "smoke" / "timings.json").read_text())
    assert written["stage_seconds"] == {"data": 3.0} and written["total_seconds"] == 61
    assert "timings:" in capsys.readouterr().out


def test_second_pass_keeps_the_first_and_is_shown(tmp_path):
    run = tmp_path / "run"
    timings.record_stage(run, "evolution", 600.0)
    first = timings.collect(run, "bash scripts/reproduce.sh", "aaaaaaa", total_seconds=3000)
    timings.record_stage(run, "evolution", 30.0)  # the page again, its steps reused
    second = timings.collect(run, "connectome pipeline", "bbbbbbb", total_seconds=240)
    both = timings.with_second_pass(first, second, "tables for people")
    assert both["stage_seconds"] == {"evolution": 600.0} and both["second_pass"]["stage_seconds"] == {"evolution": 30.0}
    timings.write(tmp_path / "results", both)
    text = findings.timings_markdown(tmp_path / "results")
    assert "executed again at commit `bbbbbbb`" in text and "(4 min; tables for people)" in text


def test_cli_second_pass_needs_a_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONNECTOME_RUNS_DIR", str(tmp_path / "runs"))
    with pytest.raises(SystemExit) as exit_:
        main(["timings", "--profile", "smoke", "--results-dir", str(tmp_path / "results"), "--second-pass", "x"])
    assert exit_.value.code == 2 and "holds no timings of a first pass" in capsys.readouterr().err
