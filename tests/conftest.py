"""Shared fixtures and constants. Without CUDA, Triton runs in its interpreter: the variable is set
here, before any test module is collected, because Triton's own @jit helpers (tl.max, tl.sum, ...) are
decorated once, when triton.language is first imported. A stack that imports it at collection
(lighteval, verl, transformers' integrations) would otherwise fix them as compiled functions, and every
interpreted kernel calling them fails ("Cannot call @triton.jit'd outside of the scope of a kernel";
8 kernel tests in a fresh clone's suite, depending on which test files a worker collected first)."""

from __future__ import annotations

import math
import os
import re
from fractions import Fraction
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from passkcore.pipeline.store import SampleStore  # noqa: E402 - after the interpreter choice above
from passkcore.problems import arithmetic  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MATH500 = ROOT / "data" / "math500_qwen2.5-7b_base_vs_simplerl.csv"
# A log line of vLLM's (or of a Ray worker forwarding one): quiet commands print none.
ENGINE_LINE = re.compile(r"^(\(\w+ pid=\d+\) )?(INFO|WARNING|DEBUG) \d\d-\d\d \d\d:\d\d:\d\d \[", re.M)
# Mean pass@k of data/math500_qwen2.5-7b_base_vs_simplerl.csv at k = 1, 2, 4, ..., 128, as published.
PUBLISHED = {
    "base": [0.613921875, 0.7340831692913385, 0.8143581835395576, 0.8681727477486968,
             0.9043392837691936, 0.9292921989161737, 0.9474446568195055, 0.962],
    "simplerl": [0.779328125, 0.8235853838582677, 0.8567501336707911, 0.8829698676500476,
                 0.902217497649716, 0.9150862887604729, 0.9234943668139742, 0.93],
}


def ulp_distance(value: float, exact: Fraction) -> float:
    """How many ulps of the correctly rounded exact value separate it from `value`."""
    target = float(exact)  # Fraction -> float is correctly rounded, subnormals included
    if value == target:
        return 0.0
    return abs(value - target) / math.ulp(target)


@pytest.fixture
def math500_path() -> Path:
    return MATH500


def fake_run(root: Path, models: dict[str, int]) -> SampleStore:
    """Two arithmetic problems, 4 samples each; model m answers correctly in its first models[m]."""
    problems = arithmetic(2, seed=5)
    store = SampleStore.open_run(root, problems, {"spec": "arith", "limit": 2, "seed": 5})
    rows = []
    for model, right in models.items():
        for p in problems:
            for i in range(4):
                answer = p.answer if i < right else "-1"
                rows.append({"model": model, "problem_id": p.id, "sample_index": i, "seed": 1,
                             "prompt_token_ids": [1], "response_token_ids": [2], "response": f"\\boxed{{{answer}}}",
                             "finish_reason": "stop", "cumulative_logprob": -1.0})
    store.write_samples(rows)
    return store


def tiny_llama(folder: Path) -> Path:
    """A random-weights Llama (2 layers, hidden 32) over SmolLM2's vocabulary: the scorer's whole path
    in milliseconds an item (the synthetic runs' token ids are below 49,152)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Idefics3 checkpoint with random weights, built once per session (tests/tiny_vlm.py)."""
    from tests.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm") / "model")


def make_image(color: tuple[int, int, int], size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    """Encoded bytes of a one-colour image with a white square in a corner (PIL)."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).rectangle([2, 2, 12, 12], fill=(255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()

