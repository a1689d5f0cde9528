"""The paper's GPT, as a Hugging Face ``transformers`` model.

A faithful re-implementation of the official ``model.py`` of Kotar & Tuckute (2025):

* rotary position embeddings (base 10000, "rotate halves" convention), no position table;
* pre-norm RMS normalisation *without* learnable weights, ``x * rsqrt(mean(x^2) + 1e-6)``,
  computed in float32, also before the head;
* the attention branch scaled by ``1/sqrt(2 * n_layer)``; the MLP branch unscaled;
* MLP ``Linear(d, 4d) -> GELU -> Linear(4d, d)``; no biases anywhere; dropout 0;
* an ``lm_head`` that is *not* tied to the token embedding;
* init: every Linear/Embedding N(0, 0.02), every ``c_proj.weight`` N(0, 0.02/sqrt(2 n_layer)).

Registered with the ``Auto*`` classes on import, so after ``import connectome_lib``,
``AutoModelForCausalLM.from_pretrained(folder)`` loads a saved model without
``trust_remote_code``. The classes are also registered for transformers' remote-code mechanism
(``register_for_auto_class``): ``save_pretrained`` copies this file into the folder and writes an
``auto_map`` into ``config.json``, so that any program -- lm-eval's ``hf`` model, a fresh Python
process that never imports ``connectome_lib`` -- loads the folder with
``AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)``. For that to work this
module must stay self-contained: it imports only ``torch``, ``transformers`` and the standard
library (``tests/test_hf_export.py`` checks it).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

try:  # transformers >= 4.50 moved GenerationMixin out of PreTrainedModel
    from transformers import GenerationMixin
except ImportError:  # pragma: no cover
    GenerationMixin = object  # type: ignore[misc,assignment]


class ConnectomeGPTConfig(PretrainedConfig):
    """Size of the paper's GPT. Defaults are the paper's "100M" model (162.2M parameters)."""

    model_type = "connectome_gpt"

    def __init__(
        self,
        vocab_size: int = 50304,
        n_layer: int = 12,
        n_head: int = 12,
        n_embd: int = 768,
        block_size: int = 1024,
        rope_base: float = 10000.0,
        norm_eps: float = 1e-6,
        init_std: float = 0.02,
        **kwargs,
    ):
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        if (n_embd // n_head) % 2 != 0:
            raise ValueError("rotary embeddings need an even head dimension (n_embd / n_head)")
        self.vocab_size = vocab_size
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_embd = n_embd
        self.block_size = block_size
        self.rope_base = rope_base
        self.norm_eps = norm_eps
        self.init_std = init_std
        kwargs.setdefault("tie_word_embeddings", False)
        if vocab_size > 50256:  # GPT-2's <|endoftext|>
            kwargs.setdefault("bos_token_id", 50256)
            kwargs.setdefault("eos_token_id", 50256)
        super().__init__(**kwargs)

    # names other libraries look for
    @property
    def hidden_size(self) -> int:
        return self.n_embd

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layer

    @property
    def num_attention_heads(self) -> int:
        return self.n_head

    @property
    def max_position_embeddings(self) -> int:
        return self.block_size


def rmsnorm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Weightless RMS normalisation over the last dimension, computed in float32."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).type_as(x)


class Rotary(nn.Module):
    """Rotary position embedding tables (cos, sin) for a head dimension.

    The tables are computed on the fly (cheap next to attention) rather than stored in a
    buffer: transformers builds models on the meta device when loading, and a non-persistent
    buffer would come back uninitialised.
    """

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        self.head_dim = head_dim
        self.base = base

    def forward(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = 1.0 / (
            self.base ** (torch.arange(0, self.head_dim, 2, device=device, dtype=torch.float32) / self.head_dim)
        )
        t = torch.arange(seq_len, device=device, dtype=torch.float32)
        freqs = torch.outer(t, inv_freq)
        return freqs.cos()[None, :, None, :], freqs.sin()[None, :, None, :]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the two halves of each head's vector (the official code's convention)."""
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    y1 = x1 * cos + x2 * sin
    y2 = x1 * (-sin) + x2 * cos
    return torch.cat([y1, y2], dim=-1).type_as(x)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ConnectomeGPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.head_dim = config.n_embd // config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.c_proj.residual_projection = True  # scaled init, see _init_weights
        self.rotary = Rotary(self.head_dim, config.rope_base)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, self.head_dim)
        k = k.view(B, T, self.n_head, self.head_dim)
        v = v.view(B, T, self.n_head, self.head_dim)
        cos, sin = self.rotary(T, x.device)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if key_padding_mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            mask = causal[None, None] & key_padding_mask[:, None, None, :].bool()
            # a query whose every key is masked (left padding) would produce NaN; let it see itself
            mask = mask | torch.eye(T, dtype=torch.bool, device=x.device)[None, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, config: ConnectomeGPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)
        self.c_proj.residual_projection = True  # scaled init, see _init_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config: ConnectomeGPTConfig):
        super().__init__()
        self.attn = CausalSelfAttention(config)
        self.mlp = MLP(config)
        self.attn_scale = 1.0 / math.sqrt(2 * config.n_layer)
        self.eps = config.norm_eps

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn_scale * self.attn(rmsnorm(x, self.eps), key_padding_mask)
        x = x + self.mlp(rmsnorm(x, self.eps))
        return x


