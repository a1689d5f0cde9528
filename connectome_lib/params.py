"""Parameter-name rules: which layer, matrix kind and connectome component a weight belongs to.

The names are those of :class:`~connectome_lib.model.ConnectomeGPTForCausalLM` (and of the
official code): ``transformer.wte.weight``, ``transformer.h.<i>.attn.c_attn.weight``,
``transformer.h.<i>.attn.c_proj.weight``, ``transformer.h.<i>.mlp.c_fc.weight``,
``transformer.h.<i>.mlp.c_proj.weight`` and ``lm_head.weight``. Every module that groups
weights (density tables, analyses, ablations) uses these functions.
"""

from __future__ import annotations

import re

#: the components a connectome is split into for the ablations
COMPONENTS: tuple[str, ...] = ("wte", "blocks", "lm_head")
#: the tensors whose rows are tokens (embedding rows, head rows)
TOKEN_ROW_TENSORS: tuple[str, ...] = ("transformer.wte.weight", "lm_head.weight")
#: matrix kinds, matched in this order
KINDS: tuple[str, ...] = ("c_attn", "attn.c_proj", "c_fc", "mlp.c_proj", "wte", "lm_head")

_BLOCK = re.compile(r"(^|\.)h\.(\d+)\.")


def layer_of(name: str) -> str:
    """The layer of a parameter: ``embedding``, ``block_<ii>``, ``head`` or ``other``."""
    m = _BLOCK.search(name)
    if m:
        return f"block_{int(m.group(2)):02d}"
    if "wte" in name or "embed" in name:
        return "embedding"
    if "lm_head" in name:
        return "head"
    return "other"


def kind_of(name: str) -> str:
    """The matrix kind of a parameter, e.g. ``c_attn``, ``mlp.c_proj``, ``wte``, ``lm_head``."""
    for kind in KINDS:
        if kind in name:
            return kind
    return name.rsplit(".", 2)[-2] if "." in name else name


def component_of(name: str) -> str:
    """The component of a parameter name: ``wte``, ``blocks`` or ``lm_head``."""
    if _BLOCK.search(name):
        return "blocks"
    if name.endswith("wte.weight"):
        return "wte"
    if name.startswith("lm_head."):
        return "lm_head"
    raise ValueError(f"parameter {name!r} belongs to none of the components {COMPONENTS}")
