"""Model cards (``README.md`` with hub metadata) for the model folders we write.

A model folder that leaves this project -- pushed to the hub (:mod:`connectome_lib.hub`), or a
converted released checkpoint (:func:`connectome_lib.released.convert`) -- should say what it
is: which of the paper's model types, where its connectome came from, how many tokens it was
trained on, how to load it, and what it scored. :func:`write_model_card` writes that card with
``huggingface_hub.ModelCard``/``ModelCardData`` (metadata: ``library_name: transformers``,
``license: mit``, tags, data sets, ``base_model``; evaluation results as ``model-index``), so the
hub shows it and ``ModelCard.load`` parses it back (:func:`read_model_card`).

:func:`released_card` fills it in for the paper's three checkpoints, :func:`step_card` for a
model trained by one of our run steps (:func:`connectome_lib.step.run_training_step`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .registry import ABLATIONS_BY_NAME, INIT_LABELS, MODEL_TYPES_BY_LABEL

#: the connectome of each released checkpoint (PAPER.md)
RELEASED_ORIGINS: dict[str, str] = {
    "Connectome": "generation 5 of the paper's outer loop (6 generations on FineWeb: train, prune 20 % of the "
                  "remaining weights per tensor, reset survivors to sign x 0.02); density 0.8^6 = 26.2 %",
    "RandomConnectome": "a random mask with the connectome's per-tensor density, random signs, magnitude 0.02",
    "NoConnectome": "none (dense, standard initialisation)",
}
RELEASED_TOKENS = ("inner loop on a 100M-token corpus (the abstract); the official train.py's defaults, 2001 "
                   "iterations x 512 x 1024, read about 1.05B tokens, i.e. about 10 passes (batch unconfirmed)")
#: the hub data sets behind our task names (for ``model-index``)
TASK_DATASETS: dict[str, tuple[str, str]] = {
    "hellaswag": ("Rowan/hellaswag", "HellaSwag"), "mmlu": ("cais/mmlu", "MMLU"), "blimp": ("nyu-mll/blimp", "BLiMP"),
    "futrell2018": ("futrell2018", "Natural Stories reading times (Futrell et al. 2018)"),
    "tuckute2024": ("tuckute2024", "fMRI language network (Tuckute et al. 2024)"),
    "perplexity": ("validation", "validation loss"),
}
CITATION = """@misc{kotar2025connectomes,
  author = {Kotar, Klemen and Tuckute, Greta},
  title  = {Model Connectomes: A Generational Approach to Data-Efficient Language Models},
  year   = {2025}, eprint = {2504.21047}, archiveprefix = {arXiv}, primaryclass = {cs.CL}
}"""


@dataclass
class CardInfo:
    """What a card says about a model (every field optional except the three that define it)."""

    label: str
    connectome_origin: str
    training_tokens: int | str | None
    profile: str | None = None
    base_model: str | None = None
    datasets: list[str] = field(default_factory=list)
    source: str | None = None
    density: float | None = None
    repo_id: str | None = None
    notes: str = ""
    tags: list[str] = field(default_factory=list)


def _eval_rows(eval_results: Any) -> list[dict]:
    """Tidy rows (``task``, ``metric``, ``value``[, ``n``]) from a DataFrame or a list of dicts."""
    if eval_results is None:
        return []
    if hasattr(eval_results, "to_dict"):
        eval_results = eval_results.to_dict(orient="records")
    rows = [dict(r) for r in eval_results]
    for r in rows:
        missing = [k for k in ("task", "metric", "value") if k not in r]
        if missing:
            raise ValueError(f"evaluation result rows need task, metric and value; a row lacks {missing}")
    return rows


def _model_index(rows: list[dict], model_name: str):
    from huggingface_hub import EvalResult

    out = []
    for r in rows:
        dtype, dname = TASK_DATASETS.get(r["task"], (r["task"], r["task"]))
        out.append(EvalResult(task_type="text-generation", dataset_type=dtype, dataset_name=dname,
                              metric_type=str(r["metric"]), metric_value=float(r["value"]),
                              task_name=str(r["task"])))
    return out or None


def _architecture(folder: Path) -> tuple[str, int | None]:
    try:
        c = json.loads((folder / "config.json").read_text())
        L, d, h, T, V = (int(c[k]) for k in ("n_layer", "n_embd", "n_head", "block_size", "vocab_size"))
    except (OSError, ValueError, KeyError, TypeError):
        return "the paper's GPT (see config.json)", None
    params = 2 * V * d + 12 * L * d * d  # embedding + untied head + blocks (no biases, weightless norms)
    return (f"GPT, {L} layers x {d}, {h} heads, context {T}, vocabulary {V}; rotary positions, weightless RMS "
            "norm, attention branch scaled by 1/sqrt(2 n_layer), untied head, no biases"), params


def _results_markdown(rows: list[dict]) -> str:
    if not rows:
        return "Not evaluated yet: see the commands above."
    def n_text(r: dict) -> str:
        n = r.get("n", "")
        return "" if n is None or (isinstance(n, float) and n != n) else str(int(n)) if isinstance(n, float) else str(n)
    return "\n".join(["| task | metric | value | n |", "|---|---|---|---|",
                      *(f"| {r['task']} | {r['metric']} | {float(r['value']):.4f} | {n_text(r)} |" for r in rows)])


def add_eval_results(folder: str | os.PathLike, eval_results: Any) -> Path:
    """Put evaluation results (tidy rows, as for :func:`write_model_card`) into the existing card
    of ``folder``: its ``model-index`` metadata and its "Evaluation" section. A (task, metric)
    already there is replaced, the others are kept; everything else of the card stays as it was."""
    from huggingface_hub import ModelCard

    path = Path(folder) / "README.md"
    card = ModelCard.load(str(path))
    new = _eval_rows(eval_results)
    keys = {(r["task"], r["metric"]) for r in new}
    old = [{"task": e.task_name, "metric": e.metric_type, "value": e.metric_value, "n": None}
           for e in (card.data.eval_results or []) if (e.task_name, e.metric_type) not in keys]
    rows = old + new
    card.data.eval_results = _model_index(rows, card.data.model_name or Path(folder).name)
    head, sep, rest = card.text.partition("## Evaluation\n")
    if sep:
        tail = rest[rest.index("\n## "):] if "\n## " in rest else ""
        card.text = f"{head}{sep}\n{_results_markdown(rows)}\n{tail}"
    card.save(str(path))
    return path


def _body(info: CardInfo, folder: Path, rows: list[dict]) -> str:
    arch, params = _architecture(folder)
    where = info.repo_id or "PATH"
    tokens = info.training_tokens
    tokens = f"{tokens:,}" if isinstance(tokens, int) else (tokens or "unknown")
    model_type = MODEL_TYPES_BY_LABEL.get(info.label)
    facts = [("Model type", f"{info.label}: {model_type.description if model_type else 'see below'}"),
             ("Connectome", info.connectome_origin), ("Training tokens", tokens), ("Architecture", arch)]
    if params:
        facts.append(("Parameters", f"{params:,}"))
    if info.density is not None:
        facts.append(("Density of the 2-D weights", f"{info.density:.4f}"))
    if info.profile:
        facts.append(("Profile", f"`{info.profile}` (connectome_lib/profiles/)"))
    if info.source:
        facts.append(("Source", info.source))
    table = "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts)])
    results = _results_markdown(rows)
    return f"""
