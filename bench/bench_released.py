"""Time the paper's released-size model on HellaSwag (and MMLU) subsets on this machine.

Why: the released checkpoints (``TuKoResearch/*ConnectomeGPT100M``, 162M parameters) have not
been evaluated here (no network), and ``book/released.md`` has to say what an evaluation of them
costs on a CPU. This script builds a model of exactly their size -- 12 layers x 768, 12 heads,
vocabulary 50,304, context 1,024 -- with random weights (the cost does not depend on the values),
and times the project's own evaluations with the paper's definitions
(``hellaswag_norm=tokens``, ``mmlu_prompt=paper``) on seeded subsets:

    python bench/bench_released.py [--tasks hellaswag,mmlu] [--limit 100] [--threads N]
                                   [--batch-size 16] [--out bench/bench_released.csv]

One row per task goes to the CSV: the items scored, the seconds (wall clock, model already in
memory), seconds per item, and the full set's time extrapolated linearly (labelled as such).
The book reads this file; nothing about the run is typed by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from connectome_lib.evals.config import EvalConfig  # noqa: E402
from connectome_lib.evals.tasks import TaskContext, run_task  # noqa: E402
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM, count_parameters  # noqa: E402
from connectome_lib.notebook import cpu_name
from connectome_lib.tokenizer import load_tokenizer  # noqa: E402

#: task: (full size, unit)
FULL = {"hellaswag": (10042, "items"), "mmlu": (14042, "questions")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="hellaswag,mmlu")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".csv")))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = ConnectomeGPTForCausalLM(ConnectomeGPTConfig()).eval().to(args.device)  # the paper's defaults
    t_build = time.perf_counter() - t0
    n_params = count_parameters(model)
    print(f"model: {n_params:,} parameters, built in {t_build:.1f} s; {torch.get_num_threads()} threads "
          f"on {cpu_name()}", flush=True)
    tok = load_tokenizer()
    rows = []
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        full, unit = FULL[task]
        cfg = EvalConfig(tasks=[task], limit=args.limit, batch_size=args.batch_size, device=args.device,
                         progress=False, hellaswag_norm="tokens", mmlu_prompt="paper")
        ctx = TaskContext(tok, cfg)
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        res = run_task(task, model, ctx)
        seconds = time.perf_counter() - t0
        n = int(res.metadata.get("n_items", res.metadata.get("n_questions", args.limit)) or args.limit)
        rows.append({
            "task": task, "definition": "paper (hellaswag_norm=tokens, mmlu_prompt=paper)", "limit": args.limit,
            "unit": unit, "seconds": round(seconds, 1), "seconds_per_item": round(seconds / n, 3),
            "full_size": full, "full_seconds": round(seconds / n * full), "full_is": "extrapolated",
            "n_layer": 12, "n_embd": 768, "vocab_size": 50304, "block_size": 1024, "parameters": n_params,
            "batch_size": args.batch_size, "device": args.device, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "cpu": cpu_name(), "torch": torch.__version__,
            "load_avg_before": round(load_before, 2),  # other work on the machine slows the run
        })
        hours = seconds / n * full / 3600
        print(f"{task}: {n} {unit} in {seconds:.1f} s ({seconds / n:.2f} s each; full set ~{hours:.1f} h)", flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(args.out, index=False)
    print(df[["task", "limit", "seconds", "seconds_per_item", "full_seconds", "threads"]].to_string(index=False))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