class ConnectomeGPTPreTrainedModel(PreTrainedModel):
    config_class = ConnectomeGPTConfig
    base_model_prefix = "transformer"
    supports_gradient_checkpointing = False
    _no_split_modules = ["Block"]

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.init_std
        if isinstance(module, nn.Linear):
            if getattr(module, "residual_projection", False):  # GPT-2 style scaled init
                std = std / math.sqrt(2 * self.config.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)


class ConnectomeGPTForCausalLM(ConnectomeGPTPreTrainedModel, GenerationMixin):
    """The paper's GPT with a language-model head.

    ``forward(input_ids, labels=None, attention_mask=None, output_hidden_states=False)`` returns a
    :class:`~transformers.modeling_outputs.CausalLMOutput`. ``labels`` follow the transformers
    convention (the same tensor as ``input_ids``; shifted inside; ``-100`` is ignored).
    ``logits_to_keep`` (an int: the last n positions; or a 1-D tensor of positions) computes the
    head only where it is needed: the head is the largest matrix multiplication of a small model
    with GPT-2's 50k vocabulary, so scoring continuations gets much cheaper. With
    ``output_hidden_states=True``, ``hidden_states`` holds ``n_layer + 1`` tensors: the token
    embeddings (layer 0) and the residual stream after each block; as in GPT-2's transformers
    implementation, the last one has the final normalisation applied.
    """

    def __init__(self, config: ConnectomeGPTConfig):
        super().__init__(config)
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.transformer.wte = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutput:
        if input_ids.shape[1] > self.config.block_size:
            raise ValueError(
                f"sequence of {input_ids.shape[1]} tokens is longer than the context window "
                f"({self.config.block_size}); use a sliding window"
            )
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        key_padding_mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            key_padding_mask = attention_mask
        x = self.transformer.wte(input_ids)
        hidden = [x] if output_hidden_states else None
        for block in self.transformer.h:
            x = block(x, key_padding_mask)
            if hidden is not None:
                hidden.append(x)
        x = rmsnorm(x, self.config.norm_eps)
        if hidden is not None:
            hidden[-1] = x
        if isinstance(logits_to_keep, int):
            # 0 keeps every position; n > 0 keeps the last n (the transformers convention)
            logits = self.lm_head(x if logits_to_keep == 0 else x[:, -logits_to_keep:])
        else:  # a 1-D tensor of sequence positions
            logits = self.lm_head(x[:, logits_to_keep.to(x.device)])
        loss = None
        if labels is not None:
            if logits.shape[1] != labels.shape[1]:
                raise ValueError("labels need the logits of every position: do not combine them with logits_to_keep")
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)).float(),
                labels[:, 1:].reshape(-1),
                ignore_index=-100,
            )
        return CausalLMOutput(
            loss=loss, logits=logits, hidden_states=tuple(hidden) if hidden is not None else None
        )

    def prepare_inputs_for_generation(self, input_ids, **kwargs):  # no KV cache: recompute
        return {"input_ids": input_ids[:, -self.config.block_size :]}


AutoConfig.register(ConnectomeGPTConfig.model_type, ConnectomeGPTConfig, exist_ok=True)
AutoModelForCausalLM.register(ConnectomeGPTConfig, ConnectomeGPTForCausalLM, exist_ok=True)
# save_pretrained copies this file and writes config.json's auto_map (see the module docstring)
ConnectomeGPTConfig.register_for_auto_class()
ConnectomeGPTForCausalLM.register_for_auto_class("AutoModelForCausalLM")


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters())
