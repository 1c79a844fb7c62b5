"""Runs lighteval's own Pipeline (transformers backend, CPU) on a custom task with passkcore's metrics.

Usage: run.py MODEL_DIR OUTPUT_DIR TASK_SPEC. Two shims for running offline beside math-verify, neither
touching the code under test: lighteval checks at import that latex2sympy2_extended is its pinned 1.0.6
(for its own extractive-match metrics, unused here; passkcore needs math-verify's pin), so that one check
is answered for the installed version; and lighteval's registry imports every built-in task module, one
of which (tiny_benchmarks) downloads from GitHub at import time, so only the custom tasks are loaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lighteval.utils.imports as lighteval_imports

_available = lighteval_imports.is_package_available


def _available_but_latex_pin(package):  # noqa: ANN001, ANN202
    if getattr(package, "name", None) == "latex2sympy2_extended":
        return True
    return _available(package)


lighteval_imports.is_package_available = _available_but_latex_pin

from lighteval.logging.evaluation_tracker import EvaluationTracker  # noqa: E402
from lighteval.models.model_input import GenerationParameters  # noqa: E402
from lighteval.models.transformers.transformers_model import TransformersModelConfig  # noqa: E402
from lighteval.pipeline import ParallelismManager, Pipeline, PipelineParameters  # noqa: E402
from lighteval.tasks.registry import Registry  # noqa: E402

Registry._load_from_files = staticmethod(lambda files, prefix: {})  # type: ignore[method-assign]
Registry._load_from_subdirs = staticmethod(lambda subdirs: {})  # type: ignore[method-assign]


def sampling_model(model_dir: Path, into: Path) -> Path:
    """The model's files linked into ``into`` with ``do_sample: true`` in its generation config: lighteval's
    transformers backend asks for n samples per prompt but leaves do_sample to the model's own config."""
    into.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        if f.name != "generation_config.json" and not (into / f.name).exists():
            (into / f.name).symlink_to(f.resolve())
    gen_path = model_dir / "generation_config.json"
    gen = json.loads(gen_path.read_text()) if gen_path.is_file() else {}
    (into / "generation_config.json").write_text(json.dumps({**gen, "do_sample": True}))
    return into


def main() -> None:
    model_dir, out_dir, tasks = sys.argv[1], sys.argv[2], sys.argv[3]
    model_dir = str(sampling_model(Path(model_dir), Path(out_dir) / "model"))
    tracker = EvaluationTracker(output_dir=out_dir, save_details=True)
    params = PipelineParameters(launcher_type=ParallelismManager.NONE,
                                custom_tasks_directory=str(Path(__file__).with_name("passk_tasks.py")))
    config = TransformersModelConfig(model_name=model_dir, dtype="float32", batch_size=4, device="cpu",
                                     generation_parameters=GenerationParameters(temperature=1.0, seed=0))
    pipeline = Pipeline(tasks=tasks, pipeline_parameters=params, evaluation_tracker=tracker, model_config=config)
    pipeline.evaluate()
    pipeline.save_and_push_results()
    print("PASSK-RESULTS " + json.dumps(pipeline.get_results()["results"], default=str))


if __name__ == "__main__":
    main()
