"""A model directory with a given config.json and random weights, for GPU throughput benches on a
machine that neither holds nor may fetch the real weights (the lent GPU machine has no network, and
carries at most 64 MiB). A forward pass costs the same whatever the weights are; the log-probs it
gives are meaningless, so only timings, memory and path-against-path differences are read off it.

    python tools/random_weights_model.py benches/model_configs/qwen2.5-7b.json /tmp/qwen-random

The weights are drawn on the GPU when there is one (7.6 B parameters take minutes on a CPU) and saved
in bfloat16 (transformers' init, ``initializer_range`` of the config, seed 0).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="a config.json")
    parser.add_argument("out", type=Path, help="the model directory to write")
    args = parser.parse_args()
    json.loads(args.config.read_text())  # a clear error for a file that is not JSON
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.config, args.out / "config.json")
    config = AutoConfig.from_pretrained(args.out)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(args.out)
    print(f"{args.out}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters, random, bfloat16")


if __name__ == "__main__":
    main()
