"""Scoring a VLM's samples: PPL_M(Y | x, images) through the transformers backbone and the fused head.

A sample row of an image problem stores the prompt vLLM conditioned on, each image placeholder already
expanded to the image's tokens. The backbone (``AutoModelForImageTextToText``'s ``model``: vision tower,
connector and language model, final norm included) takes those ids with the pixel inputs the model's
own image processor makes from the problem's images, and returns the final hidden states; passkcore's
fused head then computes the response tokens' log-probs and entropy without [T, V] logits.

Why transformers and not vLLM's pooling runner: vLLM 0.32 pools multimodal prompts (checked on an
Idefics3 model on CPU), but only from the unexpanded prompt: given the stored, expanded ids it expands
the image tokens inside them again (a 34-token sequence came back as 40 hidden states). So image rows
always take this path, whatever the scorer's backend; it runs in fp32 by default, one sequence per
forward (no padding: the same arithmetic as a reference forward of that sequence), the pixel inputs
made once per problem. Text rows of the same run keep the scorer's backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from passkcore.images import open_images

TokenScores = tuple[np.ndarray, Optional[np.ndarray]]


def is_multimodal(path: Path) -> bool:
    """Whether a checkpoint's config has a vision tower (``vision_config``)."""
    import json

    return "vision_config" in json.loads((path / "config.json").read_text())


class VisualBackbone:
    """A VLM checkpoint's transformers backbone, fused head and image processor (loaded on first use)."""

    def __init__(self, path: Path, dtype: Any = None, device: Any = None) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageTextToText

        self.device = device or "cpu"
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype or torch.float32,
                                                            attn_implementation="eager")
        self.model = model.to(self.device).eval()  # type: ignore[arg-type]
        self.head = self.model.get_output_embeddings()
        self.images = AutoImageProcessor.from_pretrained(path)

    def pixel_inputs(self, images: Sequence[str], where: str) -> dict[str, Any]:
        """The model's pixel inputs for one prompt's images (its own image processor)."""
        made = self.images(open_images(images, where), return_tensors="pt")
        return {k: v.to(self.device) for k, v in made.items()}

    def hidden_states(self, ids: Sequence[int], pixels: Optional[dict[str, Any]]) -> Any:
        """Final (normed) hidden states [len(ids), H] of one sequence."""
        import torch

        tensor = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        out = self.model.model(input_ids=tensor, attention_mask=torch.ones_like(tensor), use_cache=False,
                               **(pixels or {}))
        return out.last_hidden_state[0]

    def token_scores_at(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
                        images: Sequence[Optional[Sequence[str]]], temperatures: Sequence[float],
                        progress: Optional[Callable[[int], None]] = None) -> list[list[TokenScores]]:
        """Per-token (log-probs, entropies) of each pair at each temperature; ``images[i]`` are pair i's
        image locators (None: a text prompt)."""
        import torch

        from passkcore.kernels import token_logprobs

        out: list[list[TokenScores]] = [[] for _ in temperatures]
        cache: dict[tuple[str, ...], dict[str, Any]] = {}
        with torch.inference_mode():
            for i, ((prompt, response), locators) in enumerate(zip(pairs, images)):
                pixels = None
                if locators:
                    key = tuple(locators)
                    if key not in cache:
                        cache.clear()  # rows come grouped by problem: keep one problem's pixels
                        cache[key] = self.pixel_inputs(locators, f"row {i}: images")
                    pixels = cache[key]
                hidden = self.hidden_states(list(prompt) + list(response), pixels)
                # Position t predicts token t + 1: the response is predicted from positions len(p)-1 ...
                hidden = hidden[len(prompt) - 1:len(prompt) - 1 + len(response)]
                tgt = torch.tensor(list(response), dtype=torch.long, device=hidden.device)
                for k, temperature in enumerate(temperatures):
                    logp, entropy = token_logprobs(hidden, self.head.weight, tgt, bias=self.head.bias,
                                                   temperature=temperature, return_entropy=True)
                    out[k].append((logp.float().cpu().numpy(), entropy.float().cpu().numpy()))
                if progress:
                    progress(len(response))
        return out
