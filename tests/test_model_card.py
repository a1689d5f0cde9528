"""Model cards: written with huggingface_hub's ModelCard, parsed back, for released and run-step models."""

from __future__ import annotations

import pandas as pd
import pytest

from connectome_lib.config import TrainConfig
from connectome_lib.model_card import (
    RELEASED_ORIGINS,
    read_model_card,
    released_card,
    step_card,
    step_origin,
    training_tokens,
    write_model_card,
)


@pytest.fixture
def model_folder(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_card_metadata_and_results_parse_back(model_folder):
    results = pd.DataFrame([
        {"model": "m", "task": "hellaswag", "metric": "acc_norm", "value": 0.2764, "n": 10042},
        {"model": "m", "task": "mmlu", "metric": "acc", "value": 0.2468, "n": 14042},
    ])
    path = write_model_card(model_folder, label="Connectome", connectome_origin="the run's final connectome",
                            training_tokens=1_048_576, profile="cpu", eval_results=results,
                            datasets=["HuggingFaceFW/fineweb"], repo_id="me/ConnectomeGPT-cpu")
    assert path == model_folder / "README.md"
    card = read_model_card(model_folder)
    d = card.data
    assert (d.library_name, d.license, d.pipeline_tag) == ("transformers", "mit", "text-generation")
    assert "model-connectomes" in d.tags and "Connectome" in d.tags and d.datasets == ["HuggingFaceFW/fineweb"]
    assert d.profile == "cpu" and d.training_tokens == 1_048_576
    assert d.connectome_origin == "the run's final connectome"
    got = {(r.dataset_type, r.metric_type): r.metric_value for r in d.eval_results}
    assert got == {("Rowan/hellaswag", "acc_norm"): 0.2764, ("cais/mmlu", "acc"): 0.2468}
    text = card.text
    assert "1,048,576" in text and "| hellaswag | acc_norm | 0.2764 | 10042 |" in text
    assert 'from_pretrained("me/ConnectomeGPT-cpu", trust_remote_code=True)' in text
    assert "2 layers x 16" in text and "kotar2025connectomes" in text


def test_card_without_results_says_so(model_folder):
    write_model_card(model_folder, label="NoConnectome", connectome_origin="none", training_tokens=None)
    card = read_model_card(model_folder)
    assert card.data.eval_results is None and "Not evaluated yet" in card.text
    with pytest.raises(ValueError, match="task, metric and value"):
        write_model_card(model_folder, label="x", connectome_origin="y", training_tokens=1,
                         eval_results=[{"task": "hellaswag"}])


def test_released_card(model_folder):
    released_card(model_folder, "RandomConnectome", source="TuKoResearch/RandomConnectomeGPT100M", density=0.2621,
                  base_model="TuKoResearch/RandomConnectomeGPT100M")
    d = read_model_card(model_folder).data
    assert d.base_model == "TuKoResearch/RandomConnectomeGPT100M"
    assert d.connectome_origin == RELEASED_ORIGINS["RandomConnectome"] and "released-checkpoint" in d.tags
    released_card(model_folder, None, source="/somewhere")
    assert read_model_card(model_folder).data.base_model is None


def test_step_card_from_a_run_record(model_folder):
    cfg = TrainConfig(iters=800, batch_size=32, grad_accum=1, warmup_iters=60, decay_iters=300)
    assert training_tokens(cfg, 128) == 800 * 32 * 128
    record = {"init": "random", "seed": 2, "label": "RandomConnectome", "profile": "cpu", "iters": 800,
              "density": 0.2621, "connectome_sha256": "ab" * 32}
    step_card(model_folder, "develop", record, cfg, block_size=128)
    d = read_model_card(model_folder).data
    assert d.profile == "cpu" and d.training_tokens == 3_276_800 and "seed 2" in d.connectome_origin
    assert "step-develop" in d.tags and "RandomConnectome" in d.tags
    assert step_origin("develop", {"init": "dense", "connectome_sha256": "x"}) == (
        "NoConnectome", "none (dense, standard initialisation)")
    assert step_origin("evolve", {"generation": 3})[0] == "OuterLoopGeneration3"
    assert "components ['wte']" in step_origin("ablation", {"take_random": ["wte"]})[1]


def test_eval_results_replace_the_evaluation_section_and_keep_the_rest(tmp_path):
    from connectome_lib.model_card import add_eval_results, read_model_card, write_model_card

    write_model_card(tmp_path, label="NoConnectome", connectome_origin="none", training_tokens=1234, profile="smoke")
    before = read_model_card(tmp_path)
    assert "Not evaluated yet" in before.text and not before.data.eval_results
    add_eval_results(tmp_path, [{"task": "perplexity", "metric": "loss", "value": 4.25, "n": 8.0}])
    add_eval_results(tmp_path, [{"task": "perplexity", "metric": "loss", "value": 4.5, "n": 8.0},
                                {"task": "blimp", "metric": "acc", "value": 0.625, "n": None}])
    card = read_model_card(tmp_path)
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [("loss", 4.5), ("acc", 0.625)]
    add_eval_results(tmp_path, [{"task": "mmlu", "metric": "acc", "value": 0.25, "n": 4}])  # others are kept
    assert [(r.task_name, r.metric_type) for r in read_model_card(tmp_path).data.eval_results] == [
        ("perplexity", "loss"), ("blimp", "acc"), ("mmlu", "acc")]
    card = read_model_card(tmp_path)
    assert "| perplexity | loss | 4.5000 |" in card.text and "4.2500" not in card.text
    assert "Not evaluated yet" not in card.text
    assert card.text.count("## Evaluation") == 1 and "## Citation" in card.text and "## Use" in card.text
    assert card.data.profile == "smoke" and card.data.training_tokens == 1234
