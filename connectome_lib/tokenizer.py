"""The GPT-2 tokenizer, from the local data directory or, by name, from the Hugging Face hub."""

from __future__ import annotations

import os
from pathlib import Path

from transformers import GPT2TokenizerFast, PreTrainedTokenizerBase

from .paths import data_path

EOT_TOKEN_ID = 50256  # GPT-2's <|endoftext|>


def load_tokenizer(source: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> PreTrainedTokenizerBase:
    """Load the GPT-2 byte-level BPE tokenizer.

    ``source`` is ``None`` (the copy in the data directory, see :mod:`connectome_lib.paths`), a
    local folder holding ``vocab.json`` and ``merges.txt``, or a hub name such as ``"gpt2"``.
    The tokenizer's ``pad_token`` is set to ``<|endoftext|>`` so that batched code can pad.
    """
    if source is None:
        folder = data_path("tokenizer", data_dir)
        tok = GPT2TokenizerFast.from_pretrained(str(folder))
    elif Path(source).expanduser().is_dir():
        tok = GPT2TokenizerFast.from_pretrained(str(Path(source).expanduser()))
    else:
        tok = GPT2TokenizerFast.from_pretrained(str(source))  # hub name (needs a network)
    tok.model_max_length = int(1e9)  # we window ourselves; silence the 1024-token warning
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
