"""The Reproduce page's profile table (connectome_lib.profiles_overview) is computed from the profiles."""

from connectome_lib import profiles_overview
from connectome_lib.config import load_profile


def test_rows_follow_the_profile_files():
    t = profiles_overview.profiles_table(["smoke", "cpu"])
    assert list(t["profile"]) == ["`smoke`", "`cpu`"]
    p = load_profile("cpu")
    row = t.iloc[1]
    tokens = p.develop.train.iters * p.develop.train.batch_size * p.develop.train.grad_accum * p.model.block_size
    assert f"{tokens / 1e6:.3g}M tokens" in row["inner loop, per model"]
    assert row["outer loop"].startswith(f"{p.evolve.lineages} lineages × {p.evolve.generations} generations")
    assert row["models per type"] == f"{len(p.develop.seeds)} (NoConnectome {len(p.develop.seeds_of('dense'))})"


def test_markdown_lists_every_shipped_profile_smallest_first():
    md = profiles_overview.profiles_markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| profile |") and len(lines) >= 6
    order = [line.split("|")[1].strip() for line in lines[2:]]
    assert order[:4] == ["`smoke`", "`cpu`", "`gpu`", "`paper`"]
