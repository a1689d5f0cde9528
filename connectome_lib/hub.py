"""Push a model folder to the Hugging Face hub, complete: code, weights, config, tokenizer, card.

A folder on the hub is only useful if others can load it with ``AutoModelForCausalLM`` /
``AutoTokenizer`` (``trust_remote_code=True``) and ``lm_eval --model hf`` from the folder alone,
so :func:`check_complete` refuses a folder that lacks any of: ``config.json`` with an
``auto_map`` whose code files are present, a weights file, a tokenizer, a ``README.md`` card.
A folder in the paper's *released* layout (their ``model.py``, which fails on transformers 5)
is refused too: convert it first (``connectome convert``).

:func:`push_model` then calls ``HfApi.create_repo`` and ``HfApi.upload_folder``; an ``api``
object can be passed in (tests pass a mock: no network). Offline, or with ``HF_HUB_OFFLINE=1``,
the push fails with :class:`~connectome_lib.released.HubUnavailableError`, one line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .released import HubUnavailableError, is_network_error, is_released_folder

WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
#: uploaded files (transformers' own save_pretrained output, our code, the card); nothing else
ALLOW = ["*.json", "*.safetensors", "*.py", "*.txt", "README.md"]
IGNORE = ["*.tmp", ".*", "__pycache__/*"]


class IncompleteModelFolderError(FileNotFoundError):
    """A model folder lacks what others need to load it (the message names what is missing)."""


def check_complete(folder: str | os.PathLike) -> Path:
    """Raise :class:`IncompleteModelFolderError` unless ``folder`` can be loaded from itself alone."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IncompleteModelFolderError(f"{folder}: no such model folder")
    if is_released_folder(folder):
        raise IncompleteModelFolderError(f"{folder} is in the paper's released layout, whose code does not load on "
                                         "transformers 5: convert it first (connectome convert SRC OUT)")
    missing = []
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        config, missing = {}, ["config.json"]
    code = sorted({ref.split(".", 1)[0] + ".py" for ref in (config.get("auto_map") or {}).values()
                   if isinstance(ref, str) and "--" not in ref})
    if config and not code:
        missing.append("an auto_map in config.json (save the model with connectome_lib.training.save_model)")
    missing += [f for f in code if not (folder / f).is_file()]
    if not any((folder / w).is_file() for w in WEIGHTS):
        missing.append("a weights file (model.safetensors or pytorch_model.bin)")
    gpt2_files = (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    if not ((folder / "tokenizer.json").is_file() or gpt2_files):
        missing.append("a tokenizer (tokenizer.json, or vocab.json + merges.txt)")
    if not (folder / "README.md").is_file():
        missing.append("a model card README.md (connectome_lib.model_card.write_model_card)")
    if missing:
        raise IncompleteModelFolderError(f"{folder} is incomplete: missing {'; '.join(missing)}")
    return folder


def push_model(path: str | os.PathLike, repo_id: str, token: str | None = None, private: bool = False,
               api: Any = None, commit_message: str | None = None) -> str:
    """Upload a complete model folder to ``repo_id`` (created if needed); return the commit URL
    (or whatever ``upload_folder`` returns, as a string)."""
    folder = check_complete(path)
    if "/" not in repo_id:
        raise ValueError(f"repo id {repo_id!r} must be owner/name")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    try:
        api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True, token=token)
        result = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", token=token,
                                   allow_patterns=ALLOW, ignore_patterns=IGNORE,
                                   commit_message=commit_message or f"Upload {folder.name} (connectome_lib)")
    except Exception as e:  # noqa: BLE001 - the hub's offline/connection errors become one line
        if not is_network_error(e):
            raise
        raise HubUnavailableError(f"cannot push {folder} to the Hugging Face hub as {repo_id} "
                                  f"({type(e).__name__}: {' '.join(str(e).split())[:160]})") from None
    return str(result)


def add_parsers(subparsers) -> None:
    """Register ``connectome push --model PATH --repo-id ID`` on an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "push", help="upload a complete model folder (code, weights, tokenizer, card) to the Hugging Face hub",
        description="Check that a model folder loads from itself alone (config.json with auto_map and its code, "
        "weights, tokenizer, README.md model card), then create the hub repository and upload the folder. Needs "
        "a network and a token (--token, or $HF_TOKEN / huggingface-cli login).")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="model folder (e.g. the output of connectome convert)")
    p.add_argument("--repo-id", required=True, metavar="ID", help="hub repository, owner/name")
    p.add_argument("--token", help="hub token (default: $HF_TOKEN or the cached login)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.set_defaults(func=_cmd_push)


def _cmd_push(args) -> int:
    url = push_model(args.model, args.repo_id, token=args.token, private=args.private)
    print(f"pushed {args.model} -> {url}")
    return 0
