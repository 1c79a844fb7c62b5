"""vLLM's pooling runner as a scoring backbone: per-token final hidden states at vLLM's prefill speed.

``LLM(runner="pooling")`` with the ``token_embed`` task, ``ALL`` token pooling and no activation
returns, for each sequence, the hidden states after the model's final norm ([L, H], the input of the
LM head; checked against transformers' ``last_hidden_state``: max |diff| 1.4e-4 on values up to 53,
fp32). The LM head is then passkcore's fused kernel on the output-embedding weight read from the
checkpoint, so vLLM never computes [T, V] logits.

Prefix caching is off: with it, a prompt shared by k samples is computed once and vLLM returns the
hidden states of the uncached tokens only (its ``ALL`` pooler splits by scheduled tokens), which would
shift every position; the lengths returned are checked anyway. Chunked prefill is off as in
``passkcore.sampling.make_llm`` (a sequence's states then come back in one piece).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

POOLER_CONFIG = {"task": "token_embed", "pooling_type": "ALL", "use_activation": False}


def make_pooling_llm(path: Path, dtype: str = "float32", max_model_len: int = 2048) -> Any:
    """A vLLM engine returning every token's final hidden state (see the module's notes)."""
    from passkcore.sampling import make_llm

    return make_llm(str(path), dtype=dtype, max_model_len=max_model_len, runner="pooling",
                    pooler_config=dict(POOLER_CONFIG), enable_prefix_caching=False)


def head_weight(path: Path) -> tuple[Any, Optional[Any]]:
    """(output-embedding weight [V, H], bias or None) of a local checkpoint, read from its safetensors
    files without building the model: ``lm_head.weight``, or the input embedding when tied."""
    from safetensors import safe_open

    config = json.loads((path / "config.json").read_text())
    names = ["lm_head.weight"] + (["model.embed_tokens.weight"] if config.get("tie_word_embeddings") else [])
    found: dict[str, Any] = {}
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as fh:
            for key in fh.keys():
                if key in names or key == "lm_head.bias":
                    found[key] = fh.get_tensor(key)
    for name in names:
        if name in found:
            return found[name], found.get("lm_head.bias")
    raise ValueError(f"{path}: no {' or '.join(names)} in its safetensors files; use backend='fused'")


def pooled_hidden_states(llm: Any, sequences: Sequence[Sequence[int]]) -> list[Any]:
    """Final hidden states [len(s), H] of each token-id sequence, in order."""
    from vllm import PoolingParams

    params = PoolingParams(use_activation=False)
    outs = llm.encode([{"prompt_token_ids": list(s)} for s in sequences], params, pooling_task="token_embed",
                      use_tqdm=False)
    states = [o.outputs.data for o in outs]
    for i, (s, h) in enumerate(zip(sequences, states)):
        if h.shape[0] != len(s):
            raise RuntimeError(f"vLLM returned {h.shape[0]} hidden states for sequence {i} of {len(s)} tokens")
    return states