# {info.label} model of Kotar & Tuckute (2025), "Model Connectomes"

A language model of the paper's generational set-up (arXiv:2504.21047; official code
github.com/TuKoResearch/GenerationalConnectomes), saved by `connectome_lib`, a companion
reproduction, as a standard transformers folder: the model code (`model.py`, self-contained: torch + transformers),
`config.json` with an `auto_map`, the weights and the tokenizer it was trained with.

{table}

{info.notes}

## Use

```python
from transformers import AutoModelForCausalLM, AutoTokenizer


model = AutoModelForCausalLM.from_pretrained("{where}", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("{where}")
logits = model(**tokenizer("The brain is", return_tensors="pt")).logits
```

```bash
lm_eval --model hf --model_args pretrained={where},trust_remote_code=True --tasks hellaswag,mmlu
```

## Evaluation

{results}

## Citation

```bibtex
{CITATION}
```
"""


def write_model_card(folder: str | os.PathLike, *, label: str, connectome_origin: str,
                     training_tokens: int | str | None, profile: Any = None, eval_results: Any = None,
                     base_model: str | None = None, datasets: Iterable[str] = (), source: str | None = None,
                     density: float | None = None, repo_id: str | None = None, notes: str = "",
                     tags: Iterable[str] = ()) -> Path:
    """Write ``<folder>/README.md``: hub metadata + a description (see the module docstring).

    ``profile`` is a profile name or a :class:`~connectome_lib.config.Profile`; ``eval_results``
    tidy rows (``task, metric, value[, n]``: a DataFrame or a list of dicts) for ``model-index``
    and the results table. Returns the card's path.
    """
    from huggingface_hub import ModelCard, ModelCardData

    folder = Path(folder)
    name = getattr(profile, "name", profile)
    info = CardInfo(label, connectome_origin, training_tokens, name, base_model, list(datasets), source, density,
                    repo_id, notes, list(tags))
    rows = _eval_rows(eval_results)
    model_name = repo_id.split("/")[-1] if repo_id else f"{label}GPT"
    data = ModelCardData(
        library_name="transformers", license="mit", language="en", pipeline_tag="text-generation",
        tags=["model-connectomes", "connectome", "pruning", label, "custom_code", *info.tags],
        datasets=info.datasets or None, base_model=base_model, model_name=model_name,
        eval_results=_model_index(rows, model_name),
        connectome_origin=connectome_origin, training_tokens=training_tokens, profile=name)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{_body(info, folder, rows)}")
    path = folder / "README.md"
    card.save(str(path))
    return path


def read_model_card(folder: str | os.PathLike):
    """The ``huggingface_hub.ModelCard`` of a folder (``card.data`` holds the metadata)."""
    from huggingface_hub import ModelCard

    return ModelCard.load(str(Path(folder) / "README.md"))


def released_card(folder: str | os.PathLike, label: str | None, source: str, density: float | None = None,
                  eval_results: Any = None, repo_id: str | None = None, base_model: str | None = None) -> Path:
    """The card of a converted released checkpoint (``label`` ``None``: an unknown one;
    ``base_model`` its hub id, :data:`connectome_lib.released.HUB_IDS`)."""
    label = label or "Unknown"
    return write_model_card(
        folder, label=label, connectome_origin=RELEASED_ORIGINS.get(label, "unknown (not one of the paper's three)"),
        training_tokens=RELEASED_TOKENS, base_model=base_model, datasets=["HuggingFaceFW/fineweb"],
        source=source, density=density, eval_results=eval_results, repo_id=repo_id, tags=["released-checkpoint"],
        notes=("The weights are those of the released checkpoint, unchanged (float32); only the code around them "
               "is ours (connectome_lib's re-implementation of the official model.py, which returns a model output "
               "with `.logits` and loads on transformers 5)."))


def training_tokens(train_cfg: Any, block_size: int) -> int:
    """Tokens a training run reads: iterations x batch size x accumulation x context."""
    return int(train_cfg.iters) * int(train_cfg.batch_size) * int(train_cfg.grad_accum) * int(block_size)


def step_origin(kind: str, record: Mapping[str, Any]) -> tuple[str, str]:
    """``(label, connectome origin)`` of a run step's model from its ``run.json`` record."""
    if kind == "evolve":
        return f"OuterLoopGeneration{record.get('generation')}", (
            f"generation {record.get('generation')} of the outer loop (trained from the previous generation's "
            "connectome; generation 0 is dense)")
    if kind == "ablation":
        variant = ABLATIONS_BY_NAME.get(record.get("variant", ""))
        return (variant.label if variant else "Ablation"), (
            f"ablation: the run's connectome with components {record.get('take_random')} taken from the random control")
    init = record.get("init", "")
    label = record.get("label") or INIT_LABELS.get(init, init)
    origin = {"connectome": "the run's final connectome (outer loop, last generation)",
              "random": f"random control of matched per-tensor density (seed {record.get('seed')})",
              "dense": "none (dense, standard initialisation)"}.get(init, "unknown")
    sha = record.get("connectome_sha256")
    return label, origin + (f"; connectome SHA-256 {sha}" if sha and init != "dense" else "")


def step_card(model_folder: str | os.PathLike, kind: str, record: Mapping[str, Any], train_cfg: Any,
              block_size: int, profile: str | None = None) -> Path:
    """The card of a model saved by a run step (``kind`` evolve/develop/ablation, ``record`` the
    step's ``run.json`` fields, ``train_cfg`` its :class:`~connectome_lib.config.TrainConfig`)."""
    label, origin = step_origin(kind, record)
    return write_model_card(model_folder, label=label, connectome_origin=origin,
                            training_tokens=training_tokens(train_cfg, block_size),
                            profile=profile or record.get("profile"), density=record.get("density"),
                            tags=[f"step-{kind}"])
