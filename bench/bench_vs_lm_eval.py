"""Our HellaSwag scorer against lm-evaluation-harness's ``HFLM.loglikelihood``, in one run.

Both score the same (context, " " + ending) requests of the same HellaSwag items with the same
in-memory model and tokenizer and the same batch size; the script prints each one's time, the
ratio (lm-eval time / our time; above 1 means ours is faster) and the largest per-request
log-likelihood difference, so that speed is never bought with a different answer.

Model: the paper's GPT at n_layer=2, n_embd=64, n_head=2, block_size=256 (random init, seed 0;
the size of ``bench/bench_evals.py``), or ``--arch gpt2`` for a ``GPT2LMHeadModel`` of the same
size. Each scorer runs once on a few items to warm up, then ``--repeats`` times alternately;
the fastest run of each is reported (the least disturbed by other work on a shared machine).

    python bench/bench_vs_lm_eval.py [--items 200] [--batch-size 16] [--threads N] [--arch connectome|gpt2]

Needs ``lm-eval`` (``pip install "lm-eval[hf]"``); exits with a message when it is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402

from connectome_lib.evals.hellaswag import load_hellaswag  # noqa: E402
from connectome_lib.evals.multiple_choice import score_choice_items  # noqa: E402
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM  # noqa: E402
from connectome_lib.tokenizer import load_tokenizer  # noqa: E402


def build_model(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if arch == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=256)).eval()
    return ConnectomeGPTForCausalLM(ConnectomeGPTConfig(n_layer=2, n_embd=64, n_head=2, block_size=256)).eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=200, help="HellaSwag items (seeded sample; 4 requests each)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--arch", choices=["connectome", "gpt2"], default="connectome")
    args = ap.parse_args()
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError as e:
        print(f"bench_vs_lm_eval: lm-eval is not installed ({e}); pip install 'lm-eval[hf]'", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = build_model(args.arch), load_tokenizer()
    items = load_hellaswag(limit=args.items, seed=0)
    requests = [(it.context, c) for it in items for c in it.choices]  # choices carry their leading space
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size, device="cpu")

    def ours(its):
        return score_choice_items(model, tok, its, batch_size=args.batch_size, progress=False).loglik.ravel()

    def theirs(reqs):
        inst = [Instance(request_type="loglikelihood", doc={}, arguments=r, idx=i) for i, r in enumerate(reqs)]
        return np.array([ll for ll, _ in lm.loglikelihood(inst, disable_tqdm=True)])

    ours(items[:4])  # warm-up
    theirs(requests[:16])
    t_ours, t_theirs = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ll_ours = ours(items)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ll_theirs = theirs(requests)
        t_theirs.append(time.perf_counter() - t0)
    import lm_eval
    import transformers

    diff = float(np.max(np.abs(ll_ours - ll_theirs)))
    ratio = min(t_theirs) / min(t_ours)
    print(f"model: {args.arch} 2x64 (random init), float32, batch size {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, lm-eval {lm_eval.__version__}")
    print(f"HellaSwag: {len(items)} items, {len(requests)} loglikelihood requests")
    print(f"ours:    {min(t_ours):.2f} s (runs: {', '.join(f'{t:.2f}' for t in t_ours)})")
    print(f"lm-eval: {min(t_theirs):.2f} s (runs: {', '.join(f'{t:.2f}' for t in t_theirs)})")
    print(f"max |loglik difference| over requests: {diff:.2e}")
    print(f"speed ratio (lm-eval time / our time): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
