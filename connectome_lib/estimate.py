"""A dry run: what a profile will cost, per stage, before anything runs (``connectome estimate``).

For every stage -- the outer loop (every lineage x generation), the inner loop (every model of
``develop.models()``), the ablations (every variant x seed of :func:`~connectome_lib.ablation.ablation_seeds`
and :func:`~connectome_lib.ablation.ablation_variants`) and the evaluations (what the pipeline's
evaluation steps score, :func:`connectome_lib.plan.evaluation_schedule`) -- :func:`estimate`
gives the tokens, FLOPs, time, peak memory per process and disk, plus a total row. Everything
is computed from the profile's fields alone: no model is built, no data is read.

**FLOPs** (nanoGPT's / PaLM's MFU accounting). A training token costs

    6 * N + 12 * n_layer * n_embd * block_size

FLOPs (forward + backward), where ``N`` is the number of parameters that take part in a matrix
multiplication: every block matrix and the (untied) ``lm_head`` -- all parameters **except the
token-embedding table** ``wte``, whose lookup is no matmul. The second term is attention
(``QK^T`` and ``AV``, counted over the full context as the formula does). Pruned weights still
cost dense FLOPs (the masks multiply dense tensors). A forward-only (evaluation) token costs a
third of that, ``2 * N + 4 * n_layer * n_embd * T`` with ``T`` the length of the sequences scored.

**Time** = FLOPs / (gpus x peak x MFU), with the dense bf16 peaks of :data:`PEAK_FLOPS` and
``mfu`` (default 40 %, an assumption, not a measurement). The training stages are data
parallel over ``gpus`` (ideal scaling); the evaluations are not divided (the evaluation steps of
a run share one results file and run one after another). On ``cpu`` the time comes from a
measured rate instead, :data:`CPU_TRAIN_TOKENS_PER_S` for the ``cpu`` profile's 2 x 64 model,
scaled by FLOPs per token for other sizes (``mfu`` does not apply).

**Memory per process** (approximate): fp32 weights and gradients (4 + 4 bytes per parameter),
the optimiser states of :func:`connectome_lib.training.build_optimizers` (AdamW: 2 fp32 states
per parameter; Muon: 1 fp32 momentum per block matrix), the masks of a masked run (a bool and a
float copy: 5 bytes per covered weight), DDP's gradient buckets with more than one GPU (4 bytes
per parameter), and the activations of one micro-batch of ``batch_size x block_size`` tokens:
about ``34 * batch * block * n_embd`` bytes per layer with 16-bit activations (Korthikanti et
al. 2022, attention scores not kept, as fused SDPA kernels do not; twice that in fp32), plus the
logits ``batch * block * vocab`` x 14 bytes (bf16 logits, their fp32 copy, log-softmax and its
gradient; 12 in fp32). The CUDA context and allocator slack (1-2 GB) are not counted.

**Disk** per stage: every saved model folder is ``params x 4`` bytes (fp32 safetensors; the
tokenizer files and model card, a few MB, are not counted); a training step keeps its final
``model/`` plus one folder per iteration of :func:`~connectome_lib.training.checkpoint_iterations`
(``checkpoint_every``/``checkpoint_iters``), a generation also its bit-packed connectome (1 bit
per covered weight + 2 bits per survivor). While a step runs it holds its resumable state
(weights + optimiser states, every ``save_state_every`` iterations), and while a new state is
written the previous one is still there: the stage's peak adds two states (one step runs at a
time). The token caches of the corpora are not counted.

**Evaluations** (coarse): forward tokens of every task of the registry on each inner model --
the final model, and every checkpoint for the tasks drawn over the inner loop (Futrell2018) --,
the baselines' untrained model once per inner model, and the ablation stage's validation loss
of every ablation model and the main models of its seeds. Item counts are the data sets' (cut
by the profile's ``evals`` limits); tokens per item are GPT-2-token means measured on the
shared copies (:data:`EVAL_TOKENS_PER_ITEM`): a smaller BPE vocabulary splits the same text
into more tokens, which this does not model. The ridge regressions and the other CPU work of
the brain tasks are not counted.

>>> rows = estimate("smoke", gpu="cpu")
>>> [r.stage for r in rows]
['outer loop', 'inner loop', 'ablations', 'evaluations', 'total']
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field

import pandas as pd

from .config import ModelSize, Profile, TrainConfig, load_profile
from .settings import ConfigError

__all__ = ["PEAK_FLOPS", "CPU_TRAIN_TOKENS_PER_S", "CPU_REFERENCE_MODEL", "DEFAULT_MFU", "EVAL_TOKENS_PER_ITEM",
           "StageEstimate", "parameter_shapes", "matmul_params", "train_flops_per_token", "forward_flops_per_token",
           "estimate", "estimate_frame", "estimate_markdown", "estimate_notes", "human_count", "human_flops",
           "human_seconds", "human_bytes", "add_estimate_args", "cmd_estimate"]

#: peak dense bf16 FLOP/s of one accelerator (vendor data sheets, without sparsity); ``cpu``:
#: no peak, the time comes from :data:`CPU_TRAIN_TOKENS_PER_S`
PEAK_FLOPS: dict[str, float | None] = {
    "h100": 989e12,   # H100 SXM
    "h200": 989e12,   # same compute as H100 SXM
    "a100": 312e12,
    "l4": 121e12,
    "cpu": None,
}
DEFAULT_MFU = 0.4

#: training tokens/s measured end to end on 2 CPU cores for the ``cpu`` profile's 2 x 64 model
#: (:data:`CPU_REFERENCE_MODEL`): a model's 3.3M tokens in its ``done.json`` seconds, median over
#: the inner-loop models of the committed run (``results/cpu/timings.json``; its validation
#: passes included). ``tests/test_estimate.py`` checks it against that file. Other sizes on
#: ``cpu`` run at the same FLOP/s: this rate times the reference model's FLOPs per token.
CPU_TRAIN_TOKENS_PER_S = 84_000
#: the model that rate was measured with (the ``cpu`` profile's)
CPU_REFERENCE_MODEL = ModelSize(n_layer=2, n_head=2, n_embd=64, block_size=128, vocab_size=1024)

#: forward tokens per scored item of each evaluation (GPT-2-token means measured on
#: ../shared/data, rounded; per *choice* for the multiple-choice tasks, per *pair* for BLiMP,
#: per story for Futrell2018, per sentence+non-word pair for the localizer), and the number of
#: items of each full data set
EVAL_TOKENS_PER_ITEM: dict[str, float] = {
    "hellaswag": 78,           # query + ending, per ending (4 per item)
    "mmlu_harness": 120,       # description + question + lettered choices + "Answer:" + " A", per choice
    "mmlu_paper": 70,          # "Question: ...\n\nAnswer:" + " answer", per choice
    "blimp": 20,               # good + bad sentence, each after <|endoftext|>
    "futrell2018": 1238,       # one story (12,371 tokens over the 10 stories) + a prefix token
    "tuckute2024": 9,          # one sentence + a prefix token
    "localizer": 60,           # a corpus sentence (8-20 words) and its non-word string
}
EVAL_ITEMS: dict[str, int] = {"hellaswag": 10_042, "mmlu": 14_042, "blimp_paradigms": 67, "blimp_pairs": 1_000,
                              "futrell2018": 10, "tuckute2024": 1_000}
#: bytes per row of an evaluation's per-item table (CSV; coarse)
_EVAL_ROW_BYTES = 100


@dataclass
class StageEstimate:
    """One stage of a dry run. ``models``: models trained (for the evaluations: models scored; in
    the total: models trained); ``tokens``: training tokens (for the evaluations: forward tokens);
    ``seconds``: wall time on ``gpus`` accelerators; ``peak_memory_bytes``: per process;
    ``disk_bytes``: what the stage leaves on disk plus its peak transient resumable state
    (``kept_disk_bytes`` without it)."""

    stage: str
    models: int
    tokens: int
    flops: float
    seconds: float
    peak_memory_bytes: int
    disk_bytes: int
    kept_disk_bytes: int = 0
    gpus: int = 1
    gpu: str = "h100"
    mfu: float | None = DEFAULT_MFU
    #: per-process batch: ``"32 x 16"`` (batch_size x grad_accum per GPU), or why it does not divide
    per_gpu: str = ""
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ the model
def parameter_shapes(model: ModelSize) -> dict[str, tuple[int, ...]]:
    """Every parameter of :class:`~connectome_lib.model.ConnectomeGPTForCausalLM` of this size,
    by name (no biases, no norm weights, ``lm_head`` untied)."""
    d, v = model.n_embd, model.vocab_size
    out: dict[str, tuple[int, ...]] = {"transformer.wte.weight": (v, d)}
    for i in range(model.n_layer):
        out[f"transformer.h.{i}.attn.c_attn.weight"] = (3 * d, d)
        out[f"transformer.h.{i}.attn.c_proj.weight"] = (d, d)
        out[f"transformer.h.{i}.mlp.c_fc.weight"] = (4 * d, d)
        out[f"transformer.h.{i}.mlp.c_proj.weight"] = (d, 4 * d)
    out["lm_head.weight"] = (v, d)
    return out


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def parameter_count(model: ModelSize) -> int:
    """Every parameter of the model of this size (:func:`parameter_shapes`; its test checks them
    against a built model)."""
    return sum(_numel(s) for s in parameter_shapes(model).values())


def matmul_params(model: ModelSize) -> int:
    """``N`` of the FLOP formula: every parameter but the token-embedding table."""
    return sum(_numel(s) for n, s in parameter_shapes(model).items() if n != "transformer.wte.weight")


def train_flops_per_token(model: ModelSize) -> float:
    """``6 N + 12 n_layer n_embd block_size`` (forward + backward of one training token)."""
    return 6.0 * matmul_params(model) + 12.0 * model.n_layer * model.n_embd * model.block_size


def forward_flops_per_token(model: ModelSize, seq_len: int | None = None) -> float:
    """``2 N + 4 n_layer n_embd T`` (one forward token in sequences of ``T``, default the window)."""
    t = model.block_size if seq_len is None else min(int(seq_len), model.block_size)
    return 2.0 * matmul_params(model) + 4.0 * model.n_layer * model.n_embd * t


def _covered_params(model: ModelSize, include: str, exclude: str | None) -> int:
    """Weights the connectome covers (masked during training): 2-D tensors matching the rules
    of :func:`connectome_lib.pruning.prunable_parameters`."""
    inc, exc = re.compile(include), re.compile(exclude) if exclude else None
    return sum(_numel(s) for n, s in parameter_shapes(model).items()
               if len(s) == 2 and inc.search(n) and not (exc and exc.search(n)))


def _optimizer_state_bytes(model: ModelSize, cfg: TrainConfig) -> int:
    """fp32 optimiser states: AdamW 2 per parameter, Muon 1 (momentum) per block matrix
    (the split of :func:`connectome_lib.training.build_optimizers`)."""
    shapes = parameter_shapes(model)
    if cfg.optimizer == "muon_adamw":
        muon = sum(_numel(s) for n, s in shapes.items() if len(s) == 2 and ".h." in n)
        return 4 * muon + 8 * (sum(_numel(s) for s in shapes.values()) - muon)
    return 8 * sum(_numel(s) for s in shapes.values())


# ------------------------------------------------------------------------------ accelerator
def _check_options(gpus: int, gpu: str, mfu: float) -> None:
    if gpu not in PEAK_FLOPS:
        raise ConfigError(f"--gpu must be one of {', '.join(PEAK_FLOPS)}, got {gpu!r}")
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ConfigError(f"--gpus must be an integer >= 1, got {gpus!r}")
    if gpu == "cpu" and gpus != 1:
        raise ConfigError(f"--gpus must be 1 with --gpu cpu (the CPU rate is one process on 2 cores), got {gpus}")
    if isinstance(mfu, bool) or not isinstance(mfu, (int, float)) or not 0 < mfu <= 1:
        raise ConfigError(f"--mfu must lie in (0, 1] (a fraction of the peak, e.g. 0.4), got {mfu!r}")


def _default_gpu(profile: Profile) -> str:
    """``cpu`` for a profile whose ``hardware`` names a CPU (smoke, cpu), else ``h100``."""
    return "cpu" if profile.hardware.strip().lower().startswith("cpu") else "h100"


def _flops_per_second(gpus: int, gpu: str, mfu: float) -> float:
    """Sustained FLOP/s of ``gpus`` accelerators (on ``cpu``: the measured rate)."""
    peak = PEAK_FLOPS[gpu]
    if peak is None:
        return CPU_TRAIN_TOKENS_PER_S * train_flops_per_token(CPU_REFERENCE_MODEL)
    return gpus * peak * mfu


def _half_precision(cfg: TrainConfig, gpu: str) -> bool:
    if cfg.mixed_precision == "auto":
        return gpu != "cpu"  # bf16 on every accelerator of PEAK_FLOPS, fp32 on a CPU
    return cfg.mixed_precision in ("bf16", "fp16")


def _per_gpu(cfg: TrainConfig, gpus: int) -> tuple[str, list[str]]:
    """The per-process batch (batch_size x grad_accum) that keeps the profile's global batch."""
    b, a = cfg.batch_size, cfg.grad_accum
    if gpus == 1:
        return f"{b} x {a}", []
    if a % gpus == 0:
        return f"{b} x {a // gpus}", []
    if (b * a) % gpus == 0:
        return (f"{b} x {a}: does not divide", [
            f"grad_accum {a} is not divisible by {gpus} GPUs: to keep the global batch of {b * a} sequences "
            f"set batch_size {b * a // gpus} and grad_accum 1 per GPU (the estimate assumes the global batch is kept)"])
    return (f"{b} x {a}: does not divide", [
        f"the global batch of {b * a} sequences (batch_size {b} x grad_accum {a}) does not split over {gpus} GPUs: "
        "the estimate assumes the profile's tokens all the same"])


