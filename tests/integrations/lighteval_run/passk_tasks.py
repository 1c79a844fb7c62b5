"""A lighteval custom task (--custom-tasks) using passkcore's metric objects, on a local JSON dataset."""

from __future__ import annotations

import os

from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc

from passkcore.integrations.lighteval import g_pass_at_k, maj_at_k, pass_at_k


def prompt(line: dict, task_name: str = "") -> Doc:
    return Doc(task_name=task_name, query=f"Question: {line['question']}\nAnswer:", choices=[line["answer"]],
               gold_index=0)


TASKS_TABLE = [
    LightevalTaskConfig(
        name="passk_e2e",
        prompt_function=prompt,
        hf_repo=os.environ["PASSK_E2E_DATA"],
        hf_subset="default",
        evaluation_splits=["test"],
        few_shots_split=None,
        few_shots_select=None,
        generation_size=12,
        stop_sequence=["\n", "Question:"],
        metrics=[pass_at_k(k=[1, 2], n=4), maj_at_k(k=[1, 4], n=4), g_pass_at_k(k=[2, 4], n=4, taus=[0.5, 1.0])],
    )
]
