"""Time every evaluation for a small model on this machine.

Model: the paper's GPT at n_layer=2, n_embd=64, n_head=2, block_size=256 (random init, seed 0),
float32, batch size 16. Each task first runs on a subset; when the subset's time extrapolated
linearly to the full data set is under ``--full-under`` seconds (default 120) the full task is
run and timed, otherwise the extrapolation is reported and labelled as such.

    python bench/bench_evals.py [--full-under 120] [--device cpu] [--threads N] [--out bench/bench_evals.csv]

``--threads`` pins torch's CPU threads (default: torch's choice); on a shared machine,
``--threads 1`` gives steadier numbers for before/after comparisons.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from connectome_lib.evals.config import EvalConfig  # noqa: E402
from connectome_lib.evals.tasks import TaskContext, run_task, tokenize_val_corpus  # noqa: E402
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM  # noqa: E402
from connectome_lib.tokenizer import load_tokenizer  # noqa: E402

# task: (subset limit, full size in the limit's unit, unit)
PLAN = {
    "perplexity": (100, None, "windows of 256"),
    "hellaswag": (200, 10042, "items"),
    "mmlu": (500, 14042, "questions"),
    "blimp": (20, 1000, "pairs per paradigm"),
    "futrell2018": (2, 10, "stories"),
    "tuckute2024": (None, 1000, "sentences"),
    "language_units": (None, 1000, "sentences"),
    "baselines": (None, None, "full"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-under", type=float, default=120.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tasks", default=",".join(PLAN))
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".csv")))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ConnectomeGPTForCausalLM(ConnectomeGPTConfig(n_layer=2, n_embd=64, n_head=2, block_size=256)).eval()
    model.to(args.device)
    tok = load_tokenizer()
    t0 = time.perf_counter()
    val = tokenize_val_corpus(tok)
    t_tok = time.perf_counter() - t0
    print(f"tokenising corpus_val: {len(val):,} tokens in {t_tok:.1f} s", flush=True)
    rows = []
    for task in args.tasks.split(","):
        limit, full, unit = PLAN[task]
        if task == "perplexity":
            full = (len(val) - 1) // 256
        cfg = EvalConfig(tasks=[task], limit=limit, progress=False, device=args.device)
        ctx = TaskContext(tok, cfg, val)
        t0 = time.perf_counter()
        run_task(task, model, ctx)
        t = time.perf_counter() - t0
        kind = "full" if limit is None else "subset"
        est = t if limit is None else t * full / limit
        if limit is not None and est < args.full_under:
            ctx = TaskContext(tok, cfg.replace(limit=None), val)
            t0 = time.perf_counter()
            run_task(task, model, ctx)
            t, est, kind, limit = time.perf_counter() - t0, None, "full", None
            est = t
        rows.append({"task": task, "run": kind, "limit": limit, "unit": unit, "seconds": round(t, 1),
                     "full_seconds": round(est, 1), "full_is": "measured" if kind == "full" else "extrapolated",
                     "threads": torch.get_num_threads()})
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(args.out, index=False)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