# ------------------------------------------------------------------------------ one training step
def _train_memory(model: ModelSize, cfg: TrainConfig, gpu: str, gpus: int, masked_weights: int) -> int:
    p = parameter_count(model)
    states = 4 * p + 4 * p + _optimizer_state_bytes(model, cfg) + 5 * masked_weights + (4 * p if gpus > 1 else 0)
    half = _half_precision(cfg, gpu)
    tokens = cfg.batch_size * model.block_size
    layers = (34 if half else 68) * tokens * model.n_embd * model.n_layer
    embedding = 4 * tokens * model.n_embd
    logits = (14 if half else 12) * tokens * model.vocab_size
    return int(states + layers + embedding + logits)


def _state_bytes(model: ModelSize, cfg: TrainConfig) -> int:
    """One resumable training state on disk: weights + optimiser states."""
    return 4 * parameter_count(model) + _optimizer_state_bytes(model, cfg)


def _transient_states(cfg: TrainConfig) -> int:
    """How many states sit on disk at once while a step runs (a new one is written before the
    old one is removed; none if the step never saves one)."""
    if cfg.save_state_every <= 0:
        return 0
    saves = len(range(cfg.save_state_every, cfg.iters, cfg.save_state_every))
    return min(2, saves)


def _model_folders(cfg: TrainConfig) -> int:
    """Model folders a training step keeps: ``model/`` and one per checkpoint iteration."""
    from .training import checkpoint_iterations

    return 1 + len(checkpoint_iterations(cfg))


