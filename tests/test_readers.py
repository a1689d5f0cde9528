"""The run-folder readers (connectome_lib.readers), on small folders built here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectome_lib import layout, readers
from connectome_lib.registry import INITS, LABELS

NAME = "transformer.h.0.mlp.c_fc.weight"


def test_final_rows_and_final_summary():
    df = pd.DataFrame({"model": ["a", "a", "b"], "task": ["t"] * 3, "iteration": [0, 10, 10],
                       "label": ["X"] * 3, "metric": ["m"] * 3, "value": [9.0, 1.0, 3.0]})
    final = readers.final_rows(df)
    assert list(final["value"]) == [1.0, 3.0]
    s = readers.final_summary(df)
    assert list(s.columns) == ["label", "task", "metric", "mean", "se", "n_seeds"]
    assert s.loc[0, "mean"] == 2.0 and s.loc[0, "se"] == pytest.approx(np.std([1, 3], ddof=1) / np.sqrt(2))
    assert s.loc[0, "n_seeds"] == 2


def test_baseline_means_average_the_baselines_task_over_seeds():
    df = pd.DataFrame({"task": ["baselines", "baselines", "futrell2018"], "metric": ["rt/r_n_chars"] * 2 + ["r"],
                       "value": [0.2, 0.4, 0.9]})
    b = readers.baseline_means(df)
    assert b.to_dict() == {"rt/r_n_chars": pytest.approx(0.3)}


def test_eval_results_of_an_empty_run_has_the_columns(tmp_path):
    assert list(readers.eval_results(tmp_path).columns) == readers.EVAL_COLUMNS


def test_untrained_by_layer_orders_layers_numerically():
    b = pd.Series({"untrained/tuckute2024/r_layer10": 0.3, "untrained/tuckute2024/r_layer2": 0.2,
                   "untrained/tuckute2024/r_best": 0.9, "brain/r_length": 0.1})
    s = readers.untrained_by_layer(b)
    assert list(s.index) == [2, 10] and s.tolist() == [0.2, 0.3]


def test_eval_table_and_initial_weights_read_the_run_layout(tmp_path):
    from safetensors.numpy import save_file

    tables = layout.evals_dir(tmp_path) / "tables"
    tables.mkdir(parents=True)
    pd.DataFrame({"rt": [1.0]}).to_csv(tables / "connectome_s0_iter000040_futrell2018.csv", index=False)
    assert readers.eval_table(tmp_path, "connectome_s0", 40, "futrell2018")["rt"].tolist() == [1.0]
    with pytest.raises(FileNotFoundError, match="iter000041"):
        readers.eval_table(tmp_path, "connectome_s0", 41, "futrell2018")
    for i, init in enumerate(INITS):
        folder = layout.checkpoint_dir(layout.develop_dir(tmp_path, init, 0), 0)
        folder.mkdir(parents=True)
        save_file({NAME: np.full((2, 2), float(i), np.float32)}, str(folder / "model.safetensors"))
    w = readers.initial_weights(tmp_path, NAME, 0)
    assert list(w) == list(LABELS)
    assert w["NoConnectome"].tolist() == [[3.0, 3.0], [3.0, 3.0]]  # the fourth init
    with pytest.raises(KeyError, match="no tensor"):
        readers.initial_weights(tmp_path, "lm_head.weight", 0)


def test_corpus_token_counts_bincounts_the_split(monkeypatch):
    import connectome_lib.data as data

    monkeypatch.setattr(data, "load_corpus_tokens", lambda split, cfg, progress=True: np.array([0, 2, 2], np.uint16))
    assert readers.corpus_token_counts(None, "inner", 4).tolist() == [1, 0, 2, 0]
    with pytest.raises(ValueError, match="vocab size 2"):
        readers.corpus_token_counts(None, "inner", 2)


def test_language_unit_tables_reads_each_model_types_first_seed(tmp_path):
    tables = layout.evals_dir(tmp_path) / "tables"
    tables.mkdir(parents=True)
    final = []
    for init, label in (("connectome", "Connectome"), ("dense", "NoConnectome")):
        for seed in (1, 2):
            model = f"{init}_s{seed}"
            pd.DataFrame({"layer": [1, 2], "unit": [0, 0], "t": [float(seed), -1.0]}).to_csv(
                tables / f"{model}_iter000800_language_units.csv", index=False)
            final.append({"model": model, "init": init, "label": label, "seed": seed, "iteration": 800,
                          "task": "language_units", "metric": "r_top1pct", "value": 0.1, "n": 10})
    final = pd.DataFrame(final)
    t = readers.language_unit_tables(tmp_path, final)
    assert set(t["label"]) == {"Connectome", "NoConnectome"} and set(t["seed"]) == {1}
    assert t["t"].tolist() == [1.0, -1.0, 1.0, -1.0]
    assert set(readers.language_unit_tables(tmp_path, final, seed=2)["t"]) == {2.0, -1.0}
    assert readers.language_unit_tables(tmp_path, final[final.task == "other"]).empty
    (tables / "dense_s1_iter000800_language_units.csv").unlink()
    with pytest.raises(FileNotFoundError, match="dense_s1"):
        readers.language_unit_tables(tmp_path, final)
