"""Size the ``cpu`` profile: train one NoConnectome model per candidate design on this machine.

Why: the ``cpu`` profile's model has to *learn language* (NoConnectome ends at least
``takeaways.LEARNING_GATE_NATS`` nats/token below the unigram entropy of the validation corpus)
while its inner loop reads the inner corpus of U tokens about 10 times, as the paper's does, so
the model must be small enough not to memorise U. ``book/reproduce.md`` shows the candidates
side by side from this script's CSV; nothing about the runs is typed by hand.

For every design of :data:`DESIGNS` (layers x width, BPE vocabulary) the script loads the
``cpu`` profile with that model and a byte-level BPE of that size trained on the outer corpus
(``data.bpe_vocab_size``), and runs the library's own inner-loop step
(:func:`connectome_lib.stages.develop_one`, init ``dense``, seed 0) with the profile's
inner-loop schedule (``develop.train``: about 10 passes over U) in a scratch runs folder. Its
learning curve (one validation point per ``develop.train.val_every`` iterations) gives the final
and the best validation loss and the pass of the best; the unigram entropy is that of the
validation corpus under the design's tokenizer (:func:`connectome_lib.data.unigram_entropy`).
Intermediate checkpoints are not written (they do not change the training).

    python bench/bench_sizing.py [--designs 0,1,2] [--quick] [--scratch /tmp/bench_sizing]
                                 [--out bench/bench_sizing.csv]

``--quick`` checks the script end to end in about a minute: a small BPE, the first books of
each split and a few iterations (its CSV goes to the scratch folder unless ``--out`` is given).
One row per design goes to the CSV, with the machine, the torch version, the date and the load
average (other work on the machine slows the run and inflates the seconds). On a busy machine,
one torch thread per model in a process of its own per design wastes the least time waiting for
a preempted thread; the committed CSV was made that way and its rows concatenated in order:

    for i in 0 1 2; do python bench/bench_sizing.py --designs $i --threads 1 --out /tmp/d$i.csv & done; wait
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from connectome_lib.notebook import cpu_name  # noqa: E402

#: the candidate designs: layers x width with a byte-level BPE of ``vocab_size`` tokens; heads of
#: width 32 (``n_head = n_embd / 32``). The first is the ``cpu`` profile's model.
DESIGNS = [
    {"n_layer": 2, "n_embd": 64, "vocab_size": 1024},
    {"n_layer": 2, "n_embd": 128, "vocab_size": 2048},
    {"n_layer": 4, "n_embd": 128, "vocab_size": 4096},
]
HEAD_WIDTH = 32
PROFILE = "cpu"
INIT, SEED = "dense", 0

#: ``--quick``: a tiny BPE, the first books of each split, a few iterations
QUICK = {
    "data.bpe_train_chars": 1_000_000, "data.sample": "head", "data.inner_max_tokens": 32_768,
    "data.val_max_tokens": 16_384, "develop.train.iters": 16, "develop.train.warmup_iters": 2,
    "develop.train.decay_iters": 8, "develop.train.val_every": 8, "develop.train.val_batches": 2,
}


def design_name(d: dict) -> str:
    return f"{d['n_layer']} x {d['n_embd']}, {d['vocab_size']:,}-token BPE"


def design_overrides(d: dict) -> dict:
    """The profile overrides of design ``d`` (model shape and BPE size; no checkpoints)."""
    return {"model.n_layer": d["n_layer"], "model.n_embd": d["n_embd"],
            "model.n_head": max(1, d["n_embd"] // HEAD_WIDTH), "model.vocab_size": d["vocab_size"],
            "data.bpe_vocab_size": d["vocab_size"], "develop.train.checkpoint_every": 0}


def summarise_curve(curve: pd.DataFrame, inner_tokens: int) -> dict:
    """Final and best validation loss of a learning curve (``tokens``, ``val_loss`` per
    validation point; the point at 0 tokens is the untrained model), the passes over the inner
    corpus of ``inner_tokens`` it read in all and at its best (the first minimum)."""
    c = curve.dropna(subset=["val_loss"]).sort_values("tokens")
    c = c[c["tokens"] > 0]
    if c.empty:
        raise ValueError("the learning curve has no validation point after training started")
    best = c.loc[c["val_loss"].idxmin()]
    last = c.iloc[-1]
    return {"passes": round(float(last["tokens"]) / inner_tokens, 2),
            "final_val_loss": round(float(last["val_loss"]), 4),
            "best_val_loss": round(float(best["val_loss"]), 4),
            "best_pass": round(float(best["tokens"]) / inner_tokens, 2)}


def run_design(d: dict, scratch: Path, quick: bool) -> dict:
    from connectome_lib import layout
    from connectome_lib.config import load_profile, resolve_folders
    from connectome_lib.data import load_corpus_tokens, unigram_entropy
    from connectome_lib.model import count_parameters
    from connectome_lib.stages import build_model, develop_one

    slug = f"L{d['n_layer']}_d{d['n_embd']}_v{d['vocab_size']}" + ("_quick" if quick else "")
    overrides = {**design_overrides(d), **(QUICK if quick else {})}
    profile = load_profile(PROFILE, overrides=overrides)
    profile = resolve_folders(profile, runs_dir=scratch / "runs" / slug, cache_dir=scratch / "cache").profile
    name = design_name(d)
    print(f"[{name}] tokenizer and corpora ...", flush=True)
    inner = load_corpus_tokens("inner", profile.data, progress=False)  # trains the BPE, tokenises: untimed
    val = load_corpus_tokens("val", profile.data, progress=False)
    entropy = unigram_entropy(val)
    params = count_parameters(build_model(profile, SEED))
    print(f"[{name}] {params:,} parameters, U = {len(inner):,} tokens, unigram entropy {entropy:.3f}; training",
          flush=True)
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    folder = develop_one(profile, INIT, SEED, progress=False, fresh=True)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    curve = pd.read_csv(folder / "curve.csv")
    done = layout.read_json(folder / "done.json")
    target = int(done["data"]["target_tokens"])
    train_seconds = float(curve["seconds"].max())  # the training loop's wall clock (curve's last point)
    summary = summarise_curve(curve, len(inner))
    row = {
        "design": name, "n_layer": d["n_layer"], "n_head": profile.model.n_head, "n_embd": d["n_embd"],
        "vocab_size": d["vocab_size"], "profile_model": profile.model == load_profile(PROFILE).model,
        "parameters": params, "inner_tokens": len(inner), "train_tokens": target, **summary,
        "unigram_entropy": round(entropy, 4),
        "below_unigram": round(entropy - summary["final_val_loss"], 4),
        "best_below_unigram": round(entropy - summary["best_val_loss"], 4),
        "train_tokens_per_s": round(target / train_seconds) if train_seconds > 0 else None,
        "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
        "threads": torch.get_num_threads(), "load_avg_before": round(load_before, 2),
        "load_avg_after": round(os.getloadavg()[0], 2), "cpu": cpu_name(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": quick,
    }
    print(f"[{name}] final {row['final_val_loss']:.3f} ({row['below_unigram']:.2f} below the unigram entropy), "
          f"best {row['best_val_loss']:.3f} after {row['best_pass']:g} of {row['passes']:g} passes; "
          f"{row['train_tokens_per_s']} tokens/s, {seconds:.0f} s", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--designs", default=",".join(str(i) for i in range(len(DESIGNS))),
                    help="indices into DESIGNS, comma-separated (default: all)")
    ap.add_argument("--quick", action="store_true", help="a tiny run of every design, to test the script")
    ap.add_argument("--scratch", default="/tmp/bench_sizing", help="runs and caches go here")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", default=None, help="CSV (default: bench/bench_sizing.csv; --quick: in --scratch)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    scratch = Path(args.scratch)
    out = Path(args.out) if args.out else (scratch / "bench_sizing_quick.csv" if args.quick
                                           else Path(__file__).with_suffix(".csv"))
    chosen = [DESIGNS[int(i)] for i in args.designs.split(",") if i.strip()]
    rows = []
    for d in chosen:
        rows.append(run_design(d, scratch, args.quick))
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(out, index=False)  # after every design: a partial run keeps its rows
    df = pd.DataFrame(rows)
    print(df[["design", "parameters", "passes", "unigram_entropy", "final_val_loss", "below_unigram",
              "best_val_loss", "best_pass", "train_tokens_per_s", "seconds"]].to_string(index=False))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
