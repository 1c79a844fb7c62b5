"""A packed CPU forward of Llama-family decoders for scoring, in a handful of fused torch calls per layer.

Why not transformers' modules (the ``passkcore.varlen`` path, which this replaces on CPU): measured on
SmolLM2 (2 cores, torch.profiler), its packed forward spent 36% of its time in the projections and
over half in element-wise passes (RMSNorm's pow/mean/rsqrt/mul, rotary's neg/cat/mul/add, SiLU, the
residual adds), each a separate parallel region over [tokens, H]: on a shared 2-core machine every
region waits at its barrier for the slowest, descheduled thread. Here a layer is one RMSNorm kernel,
one q/k/v product, one complex multiply for rotary (q and k head dimensions stored pairwise, which
leaves every q.k dot product the same sum), SDPA per sequence, the output product with the residual
added by the GEMM itself (``addmm``), one RMSNorm, one gate/up product, SiLU and a multiply, and the
down product with its residual. Weights are read straight from the safetensors files (no transformers
model classes: ~215 MiB of imports, measured in docs/benchmarks.md).

Supported: ``llama``, ``mistral`` (without a sliding window) and ``qwen2`` checkpoints with SiLU MLPs and
the default rotary embedding; ``supports`` names what else is missing and the scorer then keeps the
transformers path.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from passkcore.extras import needs_extra

with needs_extra("sampling", by=__name__):
    import torch
    import torch.nn.functional as F

MODEL_TYPES = ("llama", "mistral", "qwen2")
_NUMPY = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}


def text_config(path: Path) -> dict[str, Any]:
    config = json.loads((Path(path) / "config.json").read_text())
    return {**config.get("text_config", {}), **config}


def supports(config: dict[str, Any]) -> Optional[str]:
    """None when this forward computes the model; else why not (the scorer keeps transformers')."""
    if config.get("model_type") not in MODEL_TYPES:
        return f"model_type {config.get('model_type')!r} is not one of {MODEL_TYPES}"
    if config.get("hidden_act", "silu") != "silu":
        return f"hidden_act {config.get('hidden_act')!r}"
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        return f"rope type {rope.get('rope_type', rope.get('type'))!r}"
    if config.get("sliding_window") and config.get("use_sliding_window", True):
        return "a sliding window"
    if config.get("mlp_bias"):
        return "MLP biases"
    return None


def _header(file: Path) -> tuple[int, dict[str, Any]]:
    with open(file, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        return 8 + n, json.loads(fh.read(n))


def read_tensors(path: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's safetensors files in ``dtype``, read with plain file reads (no
    mapping: the process holds one copy, its own)."""
    out: dict[str, torch.Tensor] = {}
    for file in sorted(Path(path).glob("*.safetensors")):
        start, header = _header(file)
        with open(file, "rb") as fh:
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                if info["dtype"] not in _NUMPY:
                    raise ValueError(f"{file}: tensor {name} has dtype {info['dtype']}, not one of {sorted(_NUMPY)}")
                a, b = info["data_offsets"]
                fh.seek(start + a)
                raw = np.frombuffer(fh.read(b - a), dtype=_NUMPY[info["dtype"]]).reshape(info["shape"])
                t = torch.from_numpy(raw.copy())
                if info["dtype"] == "BF16":
                    t = t.view(torch.bfloat16)
                out[name] = t.to(dtype)
    return out


def _pairwise(w: torch.Tensor, heads: int, d: int) -> torch.Tensor:
    """Rows of a q or k projection (or its bias) reordered per head from [x1 | x2] halves to pairs
    (x1_0, x2_0, x1_1, x2_1, ...), so that rotary is a complex multiply on adjacent floats."""
    perm = torch.stack([torch.arange(d // 2), torch.arange(d // 2) + d // 2], dim=1).reshape(-1)
    shape = w.shape
    return w.reshape(heads, d, *shape[1:])[:, perm].reshape(shape).contiguous()


class PackedDecoder:
    """A decoder's weights laid out for ``hidden_states``; built by ``load``."""

    def __init__(self, config: dict[str, Any], tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> None:
        self.hq = int(config["num_attention_heads"])
        self.hk = int(config.get("num_key_value_heads") or self.hq)
        H = int(config["hidden_size"])
        self.d = int(config.get("head_dim") or H // self.hq)
        self.eps = float(config.get("rms_norm_eps", 1e-6))
        rope = config.get("rope_parameters") or {}
        theta = float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.d, 2, dtype=torch.int64).float() / self.d))
        self.dtype = dtype
        prefix = next((p for p in ("model.", "model.language_model.", "language_model.model.")
                       if f"{p}embed_tokens.weight" in tensors), None)
        if prefix is None:
            raise ValueError("no embed_tokens.weight in the checkpoint")
        self.embed = tensors.pop(f"{prefix}embed_tokens.weight")
        self.head = tensors.pop("lm_head.weight", None)
        if self.head is None:
            self.head = self.embed
        self.head_bias = tensors.pop("lm_head.bias", None)
        self.norm = tensors.pop(f"{prefix}norm.weight")
        self.layers = [self._layer(tensors, f"{prefix}layers.{i}.") for i in range(int(config["num_hidden_layers"]))]

    def _layer(self, t: dict[str, torch.Tensor], p: str) -> dict[str, Any]:
        a, m = p + "self_attn.", p + "mlp."
        q = _pairwise(t.pop(a + "q_proj.weight"), self.hq, self.d)
        k = _pairwise(t.pop(a + "k_proj.weight"), self.hk, self.d)
        qkv = torch.cat([q, k, t.pop(a + "v_proj.weight")])
        biases = [t.pop(a + f"{n}_proj.bias", None) for n in "qkv"]
        qkv_bias = None
        if any(b is not None for b in biases):
            zeros = [torch.zeros(n * self.d, dtype=self.dtype) for n in (self.hq, self.hk, self.hk)]
            bq, bk, bv = (b if b is not None else z for b, z in zip(biases, zeros))
            qkv_bias = torch.cat([_pairwise(bq, self.hq, self.d), _pairwise(bk, self.hk, self.d), bv])
        gate_up = torch.cat([t.pop(m + "gate_proj.weight"), t.pop(m + "up_proj.weight")])
        return {"in_norm": t.pop(p + "input_layernorm.weight"), "qkv": qkv, "qkv_bias": qkv_bias,
                "o": t.pop(a + "o_proj.weight"), "o_bias": t.pop(a + "o_proj.bias", None),
                "post_norm": t.pop(p + "post_attention_layernorm.weight"), "gate_up": gate_up,
                "down": t.pop(m + "down_proj.weight")}

    @classmethod
    def load(cls, path: Path, dtype: torch.dtype = torch.float32) -> PackedDecoder:
        config = text_config(path)
        reason = supports(config)
        if reason is not None:
            raise ValueError(f"{path}: the packed CPU forward does not support {reason}")
        return cls(config, read_tensors(path, dtype), dtype)

    def _rotary(self, positions: torch.Tensor) -> torch.Tensor:
        """cos + i sin per token at its position, [N, 1, d / 2]."""
        freqs = positions.float()[:, None] * self.inv_freq[None]
        return torch.polar(torch.ones_like(freqs), freqs)[:, None, :]

    def _rms(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), w, self.eps)

    def hidden_states(self, sequences: Sequence[Sequence[int]],
                      keep: Optional[tuple[list[torch.Tensor], list[torch.Tensor]]] = None) -> torch.Tensor:
        """Final (normed) hidden states [sum of lengths, H], sequences concatenated in order, each
        attending causally to itself, positions restarting per sequence. ``keep`` collects each layer's
        keys and values [kv heads, sum of lengths, d]."""
        lengths = [len(q) for q in sequences]
        cuts = np.cumsum([0, *lengths]).tolist()
        ids = torch.tensor([t for q in sequences for t in q], dtype=torch.long)
        positions = torch.cat([torch.arange(n) for n in lengths])
        return self._forward(ids, positions, list(zip(cuts[:-1], cuts[1:])), keep=keep)

    def prefix_cache(self, prefix: Sequence[int]) -> PrefixCache:
        """One forward of ``prefix`` alone, kept for ``continuation_states``: every layer's (rotated)
        keys and values, and the final hidden state of its last position."""
        return self.prefix_caches([prefix])[0]

    def prefix_caches(self, prefixes: Sequence[Sequence[int]]) -> list[PrefixCache]:
        """``prefix_cache`` of each prefix from one packed forward of them all (each attending only to
        itself); the caches are views of that forward's keys and values, freed with the last of them."""
        keys: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        hidden = self.hidden_states(prefixes, keep=(keys, values))
        cuts = np.cumsum([0, *(len(p) for p in prefixes)]).tolist()
        return [PrefixCache([k[:, a:b] for k in keys], [v[:, a:b] for v in values], hidden[b - 1].clone(), b - a)
                for a, b in zip(cuts[:-1], cuts[1:])]

    def continuation_states(self, cache: PrefixCache, continuations: Sequence[Sequence[int]]) -> torch.Tensor:
        """Final hidden states [sum of lengths, H] of continuations of one cached prefix, concatenated in
        order: each attends to the prefix's keys and values and causally to itself, positions going on
        from the prefix's length, as if (prefix + continuation) ran alone."""
        lengths = [len(c) for c in continuations]
        cuts = np.cumsum([0, *lengths]).tolist()
        ids = torch.tensor([t for c in continuations for t in c], dtype=torch.long)
        positions = torch.cat([torch.arange(cache.length, cache.length + n) for n in lengths])
        return self._forward(ids, positions, list(zip(cuts[:-1], cuts[1:])), cache=cache)

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor, spans: Sequence[tuple[int, int]],
                 cache: Optional[PrefixCache] = None,
                 keep: Optional[tuple[list[torch.Tensor], list[torch.Tensor]]] = None) -> torch.Tensor:
        """The layers over packed tokens; attention per span [a, b): causal over itself, after the cached
        prefix when there is a ``cache``. ``keep`` collects each layer's keys and values."""
        N, hq, hk, d = len(ids), self.hq, self.hk, self.d
        x = self.embed[ids]
        rot = self._rotary(positions)
        attn = torch.empty((N, hq, d), dtype=self.dtype)
        masks: dict[tuple[int, int, int], torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            h = self._rms(x, layer["in_norm"])
            qkv = h @ layer["qkv"].T
            if layer["qkv_bias"] is not None:
                qkv += layer["qkv_bias"]
            qk = torch.view_as_real(torch.view_as_complex(
                qkv[:, :(hq + hk) * d].float().reshape(N, hq + hk, d // 2, 2)) * rot).reshape(N, hq + hk, d)
            qk = qk.to(self.dtype).transpose(0, 1)
            v = qkv[:, (hq + hk) * d:].reshape(N, hk, d).transpose(0, 1)
            if keep is not None:
                keep[0].append(qk[hq:].contiguous())
                keep[1].append(v.contiguous())
            for a, b in spans:
                if a < b:
                    self._attend(qk, v, a, b, cache, i, masks, attn)
            x = torch.addmm(x, attn.view(N, hq * d), layer["o"].T)
            if layer["o_bias"] is not None:
                x += layer["o_bias"]
            h = self._rms(x, layer["post_norm"])
            gu = h @ layer["gate_up"].T
            inter = gu.shape[1] // 2
            act = F.silu(gu[:, :inter])
            act *= gu[:, inter:]
            x = torch.addmm(x, act, layer["down"].T)
        return self._rms(x, self.norm)

    def _attend(self, qk: torch.Tensor, v: torch.Tensor, a: int, b: int, cache: Optional[PrefixCache], layer: int,
                masks: dict[tuple[int, int, int], torch.Tensor], out: torch.Tensor) -> None:
        """Attention of the span [a, b) (see ``_forward``) into ``out[a:b]`` [b - a, hq, d].

        Why in blocks of queries: SDPA's CPU kernel computes every query against every key it is given
        and masks after, so one call per span paid for the whole square above the diagonal. Block j of
        n gets the keys up to its own last position only: with 4 blocks of a 480-token response after
        an 80-token prompt, 5.70 ms a layer and head group became 4.72 (2 cores' SmolLM2, one thread;
        a 128-token span gains nothing, so short spans stay whole)."""
        hq, gqa = self.hq, self.hq != self.hk
        prefix = 0 if cache is None else cache.length
        k, vv = qk[hq:, a:b], v[:, a:b]
        if cache is not None:
            k, vv = torch.cat([cache.keys[layer], k], dim=1), torch.cat([cache.values[layer], vv], dim=1)
        length = b - a
        blocks = min(4, max(1, length // 64))
        for j in range(blocks):
            r0, r1 = length * j // blocks, length * (j + 1) // blocks
            q = qk[None, :hq, a + r0:a + r1]
            if prefix == 0 and r0 == 0:  # causal over [a, a + r1): the kernel's own mask
                o = F.scaled_dot_product_attention(q, k[None, :, :r1], vv[None, :, :r1], is_causal=True,
                                                   enable_gqa=gqa)
            else:  # the prefix, the span's earlier blocks, then causal over itself
                key = (r1 - r0, prefix + r1, prefix + r0)
                if key not in masks:
                    masks[key] = torch.ones(key[0], key[1], dtype=torch.bool).tril(key[2])
                o = F.scaled_dot_product_attention(q, k[None, :, :prefix + r1], vv[None, :, :prefix + r1],
                                                   attn_mask=masks[key], enable_gqa=gqa)
            out[a + r0:a + r1] = o[0].transpose(0, 1)


@dataclass
class PrefixCache:
    """A prefix's forward kept for its continuations (``PackedDecoder.prefix_cache``): per layer its
    rotated keys and its values [kv heads, length, d], and the final hidden state of its last position
    (which predicts every continuation's first token). SmolLM2: 46 KiB a prefix token."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    last: torch.Tensor
    length: int