def training_tokens(iters: int, batch_size: int, grad_accum: int, block_size: int) -> int:
    """The tokens one training run reads: iterations x batch x accumulation x context (per process
    count of one; the one formula of every table that states it)."""
    return iters * batch_size * grad_accum * block_size


def _tokens_per_model(model: ModelSize, cfg: TrainConfig) -> int:
    return training_tokens(cfg.iters, cfg.batch_size, cfg.grad_accum, model.block_size)


def _training_stage(name: str, profile: Profile, cfg: TrainConfig, n_models: int, masked_weights: int,
                    extra_kept: int, gpus: int, gpu: str, mfu: float) -> StageEstimate:
    m = profile.model
    tokens = n_models * _tokens_per_model(m, cfg)
    flops = tokens * train_flops_per_token(m)
    kept = n_models * _model_folders(cfg) * 4 * parameter_count(m) + extra_kept
    transient = _transient_states(cfg) * _state_bytes(m, cfg) if n_models else 0
    per_gpu, notes = _per_gpu(cfg, gpus)
    return StageEstimate(name, n_models, tokens, flops, flops / _flops_per_second(gpus, gpu, mfu),
                         _train_memory(m, cfg, gpu, gpus, masked_weights) if n_models else 0, kept + transient,
                         kept, gpus, gpu, None if gpu == "cpu" else mfu, per_gpu, notes)


