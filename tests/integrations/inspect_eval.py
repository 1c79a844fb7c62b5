"""A real Inspect eval with passkcore's reducers and metric, on the offline mockllm/model provider with
scripted outputs; run by tests/integrations/test_inspect.py in its own process (Inspect's event loop
leaves streams for the garbage collector, which pytest's warnings-as-errors would turn into failures):

    python tests/integrations/inspect_eval.py LOG_DIR

prints the log's path.
"""

from __future__ import annotations

import sys
from typing import Any

from inspect_ai import Epochs, Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, get_model
from inspect_ai.scorer import match
from inspect_ai.solver import generate

from passkcore.integrations.inspect import passk_g_pass_at, passk_maj_at, passk_pass_at, passk_pass_at_k

# Per question, its 6 epochs' outputs (match() wants the target at the end).
OUTPUTS = {"What is 1+1?": ["2", "3", "2", "3", "4", "2"],   # c = 3; wrong answers 3, 3, 4
           "What is 2+2?": ["5", "5", "4", "5", "6", "6"],   # c = 1; wrong 5, 5, 5, 6, 6
           "What is 3+3?": ["6", "6", "6", "6", "6", "6"],   # c = 6
           "What is 4+4?": ["1", "2", "3", "4", "5", "7"]}   # c = 0
TARGETS = {"What is 1+1?": "2", "What is 2+2?": "4", "What is 3+3?": "6", "What is 4+4?": "8"}
EPOCHS = 6


def scripted() -> Any:
    calls: dict[str, int] = {}

    def output(messages: Any, tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        question = messages[-1].text
        i = calls.get(question, 0)
        calls[question] = i + 1
        return ModelOutput.from_content(model="mockllm", content=OUTPUTS[question][i])

    return output


async def words(text: str) -> int:  # Inspect's tiktoken counter needs a file from the network
    return max(1, len(text.split()))


def main(log_dir: str) -> None:
    model = get_model("mockllm/model", custom_outputs=scripted())
    model.api.count_text_tokens = words  # type: ignore[method-assign]
    reducers = [passk_pass_at(1), passk_pass_at(4), passk_maj_at(3), passk_g_pass_at(4, tau=0.5)]
    task = Task(dataset=[Sample(input=q, target=t, id=f"q{i}") for i, (q, t) in enumerate(TARGETS.items())],
                solver=generate(), scorer=match(), metrics=[passk_pass_at_k(4, resamples=400)],
                epochs=Epochs(EPOCHS, reducers), name="arith")
    (result,) = eval(task, model=model, log_dir=log_dir, log_format="json", display="none", max_connections=1,
                     max_samples=1)
    if result.status != "success":
        raise SystemExit(f"eval {result.status}: {result.error.message if result.error else ''}")
    print(result.location)


if __name__ == "__main__":
    main(sys.argv[1])
