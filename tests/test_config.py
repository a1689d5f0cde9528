"""Profiles: loading, overrides, validation, and the paper profile's data sources."""

import pytest

from connectome_lib.config import ConfigError, Profile, available_profiles, load_profile, parse_override
from connectome_lib.data import HubSource, LocalSource, resolve_source


def test_all_profiles_load():
    assert {"smoke", "cpu", "gpu", "paper"} <= set(available_profiles())
    for name in available_profiles():
        p = load_profile(name)
        assert isinstance(p, Profile) and p.name == name


def test_paper_profile_is_the_paper():
    p = load_profile("paper")
    assert (p.model.n_layer, p.model.n_head, p.model.n_embd, p.model.block_size) == (12, 12, 768, 1024)
    t = p.evolve.train
    assert (p.evolve.generations, p.evolve.prune_fraction, p.evolve.prune_scope) == (6, 0.2, "per_tensor")
    assert t.iters == 7001 and t.batch_size * t.grad_accum == 512
    assert t.optimizer == "muon_adamw" and t.lr == 0.0018 and t.seed == 1110
    assert (t.warmup_iters, t.decay_iters, t.grad_clip) == (250, 1800, 1.0)
    d = p.develop.train
    assert d.iters == 2001 and (d.warmup_iters, d.decay_iters) == (250, 1750) and d.optimizer == "adamw"
    assert p.develop.seeds == [0, 1, 2, 3] and p.data.inner_max_tokens == 100_000_000
    assert p.evolve.reset_value == 0.02 and p.evolve.prune_include == ".*" and p.evolve.prune_exclude is None


def test_paper_profile_resolves_to_fineweb_hub_loader_without_download():
    """The paper's corpora: disjoint, streamed ranges of documents of one FineWeb split
    large enough for 6 generations of fresh outer data (issue 18: sample-10BT#train[2%:] held
    ~9.8B tokens for the 22.0B the outer loop reads, and a % slice downloads the split)."""
    p = load_profile("paper")
    srcs = {split: resolve_source(getattr(p.data, split)) for split in ("inner", "val", "outer")}
    for src in srcs.values():
        assert isinstance(src, HubSource) and src.streamed
        assert src.name == "HuggingFaceFW/fineweb" and src.config == "sample-100BT" and src.split == "train"
    ranges = [(s.start, s.stop) for s in srcs.values()]
    assert ranges[0][0] == 0 and ranges[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])), ranges  # disjoint and adjacent
    t = p.evolve.train
    needed = p.evolve.generations * t.iters * t.batch_size * t.grad_accum * p.model.block_size + 1
    assert needed == 22_023_241_729 and p.data.outer_max_tokens >= needed
    assert p.data.outer_max_tokens < 100e9 * 0.9  # sample-100BT holds about 100B tokens


def test_fp16_is_refused_with_muon_adamw_only():
    """fp16's loss scaler is updated after each optimiser step, which unscales AdamW's gradients
    a second time under Muon + AdamW (issue 18): refused when the profile is loaded."""
    with pytest.raises(ConfigError, match=r"evolve\.train\.mixed_precision: fp16 does not work with .*muon_adamw"):
        load_profile("smoke", {"evolve.train.mixed_precision": "fp16"})
    p = load_profile("smoke", {"develop.train.mixed_precision": "fp16", "evolve.train.mixed_precision": "bf16"})
    assert p.develop.train.optimizer == "adamw" and p.develop.train.mixed_precision == "fp16"


def test_local_profiles_use_local_gutenberg():
    src = resolve_source(load_profile("smoke").data.outer)
    assert isinstance(src, LocalSource) and src.path.name == "gutenberg-outer.jsonl.xz"


def test_overrides_dict_and_strings():
    p = load_profile("smoke", {"evolve.generations": 2, "develop.train.lr": "1e-3"})
    assert p.evolve.generations == 2 and p.develop.train.lr == 1e-3
    p = load_profile("smoke", ["develop.seeds=[3, 4]", "evolve.train.optimizer=adamw", "data.outer_max_tokens=null"])
    assert p.develop.seeds == [3, 4] and p.evolve.train.optimizer == "adamw" and p.data.outer_max_tokens is None


@pytest.mark.parametrize(
    "override, message",
    [
        ({"evolve.generatons": 2}, "did you mean 'generations'"),
        ({"evolv.generations": 2}, "did you mean 'evolve'"),
        ({"evolve.generations": "two"}, "expected an integer"),
        ({"develop.inits": ["connectome", "randm"]}, "unknown"),
        ({"evolve.prune_scope": "layer"}, "per_tensor"),
        ({"evolve.train.optimizer": "sgd"}, "muon_adamw"),
        ({"evolve.prune_fraction": 1.5}, "prune_fraction"),
        ({"develop.train.warmup_iters": 100000}, "exceed"),
    ],
)
def test_bad_overrides_are_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_profile("smoke", override)