# ------------------------------------------------------------------------------ the stages
def _outer(profile: Profile, gpus: int, gpu: str, mfu: float) -> StageEstimate:
    ev, m = profile.evolve, profile.model
    covered = _covered_params(m, ev.prune_include, ev.prune_exclude)
    n = ev.lineages * ev.generations
    masked = covered if ev.generations > 1 else 0  # generation 0 is dense, every later one masked
    cmask = sum(math.ceil(covered / 8) + 2 * math.ceil(covered * (1 - ev.prune_fraction) ** (g + 1) / 8)
                for g in range(ev.generations))
    final_copy = math.ceil(covered / 8) + 2 * math.ceil(covered * (1 - ev.prune_fraction) ** ev.generations / 8)
    rewind = 4 * parameter_count(m) if ev.reset == "rewind" else 0
    extra = ev.lineages * (cmask + final_copy + rewind)
    return _training_stage("outer loop", profile, ev.train, n, masked, extra, gpus, gpu, mfu)


def _inner(profile: Profile, gpus: int, gpu: str, mfu: float) -> StageEstimate:
    from .registry import CONNECTOME_INITS

    models = profile.develop.models()
    ev = profile.evolve
    masked = (_covered_params(profile.model, ev.prune_include, ev.prune_exclude)
              if any(i in CONNECTOME_INITS for i, _ in models) else 0)
    return _training_stage("inner loop", profile, profile.develop.train, len(models), masked, 0, gpus, gpu, mfu)


