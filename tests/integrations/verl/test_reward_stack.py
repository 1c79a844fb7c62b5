"""verl's own reward managers (verl 0.9.1's NaiveRewardManager and BatchRewardManager, no training) with
passkcore's compute_score / compute_score_batch plugged in, over a DataProto batch as the trainer builds it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from verl import DataProto
from verl.utils.import_utils import load_extern_object
from verl.workers.reward_manager import BatchRewardManager, NaiveRewardManager

from passkcore.integrations.verl import compute_score, compute_score_batch

STDIO = json.dumps({"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"]})
ROWS = [  # (data source, response, ground truth, expected score)
    ("openai/gsm8k", "48 + 24 = 72, so \\boxed{72}", "72", 1.0),
    ("lighteval/MATH", "\\boxed{\\frac{2}{4}}", "\\frac{1}{2}", 1.0),
    ("math_dapo", "Answer: 5", "6", 0.0),
    ("codecontests", "```python\na, b = map(int, input().split())\nprint(a + b)\n```", STDIO, 1.0),
    ("apps", "```python\nprint(3)\n```", STDIO, 0.0),
    ("aime2024", "\\boxed{9^{9^{9^{9^{9}}}}}", "81", 0.0),
]
PROMPT, RESPONSE = 8, 96


class CharTokenizer:
    """One token per character (ids are code points; 0 pads): decode is all the managers need."""

    def decode(self, ids: torch.Tensor, skip_special_tokens: bool = True) -> str:
        return "".join(chr(int(i)) for i in ids if int(i) != 0)


def batch() -> DataProto:
    prompts = torch.full((len(ROWS), PROMPT), ord("q"), dtype=torch.long)
    responses = torch.zeros((len(ROWS), RESPONSE), dtype=torch.long)
    mask = torch.zeros((len(ROWS), PROMPT + RESPONSE), dtype=torch.long)
    mask[:, :PROMPT] = 1
    for i, (_, text, _, _) in enumerate(ROWS):
        assert len(text) <= RESPONSE
        responses[i, : len(text)] = torch.tensor([ord(c) for c in text])
        mask[i, PROMPT : PROMPT + len(text)] = 1
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "attention_mask": mask},
        non_tensors={
            "data_source": np.array([r[0] for r in ROWS], dtype=object),
            "reward_model": np.array([{"ground_truth": r[2], "style": "rule"} for r in ROWS], dtype=object),
            "extra_info": np.array([{"index": i} for i in range(len(ROWS))], dtype=object),
        },
    )


def check(out: dict, data: DataProto) -> None:
    rewards = out["reward_tensor"]
    lengths = data.batch["attention_mask"][:, PROMPT:].sum(-1)
    expected = [r[3] for r in ROWS]
    # The score sits on each response's last token, nothing elsewhere.
    assert [float(rewards[i, int(lengths[i]) - 1]) for i in range(len(ROWS))] == expected
    assert float(rewards.sum()) == sum(expected)
    info = out["reward_extra_info"]
    assert list(info["acc"]) == [s == 1.0 for s in expected]
    assert info["pred"][0] == "72" and info["pred"][1] == "1/2" and info["pred"][5] is None


@pytest.mark.parametrize("manager", ["naive", "batch"])
def test_verls_reward_managers_with_passkcore(manager: str) -> None:
    data = batch()
    if manager == "naive":
        rm = NaiveRewardManager(CharTokenizer(), num_examine=0, compute_score=compute_score)
    else:
        # reward_kwargs reach compute_score_batch as keywords (verl: reward_model.reward_kwargs).
        rm = BatchRewardManager(CharTokenizer(), num_examine=0, compute_score=compute_score_batch,
                                math_timeout_s=2.0, code_timeout_s=2.0)
    check(rm(data, return_dict=True), data)
    if manager == "batch":
        assert data.batch["acc"].tolist() == [r[3] for r in ROWS]


def test_verl_loads_them_from_the_config_lines() -> None:
    # custom_reward_function.path=pkg://passkcore.integrations.verl, .name=compute_score (or compute_score_batch)
    assert load_extern_object("pkg://passkcore.integrations.verl", "compute_score") is compute_score
    assert load_extern_object("pkg://passkcore.integrations.verl", "compute_score_batch") is compute_score_batch