def test_unknown_profile_and_bad_override_syntax():
    with pytest.raises(ConfigError, match="did you mean 'smoke'"):
        load_profile("smok")
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("evolve.generations")


def test_profile_file_path_and_extends(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("extends: smoke\nevolve:\n  generations: 4\n")
    p = load_profile(str(f))
    assert p.name == "mine" and p.evolve.generations == 4 and p.model.n_embd == load_profile("smoke").model.n_embd
    bad = tmp_path / "bad.yaml"
    bad.write_text("modle: {n_layer: 2}\n")
    with pytest.raises(ConfigError, match="did you mean 'model'"):
        load_profile(str(bad))


def test_one_loader_for_profiles_and_evaluation_options():
    from connectome_lib.evals.config import EvalConfig, EvalConfigError, apply_overrides

    p = load_profile("smoke", ["evals.tasks=hellaswag,mmlu", "evals.limit=5", "develop.inits=connectome,dense"])
    assert p.evals.tasks == ["hellaswag", "mmlu"] and p.evals.limit == 5 and p.develop.inits == ["connectome", "dense"]
    assert apply_overrides(EvalConfig(), ["tasks=hellaswag,mmlu", "limit=5"]) == EvalConfig(tasks=["hellaswag", "mmlu"],
                                                                                           limit=5)
    with pytest.raises(ConfigError, match="unknown configuration key 'evals.limt'; did you mean 'limit'"):
        load_profile("smoke", {"evals.limt": 3})
    with pytest.raises(ConfigError, match="evals.limit: expected an integer"):
        load_profile("smoke", {"evals.limit": "many"})
    with pytest.raises(EvalConfigError, match="unknown EvalConfig field 'limt'; did you mean 'limit'"):
        apply_overrides(EvalConfig(), ["limt=3"])
    with pytest.raises(ConfigError, match="did you mean 'hellaswag'"):  # an EvalConfigError is a ConfigError
        load_profile("smoke", {"evals.tasks": ["hellaswg"]})
    assert issubclass(EvalConfigError, ConfigError) and issubclass(EvalConfigError, ValueError)


def test_eval_config_of_a_profile():
    from connectome_lib.config import eval_config

    p = load_profile("smoke", {"data.tokenizer": None, "data.data_dir": "/some/data", "model.vocab_size": 50304})
    cfg = eval_config(p, limit=3)
    assert cfg.limit == 3 and cfg.data_dir == "/some/data" and cfg.tokenizer is None
    assert cfg.brain_limit == p.evals.brain_limit


def test_resolve_folders_precedence(tmp_path, monkeypatch):
    from connectome_lib.config import resolve_folders

    root = tmp_path / "project"
    monkeypatch.delenv("CONNECTOME_RUNS_DIR", raising=False)
    monkeypatch.delenv("CONNECTOME_CACHE_DIR", raising=False)
    monkeypatch.delenv("CONNECTOME_RESULTS_DIR", raising=False)
    p = load_profile("smoke", {"data.data_dir": "mydata"})
    r = resolve_folders(p, root=root)  # the profile's values, relative to the project root
    assert r.run_root == root / "runs" / "smoke" and r.results_dir == root / "results" / "smoke"
    assert r.profile.data.cache_dir == str(root / ".cache" / "tokens")
    assert r.profile.data.data_dir == str(root / "mydata")
    assert p.runs_dir == "runs"  # the loaded profile is left as it is
    monkeypatch.setenv("CONNECTOME_RUNS_DIR", "env-runs")
    monkeypatch.setenv("CONNECTOME_CACHE_DIR", str(tmp_path / "env-cache"))
    monkeypatch.setenv("CONNECTOME_RESULTS_DIR", "env-results")
    r = resolve_folders(p, root=root)  # the environment beats the profile
    assert r.run_root == root / "env-runs" / "smoke" and r.results_dir == root / "env-results" / "smoke"
    assert r.profile.data.cache_dir == str(tmp_path / "env-cache")
    r = resolve_folders(p, runs_dir=tmp_path / "flag", cache_dir="c", results_dir="res", root=root)  # flags beat it
    assert r.run_root == tmp_path / "flag" / "smoke" and r.profile.data.cache_dir == str(root / "c")
    assert r.results_dir == root / "res" / "smoke"
    over = {"runs_dir": "mine", "data.cache_dir": "my-cache"}  # so do explicit overrides
    r = resolve_folders(load_profile("smoke", over), root=root, overrides=over)
    assert r.run_root == root / "mine" / "smoke" and r.profile.data.cache_dir == str(root / "my-cache")
