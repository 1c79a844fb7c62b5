"""The stages as calls: plan, then run the items with the chosen executor (``cluster`` None: this
process; a ``Cluster``: Ray). ``passk sample|verify|score|counts`` and the demo call these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import pyarrow as pa
import pyarrow.parquet as pq

from passkcore._atomic import write_atomically
from passkcore.images import keep_images
from passkcore.pipeline.executors import Cluster, Progress, Stage, StageStats, run_local, run_ray
from passkcore.pipeline.run import SCORE_SCHEMA, check_label, read_shards, shard_files
from passkcore.pipeline.stages import SampleStage, ScoreStage, VerifyStage
from passkcore.pipeline.store import SampleStore
from passkcore.sampling import SamplingConfig, check_dtype, resolve_dtype
from passkcore.scoring import DEFAULT_BACKEND
from passkcore.verify.judge import verifier_name
from passkcore.verify.packages import resolve_packages
from passkcore.visual import is_multimodal

PathLike = Union[str, Path]


def execute(stage: Stage, cluster: Optional[Cluster], progress: Progress = None) -> StageStats:
    """Plans ``stage`` (key columns only) and runs its items in this process or on Ray."""
    items = stage.plan()
    if cluster is None:
        return run_local(stage, items, progress)
    return run_ray(stage, items, cluster, progress)


def opened(run: Union[PathLike, SampleStore]) -> SampleStore:
    """The run as an open store: a store handed in is used as it is (opened once, by its caller)."""
    return run if isinstance(run, SampleStore) else SampleStore(run)


def open_sample_run(out: Union[PathLike, SampleStore], problems: str, limit: Optional[int] = None,
                    problem_seed: int = 0, fields: Optional[dict[str, Any]] = None) -> SampleStore:
    """Creates (or reopens) the run ``passk sample`` writes into, over the problems it names; a store
    handed in must hold exactly that problem set."""
    from passkcore.problem_files import load_problems

    chosen = load_problems(problems, limit, seed=problem_seed, fields=fields)
    spec = {"spec": problems, "limit": limit, "seed": problem_seed, **({"fields": fields} if fields else {})}
    if not isinstance(out, SampleStore):
        return SampleStore.open_run(out, chosen, spec)
    expected = SampleStore.problem_set(keep_images(out.root, chosen, write=False), spec)
    if out.manifest.get("problems") != expected:
        raise ValueError(f"{out.root} already holds a run over other problems ({out.manifest.get('problems')})")
    return out


def sample(
    out: Union[PathLike, SampleStore], *, model: str, problems: str, n: int, label: Optional[str] = None, limit: Optional[int] = None,
    sampling: SamplingConfig = SamplingConfig(),  # noqa: B008 - frozen
    problem_seed: int = 0, batch_requests: int = 16, llm: Any = None, tensor_parallel_size: int = 1,
    window: int = 256, cluster: Optional[Cluster] = None, progress: Progress = None, template: Any = None,
    fields: Optional[dict[str, Any]] = None, dtype: str = "auto",
) -> tuple[SampleStore, StageStats]:
    """Draws the samples a run lacks for one model label. ``template`` is the prompt template
    (``chat`` by default, ``raw``, a built-in prompt or a Jinja file: ``passkcore.templates``), kept
    in the manifest with the label's settings; ``fields`` maps a published benchmark file's fields
    (``passkcore.problem_files``). ``dtype`` is the engine's (``sample_dtype``), kept in the manifest:
    a label resumed in another dtype fails, since its samples would come from other arithmetic. An
    unknown model, template or a bad argument fails here, before anything is written."""
    from passkcore.models import resolve_model
    from passkcore.templates import resolve_template

    for name, value in (("n", n), ("batch_requests", batch_requests), ("window", window)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    label = check_label(label or Path(model).name)
    path = resolve_model(model)  # converted once, on the driver's file system, before any replica starts
    prompt_template = resolve_template(template)
    store = open_sample_run(out, problems, limit, problem_seed, fields)
    with_images = next((p.id for p in store.problems() if p.images), None)
    if with_images is not None and not is_multimodal(path):
        raise ValueError(f"problem {with_images!r} has images but the model {model!r} is text-only (its config has "
                         "no vision_config): sample image problems with a vision-language model")
    settings = {"model": model, "n": n, **sampling.as_dict()}
    known = store.manifest["models"].get(label)
    if not (known is not None and "template" not in known and prompt_template.chat):
        settings.update(prompt_template.settings())  # runs made before templates were chat runs: resumed as such
    engine_dtype = sample_dtype(store, label, dtype)
    if not (known is not None and "dtype" not in known and dtype == "auto"):
        settings["dtype"] = engine_dtype  # runs made before dtypes were recorded resume without one
    store.register_model(label, settings)
    # Resolved here, on the driver: every Ray replica samples in the same dtype whatever its CPU.
    stage = SampleStage(str(store.root.resolve()), label, str(path), n, sampling, batch_requests=batch_requests,
                        tensor_parallel_size=tensor_parallel_size, window=window, llm=llm, dtype=engine_dtype)
    stage.attach(store)  # this process works on the store it opened (Ray workers open their own)
    return store, execute(stage, cluster, progress)


def sample_dtype(store: SampleStore, label: str, dtype: str = "auto") -> str:
    """The dtype a label samples in: ``bfloat16`` or ``float32`` as asked; with ``auto``, the one the run
    recorded for the label (a resumed label keeps its arithmetic), else this machine's default
    (``passkcore.sampling.default_dtype``)."""
    check_dtype(dtype)
    known = store.manifest["models"].get(label) or {}
    if dtype == "auto" and known.get("dtype") in ("bfloat16", "float32"):
        return str(known["dtype"])
    return resolve_dtype(dtype)


def verify(run: Union[PathLike, SampleStore], *, options: Optional[Mapping[str, Any]] = None, workers: Optional[int] = None,
           batch: int = 256, cluster: Optional[Cluster] = None, progress: Progress = None,
           ) -> tuple[SampleStore, StageStats]:
    """Verdicts for every stored sample without one; ``options`` go to ``verify_rows`` unchanged (their
    ``allow_packages``, resolved, is recorded in the manifest's ``verify``). On Ray each task runs one
    verifier process (Ray schedules one task per CPU)."""
    store = opened(run)
    packages = (options or {}).get("allow_packages") or ()
    store.record_verifier({"verifier": verifier_name(packages), **resolve_packages(packages).record()})
    stage = VerifyStage(str(store.root.resolve()), dict(options or {}), workers=1 if cluster else workers, batch=batch)
    stage.attach(store)
    return store, execute(stage, cluster, progress)


def score(run: Union[PathLike, SampleStore], *, scorer: str = "smollm2-135m", backend: str = DEFAULT_BACKEND, temperatures: Sequence[float] = (1.0,),
          label: Optional[str] = None, batch: int = 256, cluster: Optional[Cluster] = None,
          progress: Progress = None, dtype: str = "float32") -> tuple[SampleStore, list[str], StageStats]:
    """Scores every stored sample not yet scored under ``scorer`` at each temperature; returns the
    store, the scorer labels (one per temperature) and the stage's figures. ``dtype`` (float32, or
    bfloat16: faster where the CPU has bf16 arithmetic, not within 1e-4 of fp32) is kept in the
    manifest per label: a label scored in one dtype refuses the other."""
    store = opened(run)
    stage = ScoreStage(str(store.root.resolve()), scorer, backend, label, temperatures, batch=batch, dtype=dtype)
    for name in stage.labels:
        store.record_scorer(name, {"dtype": dtype})
    stage.attach(store)
    return store, list(stage.labels), execute(stage, cluster, progress)


def export_scores(store: SampleStore, labels: Sequence[str], out: PathLike) -> int:
    """These scorers' scores to one Parquet file, shard by shard (never the whole table in memory)."""
    files = [p for label in labels for p in shard_files(store.folder("scores", label))]

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, SCORE_SCHEMA) as writer:
            for path in files:
                writer.write_table(read_shards([path], SCORE_SCHEMA).cast(SCORE_SCHEMA))

    write_atomically(out, write)
    return len(files)


def write_counts(run: Union[PathLike, SampleStore], out: PathLike, table: Optional[pa.Table] = None) -> pa.Table:
    """``problem_id, model, n, c`` of a verified run (or ``table``), to Parquet (or CSV by extension)."""
    store = opened(run)
    table = store.counts() if table is None else table
    if Path(out).suffix.lower() == ".csv":
        import pyarrow.csv as pcsv

        write_atomically(out, lambda tmp: pcsv.write_csv(table, tmp))
    else:
        write_atomically(out, lambda tmp: pq.write_table(table, tmp))
    return table
