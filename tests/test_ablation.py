"""Per-component ablation: hybrids take exactly the named components from the random control,
and an ablation model trains exactly as the inner loop's Connectome model does."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from connectome_lib import ablation, layout, stages
from connectome_lib.ablation import ABLATIONS, AblationVariant, component_of, hybrid_connectome
from connectome_lib.connectome import Connectome
from connectome_lib.pruning import full_masks, magnitude_prune


@pytest.fixture
def evolved(tiny_model):
    """A connectome pruned by magnitude from the tiny model (density 0.8 ** 2 per tensor)."""
    w = {n: p.detach().clone() for n, p in tiny_model.named_parameters() if p.ndim == 2}
    return Connectome.from_model(tiny_model, magnitude_prune(w, full_masks(w), 0.2, 2))


def test_component_of_parameter_names():
    assert component_of("transformer.wte.weight") == "wte"
    assert component_of("lm_head.weight") == "lm_head"
    for n in ("transformer.h.0.attn.c_attn.weight", "transformer.h.11.mlp.c_proj.weight"):
        assert component_of(n) == "blocks"
    with pytest.raises(ValueError, match="transformer.wpe.weight"):
        component_of("transformer.wpe.weight")


def test_ablations_are_the_six_named_variants():
    names = [v.name for v in ABLATIONS]
    assert names == ["random_wte", "random_blocks", "random_lm_head", "only_wte", "only_blocks", "only_lm_head"]
    by = ablation.ABLATIONS_BY_NAME
    assert by["random_blocks"].take_random == {"blocks"}
    assert by["only_blocks"].take_random == {"wte", "lm_head"} and by["only_blocks"].kept == ("blocks",)
    with pytest.raises(ValueError, match="unknown ablation 'nope'"):
        ablation.get_variant("nope")


@pytest.mark.parametrize("variant", ABLATIONS, ids=lambda v: v.name)
def test_hybrid_takes_exactly_the_named_components_from_the_random_control(evolved, variant):
    control = evolved.random_control(3)
    h = hybrid_connectome(evolved, control, variant.take_random)
    assert set(h.masks) == set(evolved.masks)
    for n in evolved.masks:
        src = control if component_of(n) in variant.take_random else evolved
        other = evolved if src is control else control
        assert torch.equal(h.masks[n], src.masks[n]) and torch.equal(h.signs[n], src.signs[n]), n
        assert not torch.equal(h.masks[n], other.masks[n]), n  # the two sources really differ here
    # the random control is matched per tensor, so the hybrid has the connectome's density in each
    dh, de = h.density_table().set_index("tensor"), evolved.density_table().set_index("tensor")
    assert (dh["kept"] == de["kept"]).all()
    assert h.meta["take_random"] == sorted(variant.take_random)


def test_hybrid_with_none_or_all_components_is_the_connectome_or_the_control(evolved):
    control = evolved.random_control(1)
    assert hybrid_connectome(evolved, control, set()) == evolved
    assert hybrid_connectome(evolved, control, ablation.COMPONENTS) == control
    with pytest.raises(ValueError, match="unknown components"):
        hybrid_connectome(evolved, control, {"head"})


def _losses(folder):
    return pd.read_csv(folder / "curve.csv")[["iteration", "tokens", "train_loss", "val_loss"]]


@pytest.mark.slow
def test_train_ablation_end_to_end(tiny_profile):
    p = tiny_profile
    p.develop.inits = ["connectome", "random"]  # the dense model adds nothing here (and ~3 s)
    stages.evolve(p, progress=False)
    for init in p.develop.inits:
        stages.develop_one(p, init, 0, progress=False)
    # with nothing replaced the ablation is the Connectome model, with everything the Random one:
    # the same training as develop_one, loss for loss
    none = AblationVariant("none", frozenset(), "Connectome")
    every = AblationVariant("every", frozenset(ablation.COMPONENTS), "RandomConnectome")
    pd.testing.assert_frame_equal(_losses(ablation.train_ablation(p, none, 0, progress=False)),
                                  _losses(layout.develop_dir(p.run_root, "connectome", 0)))
    pd.testing.assert_frame_equal(_losses(ablation.train_ablation(p, every, 0, progress=False)),
                                  _losses(layout.develop_dir(p.run_root, "random", 0)))

    folder = ablation.train_ablation(p, "random_lm_head", 0, progress=False)
    assert folder == p.run_root / "ablations" / "random_lm_head_s0"
    assert layout.is_done(folder) and (folder / "model").is_dir() and not (folder / "state").exists()
    # the inner model of the same seed keeps its checkpoints; the ablation model (evaluated
    # final only) keeps none by default (ablations.keep_checkpoints)
    assert list((layout.develop_dir(p.run_root, "connectome", 0) / "checkpoints").glob("iter_*"))
    assert not list((folder / "checkpoints").glob("iter_*"))
    run = layout.read_json(folder / "run.json")
    assert run["take_random"] == ["lm_head"]
    final = stages.load_final_connectome(p)
    assert run["density"] == pytest.approx(final.density())
    # the trained model keeps the hybrid's mask: pruned weights are still exactly 0
    from transformers import AutoModelForCausalLM

    trained = dict(AutoModelForCausalLM.from_pretrained(folder / "model").named_parameters())
    hybrid = ablation.build_hybrid(p, "random_lm_head", 0)
    for n, m in hybrid.masks.items():
        assert (trained[n].detach()[~m] == 0).all(), n
    assert not torch.equal(hybrid.masks["lm_head.weight"], final.masks["lm_head.weight"])

    before = (folder / "done.json").stat().st_mtime_ns
    ablation.train_ablation(p, "random_lm_head", 0, progress=False)  # done: skipped
    assert (folder / "done.json").stat().st_mtime_ns == before

    table = ablation.ablation_table(p, seeds=[0], variants=["random_lm_head"])
    assert list(table["model"]) == ["connectome", "random", "random_lm_head"]
    row = table.set_index("model").loc["random_lm_head"]
    assert row["mean"] == pytest.approx(layout.read_json(folder / "done.json")["val_loss"])
    assert row["n_seeds"] == 1
    assert table.set_index("model").loc["connectome", "delta_vs_connectome"] == 0.0
    with pytest.raises(FileNotFoundError, match="only_wte_s0 is not finished"):
        ablation.ablation_table(p, seeds=[0], variants=["only_wte"])

    # paired tests: every model scored on the same validation windows, then compared with the
    # Connectome model window by window
    from connectome_lib.data import load_corpus_tokens
    from connectome_lib.evals.config import EvalConfig

    cfg = EvalConfig(limit=12, progress=False, data_dir=p.data.data_dir)
    val = load_corpus_tokens("val", p.data, progress=False)
    with pytest.raises(FileNotFoundError, match="no validation loss of connectome_s0"):
        ablation.ablation_items(p, seeds=[0], variants=["random_lm_head"])
    ablation.evaluate_ablations(p, cfg, val, seeds=[0], variants=["random_lm_head"])
    assert ablation.ablation_results_path(p) == p.run_root / "ablations" / "evals" / "results.csv"
    items = ablation.ablation_items(p, seeds=[0], variants=["random_lm_head"])
    assert list(items.columns) == ["model", "seed", "item", "loss", "cluster"]
    assert items.groupby("model").size().to_dict() == {"connectome": 12, "random": 12, "random_lm_head": 12}
    # each window's cluster is its validation book, as the per-book analysis reads it
    from connectome_lib.effects import profile_window_books

    books = profile_window_books(p, int(items["item"].max()) + 1)
    assert (items["cluster"].to_numpy() == books[items["item"].to_numpy()]).all()
    tests = ablation.ablation_tests(items)
    assert (tests["n_clusters"] == items["cluster"].nunique()).all()
    assert list(tests["a"]) == ["random", "random_lm_head"] and set(tests["b"]) == {"connectome"}
    mean = items.groupby("model")["loss"].mean()
    assert tests.set_index("a").loc["random_lm_head", "effect"] == pytest.approx(
        mean["random_lm_head"] - mean["connectome"]
    )
    assert tests["p_items_holm"].between(0, 1).all()
    assert set(tests["verdict"]) <= {"better", "worse", "indistinguishable"}