def _ablation_models(profile: Profile) -> tuple[list[int], list[str]]:
    from .ablation import ablation_seeds, ablation_variants

    return ablation_seeds(profile), ablation_variants(profile)


def _ablations(profile: Profile, gpus: int, gpu: str, mfu: float) -> StageEstimate:
    seeds, variants = _ablation_models(profile)
    ev = profile.evolve
    masked = _covered_params(profile.model, ev.prune_include, ev.prune_exclude)
    cfg = profile.develop.train if profile.ablations.keep_checkpoints else profile.develop.train.without_checkpoints()
    return _training_stage("ablations", profile, cfg, len(seeds) * len(variants), masked, 0, gpus, gpu, mfu)


def _sliding_tokens(length: int, window: int, stride: int) -> int:
    """Tokens fed to score a sequence of ``length`` with windows of ``window`` moving by ``stride``."""
    if length <= window:
        return length
    return window * (1 + math.ceil((length - window) / stride))


def _eval_tasks(profile: Profile) -> list[tuple[str, int, int, int]]:
    """Per evaluated inner model: ``(task, forward tokens per target, sequence length, table rows)``
    of every task of :func:`connectome_lib.plan.evaluation_schedule`, at one target each."""
    e, m = profile.evals, profile.model
    ctx = e.perplexity_context or m.block_size
    out = []
    tuckute_n = min(EVAL_ITEMS["tuckute2024"], max(e.brain_limit, 2 * e.brain_folds)
                    if e.brain_limit is not None else EVAL_ITEMS["tuckute2024"])
    stories = min(EVAL_ITEMS["futrell2018"], e.futrell_limit or EVAL_ITEMS["futrell2018"])
    stride = e.futrell_stride or max(1, m.block_size // 2)
    story = EVAL_TOKENS_PER_ITEM["futrell2018"]
    futrell = (stories * _sliding_tokens(story, m.block_size, stride), min(story, m.block_size), stories * 1026)
    tuckute = (tuckute_n * EVAL_TOKENS_PER_ITEM["tuckute2024"], EVAL_TOKENS_PER_ITEM["tuckute2024"], 0)
    from .plan import evaluation_schedule

    for task in [t for tasks in evaluation_schedule().values() for t in tasks]:
        if task == "perplexity":
            val = profile.data.val_max_tokens
            windows = 0 if val is None else max(0, (val - 1) // ctx)
            windows = min(windows, e.limit) if e.limit is not None else windows
            out.append((task, windows * ctx, ctx, windows))
        elif task == "hellaswag":
            n = min(EVAL_ITEMS["hellaswag"], e.limit or EVAL_ITEMS["hellaswag"])
            per = EVAL_TOKENS_PER_ITEM["hellaswag"]
            out.append((task, n * 4 * per, per, n))
        elif task == "mmlu":
            n = min(EVAL_ITEMS["mmlu"], e.limit or EVAL_ITEMS["mmlu"])
            per = EVAL_TOKENS_PER_ITEM[f"mmlu_{e.mmlu_prompt}"]
            out.append((task, n * 4 * per, per, n))
        elif task == "blimp":
            lim = e.blimp_limit or e.limit
            n = EVAL_ITEMS["blimp_paradigms"] * min(EVAL_ITEMS["blimp_pairs"], lim or EVAL_ITEMS["blimp_pairs"])
            out.append((task, n * EVAL_TOKENS_PER_ITEM["blimp"], EVAL_TOKENS_PER_ITEM["blimp"] // 2, n))
        elif task == "futrell2018":
            out.append((task, *futrell))
        elif task == "tuckute2024":
            out.append((task, *tuckute))
        elif task == "language_units":
            loc = e.localizer_n_sentences * EVAL_TOKENS_PER_ITEM["localizer"]
            out.append((task, loc + tuckute[0], EVAL_TOKENS_PER_ITEM["localizer"] // 2,
                        (m.n_layer + 1) * m.n_embd))
        elif task == "baselines":
            for t in e.baseline_tasks:
                if t == "futrell2018":
                    out.append(("baselines", *futrell))
                elif t == "tuckute2024":
                    out.append(("baselines", *tuckute))
    return out


def _evaluations(profile: Profile, gpus: int, gpu: str, mfu: float) -> StageEstimate:
    from .registry import TASKS_BY_NAME

    m = profile.model
    inner = profile.develop.models()
    ckpt_targets = len(_checkpoint_targets(profile.develop.train))
    tokens, flops, rows = 0, 0.0, 0
    for task, tok, seq, n_rows in _eval_tasks(profile):
        targets = ckpt_targets if TASKS_BY_NAME[task].checkpoints == "all" else 1
        tokens += len(inner) * targets * tok
        flops += len(inner) * targets * tok * forward_flops_per_token(m, seq)
        rows += len(inner) * targets * n_rows
    # the ablation stage's validation loss: the ablation models and the main models of its seeds
    seeds, variants = _ablation_models(profile)
    scored = len(seeds) * (len(variants) + len(profile.develop.inits)) if variants else 0
    ppl = next((t for t in _eval_tasks(profile) if t[0] == "perplexity"), None)
    if ppl is not None and scored:
        tokens += scored * ppl[1]
        flops += scored * ppl[1] * forward_flops_per_token(m, ppl[2])
        rows += scored * ppl[3]
    e = profile.evals
    batch_ctx = e.batch_size * m.block_size
    memory = 4 * parameter_count(m) + batch_ctx * (10 * m.vocab_size + 24 * m.n_embd)
    notes = []
    if profile.data.val_max_tokens is None:
        notes.append("data.val_max_tokens is null: the validation-loss windows are not counted")
    kept = rows * _EVAL_ROW_BYTES
    # one process: the evaluation steps of a run share a results file and run one at a time
    return StageEstimate("evaluations", len(inner) + scored, int(tokens), flops,
                         flops / _flops_per_second(1, gpu, mfu), int(memory), kept, kept, gpus, gpu,
                         None if gpu == "cpu" else mfu, f"batch {e.batch_size}", notes)


def _checkpoint_targets(cfg: TrainConfig) -> set[int]:
    """Iterations of the models an "all checkpoints" task scores (:func:`~connectome_lib.evals.runner.find_targets`)."""
    from .training import checkpoint_iterations

    return checkpoint_iterations(cfg) | {cfg.iters}


def _total(rows: list[StageEstimate], gpus: int, gpu: str, mfu: float) -> StageEstimate:
    kept = sum(r.kept_disk_bytes for r in rows)
    transient = max((r.disk_bytes - r.kept_disk_bytes for r in rows), default=0)
    trained = sum(r.models for r in rows if r.stage != "evaluations")
    return StageEstimate("total", trained, sum(r.tokens for r in rows),
                         sum(r.flops for r in rows), sum(r.seconds for r in rows),
                         max(r.peak_memory_bytes for r in rows), kept + transient, kept, gpus, gpu,
                         None if gpu == "cpu" else mfu, "", [n for r in rows for n in r.notes])


def _resolve(profile: Profile | str, gpus: int, gpu: str | None, mfu: float) -> tuple[Profile, str]:
    profile = load_profile(profile) if isinstance(profile, str) else profile
    gpu = _default_gpu(profile) if gpu is None else str(gpu).lower()
    _check_options(gpus, gpu, mfu)
    return profile, gpu


def estimate(profile: Profile | str, gpus: int = 1, gpu: str | None = None,
             mfu: float = DEFAULT_MFU) -> list[StageEstimate]:
    """The dry run of ``profile`` (a :class:`~connectome_lib.config.Profile` or a profile name) on
    ``gpus`` accelerators of kind ``gpu`` (a key of :data:`PEAK_FLOPS`; ``None``: ``cpu`` for a
    profile whose ``hardware`` names a CPU, else ``h100``) at model-FLOPs utilisation ``mfu``:
    one :class:`StageEstimate` per stage (outer loop, inner loop, ablations, evaluations) and a
    last ``total`` row (sums; peak memory the maximum; disk: everything kept plus the largest
    transient state). Bad options raise :class:`~connectome_lib.settings.ConfigError` naming the
    option. See the module docstring for the formulas."""
    profile, gpu = _resolve(profile, gpus, gpu, mfu)
    rows = [_outer(profile, gpus, gpu, mfu), _inner(profile, gpus, gpu, mfu), _ablations(profile, gpus, gpu, mfu),
            _evaluations(profile, gpus, gpu, mfu)]
    return rows + [_total(rows, gpus, gpu, mfu)]


# ------------------------------------------------------------------------------ human units
def _scaled(x: float, units: list[tuple[float, str]], sep: str = "") -> str:
    for factor, suffix in units:
        if abs(x) >= factor:
            return f"{x / factor:.3g}{sep}{suffix}"
    return f"{x:.3g}"


def human_count(n: float) -> str:
    """``3280000`` -> ``"3.28M"``."""
    return _scaled(n, [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")])


def human_flops(x: float) -> str:
    """``3.4e19`` -> ``"3.4e19"``."""
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.2g}".split("e") if "e" in f"{x:.2g}" else (f"{x:.2g}", "0")
    return f"{mantissa}e{int(exponent)}" if int(exponent) else mantissa


def human_seconds(s: float) -> str:
    """``80`` -> ``"80 s"``, ``4300`` -> ``"1.2 h"``."""
    if s < 120:
        return f"{s:.3g} s"
    if s < 3600:
        return f"{s / 60:.3g} min"
    if s < 2 * 86400:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} d"


def human_bytes(n: float) -> str:
    """Decimal units: ``53e9`` -> ``"53 GB"``."""
    return _scaled(n, [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")], " ") if n >= 1e3 else f"{int(n)} B"


def estimate_frame(profile: Profile | str, gpus: int = 1, gpu: str | None = None,
                   mfu: float = DEFAULT_MFU) -> pd.DataFrame:
    """:func:`estimate` as a table in human units (one row per stage and the total)."""
    rows = estimate(profile, gpus, gpu, mfu)
    return pd.DataFrame([{
        "stage": r.stage, "models": r.models, "tokens": human_count(r.tokens), "FLOPs": human_flops(r.flops),
        "time": human_seconds(r.seconds), "peak memory / process": human_bytes(r.peak_memory_bytes),
        "disk": human_bytes(r.disk_bytes), "batch per process": r.per_gpu} for r in rows])


def estimate_notes(profile: Profile | str, gpus: int = 1, gpu: str | None = None,
                   mfu: float = DEFAULT_MFU) -> list[str]:
    """The assumptions behind :func:`estimate`, one sentence each (and the notes of its stages)."""
    profile, gpu = _resolve(profile, gpus, gpu, mfu)
    m = profile.model
    if gpu == "cpu":
        rate = (f"on a CPU at the measured {CPU_TRAIN_TOKENS_PER_S:,} training tokens/s of the 2 x 64 model "
                f"(2 cores), i.e. {human_flops(_flops_per_second(1, gpu, mfu))} FLOP/s, scaled by FLOPs per token "
                f"({human_count(train_flops_per_token(m))} per training token for this model; --mfu does not apply)")
    else:
        rate = (f"on {gpus} x {gpu} at {mfu:.0%} of {PEAK_FLOPS[gpu] / 1e12:.0f} TFLOP/s dense bf16 peak "
                f"(an assumed MFU); training data parallel with ideal scaling, evaluations on one GPU")
    notes = [
        f"model {m.n_layer} x {m.n_embd}, context {m.block_size}, vocabulary {m.vocab_size}: "
        f"{human_count(parameter_count(m))} parameters, N = {human_count(matmul_params(m))} in matmuls (all but wte)",
        "FLOPs per training token = 6 N + 12 n_layer n_embd block_size; per forward (evaluation) token "
        "2 N + 4 n_layer n_embd T; pruned weights cost dense FLOPs",
        "time " + rate,
        "tokens: training tokens (evaluations: forward tokens, GPT-2-token counts per item, coarse)",
        "peak memory per process: fp32 weights, gradients and optimiser states, masks, and one micro-batch's "
        "activations and logits (approximate; CUDA context not counted)",
        "disk: fp32 model folders (final + checkpoints) and connectomes kept, plus two resumable states "
        "while a step writes a new one; token caches not counted",
    ]
    return notes + [n for r in estimate(profile, gpus, gpu, mfu)[-1:] for n in dict.fromkeys(r.notes)]


def estimate_markdown(profile: Profile | str, gpus: int = 1, gpu: str | None = None, mfu: float = DEFAULT_MFU,
                      notes: bool = False) -> str:
    """:func:`estimate_frame` as a Markdown table (with ``notes``: the assumptions below it)."""
    df = estimate_frame(profile, gpus, gpu, mfu)
    cols = list(df.columns)
    right = {"models", "tokens", "FLOPs", "time", "peak memory / process", "disk"}
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---:" if c in right else "---" for c in cols) + "|"]
    for rec in df.to_dict("records"):
        cells = [f"**{rec[c]}**" if rec["stage"] == "total" and str(rec[c]) else str(rec[c]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "".join(f"- {n}\n" for n in estimate_notes(profile, gpus, gpu, mfu))
    return text


# ------------------------------------------------------------------------------ command line
def add_estimate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpus", type=int, default=1, help="number of accelerators (data parallel; default 1)")
    p.add_argument("--gpu", default=None, metavar="KIND",
                   help=f"accelerator: {', '.join(PEAK_FLOPS)} (default: cpu for the CPU profiles, else h100)")
    p.add_argument("--mfu", type=float, default=DEFAULT_MFU,
                   help=f"model-FLOPs utilisation assumed, in (0, 1] (default {DEFAULT_MFU}; not used on cpu)")


def cmd_estimate(args: argparse.Namespace, profile: Profile) -> int:
    """``connectome estimate``: print the dry run of the profile."""
    gpus, gpu, mfu = args.gpus, args.gpu, args.mfu
    profile, gpu = _resolve(profile, gpus, gpu, mfu)
    where = f"{gpus} x {gpu}" if gpu != "cpu" else "cpu (2 cores)"
    print(f"estimate for profile {profile.name} on {where}" + (f" at {mfu:.0%} MFU" if gpu != "cpu" else "")
          + " (nothing is run)\n")
    frame = estimate_frame(profile, gpus, gpu, mfu)
    print(frame.to_string(index=False))
    print()
    for n in estimate_notes(profile, gpus, gpu, mfu):
        print(f"- {n}")
    return 0

