"""Training throughput, dense vs masked (a fixed connectome), on the current device.

Measures tokens/s of full training iterations (forward, backward, gradient masking, clipping,
optimiser step, weight re-masking) through :class:`connectome_lib.training.Trainer`'s step, and
the masked-training overhead. On a GPU it also reports model FLOPs utilisation (MFU) against the
peak given by ``--peak-tflops`` (default 989: H100 SXM dense bf16).

Examples::

    python bench/bench_training.py                       # CPU: the smoke and cpu profile sizes
    python bench/bench_training.py --size paper --batch-size 16 --compile   # on a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from connectome_lib.config import TrainConfig, load_profile
from connectome_lib.connectome import Connectome
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM, count_parameters
from connectome_lib.pruning import full_masks, magnitude_prune, prunable_parameters
from connectome_lib.training import Trainer

#: model shapes of the profiles (including their vocabulary: a trained BPE for smoke and cpu)
SIZES = {name: dataclasses.asdict(load_profile(name).model) for name in ("smoke", "cpu", "gpu", "paper")}


def flops_per_token(cfg: ConnectomeGPTConfig, n_params: int) -> float:
    """6N + 12 L T C per token (forward + backward), as in the official estimate_mfu / PaLM."""
    return 6 * n_params + 12 * cfg.n_layer * cfg.block_size * cfg.n_embd


def bench(
    size: str, masked: bool, optimizer: str, batch_size: int, iters: int, warmup: int, compile_: bool, tmp: str
) -> dict:
    cfg = ConnectomeGPTConfig(**SIZES[size])
    torch.manual_seed(0)
    model = ConnectomeGPTForCausalLM(cfg)
    masks = None
    if masked:
        params = prunable_parameters(model)
        m = full_masks(params)
        w = {n: p.detach() for n, p in params.items()}
        for r in range(1, 7):
            m = magnitude_prune(w, m, 0.2, r)
        c = Connectome.from_model(model, m)
        c.init_model(model)
        masks = c.masks
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, size=2_000_000, dtype=np.uint16)
    tc = TrainConfig(iters=warmup + iters, batch_size=batch_size, grad_accum=1, optimizer=optimizer,
                     warmup_iters=1, decay_iters=1, val_every=0, val_batches=1, save_state_every=0,
                     log_every=10**9, compile=compile_, mixed_precision="auto")
    trainer = Trainer(model, tc, tokens, tokens[:100_000], tmp, masks=masks, progress=False)
    dev = trainer.accelerator.device
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for it in range(warmup):
        trainer._train_step(it)
    sync()
    t0 = time.perf_counter()
    for it in range(warmup, warmup + iters):
        trainer._train_step(it)
    sync()
    dt = (time.perf_counter() - t0) / iters
    n = count_parameters(model)
    tok_s = batch_size * cfg.block_size / dt
    return dict(size=size, params_M=round(n / 1e6, 1), masked=masked, optimizer=optimizer, compile=compile_,
                device=str(dev), batch=batch_size, seq=cfg.block_size, s_per_iter=round(dt, 4),
                tokens_per_s=round(tok_s), tflops=round(tok_s * flops_per_token(cfg, n) / 1e12, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", nargs="+", default=None, choices=list(SIZES))
    ap.add_argument("--optimizer", nargs="+", default=["adamw", "muon_adamw"])
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also measure with torch.compile")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="peak for MFU (H100 SXM dense bf16: 989)")
    ap.add_argument("--json", help="write the rows to this JSON file")
    args = ap.parse_args()
    gpu = torch.cuda.is_available()
    sizes = args.size or (["paper"] if gpu else ["smoke"])
    rows = []
    import tempfile

    for size in sizes:
        bs = args.batch_size or (16 if gpu else 8)
        for opt in args.optimizer:
            for comp in ([False, True] if args.compile else [False]):
                for masked in (False, True):
                    with tempfile.TemporaryDirectory() as tmp:
                        r = bench(size, masked, opt, bs, args.iters, args.warmup, comp, tmp)
                    if gpu:
                        r["mfu"] = round(r["tflops"] / args.peak_tflops, 3)
                    rows.append(r)
                    print(json.dumps(r), flush=True)
                dense, masked_ = rows[-2], rows[-1]
                overhead = masked_["s_per_iter"] / dense["s_per_iter"] - 1
                print(f"-> {size} {opt} compile={comp}: masked overhead {overhead * 100:+.1f}% "
                      f"({dense['tokens_per_s']:,} vs {masked_['tokens_per_s']:,} tokens/s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
