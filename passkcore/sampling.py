"""Drawing n samples per problem with vLLM and turning its outputs into sample rows.

Large n is split into requests of ``chunk`` samples, each with its own seed derived from (seed,
problem_id, chunk index): a resumed run asks only for the chunks it is missing, under the same
seeds. On a CPU the engine usually runs in the calling process (``engine_layout``); elsewhere vLLM spawns
its engine core process, so scripts that start ``vllm.LLM`` need an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import sys
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from passkcore.extras import require
from passkcore.images import images_digest
from passkcore.problems import Problem
from passkcore.templates import resolve_template


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling settings; the defaults are the RLVR paper's (temperature 0.6, top-p 0.95)."""

    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int = 0
    chunk: int = 16

    def __post_init__(self) -> None:
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {self.chunk}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_config(sampling: Any) -> SamplingConfig:
    """A SamplingConfig from a SamplingConfig, a ``vllm.SamplingParams`` or a dict of its fields."""
    if isinstance(sampling, SamplingConfig):
        return sampling
    if sampling is None:
        return SamplingConfig()
    if isinstance(sampling, dict):
        return SamplingConfig(**sampling)
    fields = {name: getattr(sampling, name) for name in ("temperature", "top_p", "max_tokens", "seed")
              if getattr(sampling, name, None) is not None}
    return SamplingConfig(**fields)


def configure_cpu_env() -> None:
    """vLLM-on-CPU defaults measured here: a 2 GiB KV cache and OpenMP threads on every core (its
    default binds one core). Variables the user already set win."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{max(0, (os.cpu_count() or 1) - 1)}")


MULTIPROCESSING_ENV = "VLLM_ENABLE_V1_MULTIPROCESSING"


@contextmanager
def engine_layout(kwargs: dict[str, Any]) -> Iterator[bool]:
    """Around ``vllm.LLM(**kwargs)``: on a CPU with one worker, the engine core and its worker run in
    the calling process (vLLM's ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` and its ``uni`` executor, added
    to ``kwargs``); yields whether they do.

    By default vLLM spawns two processes (engine core, then worker) and each imports torch, vLLM and
    transformers again: SmolLM2's engine took 29-31 s to start and 5 s to shut down that way, against
    12-13 s and 1.2 s in process, at the same sampling speed (326-349 against 290-305 tokens/s;
    2026-12-02, 2 cores); a second engine in the same process starts in ~3 s. Kept separate: GPUs
    (the engine process overlaps scheduling with the GPU's work), tensor-parallel engines, callers
    that set ``VLLM_ENABLE_V1_MULTIPROCESSING`` or ``distributed_executor_backend``, and processes
    that loaded llvmlite (numba's backend; passkcore's CPU head uses it): vLLM 0.32's CPU kernel
    registration scans every loaded module and fails on llvmlite's library object
    ("'_lib_fn_wrapper' object has no attribute 'get'"). The variable is set only while the engine
    is built (vLLM reads it then), so nothing else in the process, or its children, inherits it. In
    process, vLLM's CPU worker makes ``torch.set_num_threads`` a no-op (``shutdown_engine`` puts torch's
    back once no engine is open) and seeds the global random generators for the rest of the process;
    set ``VLLM_ENABLE_V1_MULTIPROCESSING=1`` to avoid both."""
    import torch

    if (MULTIPROCESSING_ENV in os.environ or torch.cuda.is_available()
            or kwargs.get("tensor_parallel_size", 1) != 1 or "distributed_executor_backend" in kwargs):
        yield False
        return
    inside = "llvmlite.binding.ffi" not in sys.modules
    if inside:
        kwargs["distributed_executor_backend"] = "uni"
    os.environ[MULTIPROCESSING_ENV] = "0" if inside else "1"
    envs = sys.modules.get("vllm.envs")  # only an imported vLLM can have cached the variable
    if envs is not None:
        envs.disable_envs_cache()  # an in-process engine before this one cached it
    try:
        yield inside
    finally:
        del os.environ[MULTIPROCESSING_ENV]


def cpu_has_bf16(cpuinfo: Optional[str] = None) -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16 on x86, BF16 on Arm), read
    from ``cpuinfo`` (default /proc/cpuinfo's text); False where that cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            return bool(set(line.split(":", 1)[-1].split()) & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def default_dtype() -> Literal["bfloat16", "float32"]:
    """bf16 on a GPU and on CPUs with bf16 arithmetic; fp32 on other CPUs, where vLLM emulates bf16:
    on this project's AVX2-only EPYC, 320 sequences of <= 128 tokens ran at 41 tokens/s in bf16 and
    228 tokens/s in fp32 (vLLM 0.32, 2 cores). ``PASSKCORE_DTYPE`` (bfloat16 or float32) overrides it,
    so a whole test suite can take the other path on any machine."""
    forced = os.environ.get(DTYPE_ENV, "").strip()
    if forced and forced != "auto":
        return check_dtype(forced, DTYPE_ENV)  # type: ignore[return-value]
    import torch

    return "bfloat16" if torch.cuda.is_available() or cpu_has_bf16() else "float32"


DTYPES = ("auto", "bfloat16", "float32")
DTYPE_ENV = "PASSKCORE_DTYPE"


def check_dtype(dtype: Any, field: str = "dtype") -> str:
    """``dtype`` if it is one of DTYPES, else a ValueError naming ``field`` and the value."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"{field} must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def resolve_dtype(dtype: Optional[str] = None) -> Literal["bfloat16", "float32"]:
    """The engine dtype for ``dtype``: bfloat16 or float32 as given; ``auto`` (or None) is
    ``default_dtype()``, this machine's fastest."""
    chosen = check_dtype("auto" if dtype is None else dtype)
    return default_dtype() if chosen == "auto" else chosen  # type: ignore[return-value]


def make_llm(model: str = "smollm2-135m", *, dtype: Any = None, max_model_len: int = 2048, seed: int = 0,
             **kwargs: Any) -> Any:
    """A ``vllm.LLM`` for a model name or local directory (eager mode: no graph capture on CPU), in
    ``dtype``: ``auto`` (default: ``default_dtype()``), ``bfloat16``, ``float32`` or any dtype vLLM takes.

    Chunked prefill is off by default: when a seeded request's prompt is split across scheduler
    steps, vLLM 0.32 rewinds that request's generator with ``set_offset``, which CPU generators do
    not support, and the engine dies ("CPU Generator does not use offset", seen here with 256 seeded
    sequences of ~70 prompt tokens against the 4096-token step budget).
    """
    require("sampling", "vllm", by="passkcore.sampling.make_llm")
    from passkcore.models import resolve_model

    path = resolve_model(model)
    configure_cpu_env()
    from vllm import LLM

    kwargs.setdefault("enable_chunked_prefill", False)
    # vLLM's checkpoint-loading bar ignores tqdm's environment defaults: it follows TQDM_DISABLE here,
    # which the quiet console (passkcore.quiet, every command without --verbose) sets.
    kwargs.setdefault("use_tqdm_on_load", os.environ.get("TQDM_DISABLE", "0").lower() in ("0", "", "false"))
    engine_dtype = default_dtype() if dtype in (None, "auto") else dtype  # other vLLM dtypes pass through
    with engine_layout(kwargs) as inside:
        if inside and not _SET_NUM_THREADS:
            import torch

            _SET_NUM_THREADS.append(torch.set_num_threads)
        llm = LLM(model=str(path), dtype=engine_dtype, max_model_len=max_model_len, seed=seed,
                  enforce_eager=kwargs.pop("enforce_eager", True), **kwargs)
    if not OPEN_ENGINES and not _EXIT_HOOK:
        # Registered after vLLM's own exit hooks (atexit runs last-in first-out): ours runs first.
        atexit.register(shutdown_open_engines)
        _EXIT_HOOK.append(True)
    OPEN_ENGINES.add(llm)
    return llm


# Every engine make_llm started and nobody shut down yet. An engine left to the garbage collector at
# interpreter exit can abort the process after its work is done ("terminate called without an active
# exception", SIGABRT: 4 of 7 runs of a script that dropped two Scorers with `del`), so whatever is
# still open is shut down by an exit hook, before the interpreter tears its modules down.
OPEN_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()
_EXIT_HOOK: list[bool] = []
# torch's own set_num_threads, kept before the first in-process engine's CPU worker replaced it with a
# no-op; put back once no engine is open, so that what runs after sampling in the same process (the
# CPU scorer's single-threaded workers, `passk demo`) can set its threads again.
_SET_NUM_THREADS: list[Any] = []


def shutdown_engine(llm: Any) -> None:
    """Stops a vLLM engine's processes and threads now; a second call, or None, does nothing."""
    if llm is None:
        return
    OPEN_ENGINES.discard(llm)
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None:
        core.shutdown()
    if not OPEN_ENGINES and _SET_NUM_THREADS:
        import torch

        torch.set_num_threads = _SET_NUM_THREADS[0]


def shutdown_open_engines() -> None:
    """Stops every engine ``make_llm`` started that is still open (the interpreter's exit hook)."""
    for llm in list(OPEN_ENGINES):
        shutdown_engine(llm)


def prompt_token_ids(tokenizer: Any, problem: Problem, template: Any = None) -> list[int]:
    """The prompt as token ids under ``template`` (a name, file or PromptTemplate; default ``chat``):
    the exact ids the sampler conditions on."""
    return resolve_template(template).token_ids(tokenizer, problem)


def request_seed(seed: int, problem_id: str, chunk_index: int) -> int:
    digest = hashlib.blake2b(f"{seed}\x1f{problem_id}\x1f{chunk_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # fits int64


def rows_from_request_outputs(
    outputs: Sequence[Any],
    problems: Sequence[Problem],
    *,
    model: str = "model",
    seeds: Optional[Sequence[int]] = None,
    first_index: Optional[Sequence[int]] = None,
) -> list[dict[str, Any]]:
    """Sample rows from vLLM ``RequestOutput`` objects, one per problem in the same order.

    A completion's ``sample_index`` is its ``index`` plus ``first_index[i]`` (default 0); ``seeds[i]`` is
    recorded as the request's seed (-1 when unknown). ``correct`` stays null until verification.
    """
    if len(outputs) != len(problems):
        raise ValueError(f"{len(outputs)} request outputs for {len(problems)} problems")
    rows = []
    for i, (out, problem) in enumerate(zip(outputs, problems)):
        prompt_ids = [int(t) for t in (out.prompt_token_ids or [])]
        for completion in out.outputs:
            rows.append({
                "model": model,
                "problem_id": problem.id,
                "sample_index": int(completion.index) + (first_index[i] if first_index else 0),
                "seed": int(seeds[i]) if seeds else -1,
                "prompt_token_ids": prompt_ids,
                "response_token_ids": [int(t) for t in completion.token_ids],
                "response": completion.text,
                "finish_reason": str(completion.finish_reason),
                "cumulative_logprob": completion.cumulative_logprob,
                "correct": None,
                "extracted_answer": None,
                "verifier": None,
            })
    return rows


@dataclass(frozen=True)
class PlannedRequest:
    problem: Problem
    chunk_index: int
    size: int
    wanted: frozenset[int]


def plan_requests(problems: Iterable[Problem], n: int, config: SamplingConfig,
                  have: Callable[[str], Collection[int]]) -> list[PlannedRequest]:
    """The chunks still missing: chunk j of a problem covers sample indices [j*chunk, (j+1)*chunk)."""
    return list(iter_requests(problems, n, config, have))


def iter_requests(problems: Iterable[Problem], n: int, config: SamplingConfig,
                  have: Callable[[str], Collection[int]]) -> Iterator[PlannedRequest]:
    """``plan_requests`` one request at a time (a plan of a million samples is never a list of sets)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    for problem in problems:
        stored = have(problem.id)
        for j, start in enumerate(range(0, n, config.chunk)):
            indices = frozenset(range(start, min(n, start + config.chunk))).difference(stored)
            if indices:
                yield PlannedRequest(problem, j, min(n, start + config.chunk) - start, indices)


def request_inputs(llm: Any, requests: Sequence[PlannedRequest], sampling: SamplingConfig,
                   prompts: Optional[dict[str, list[int]]] = None,
                   template: Any = None) -> tuple[list[dict[str, Any]], list[Any], list[int]]:
    """vLLM prompts, sampling parameters and seeds of planned requests. ``prompts`` caches prompt
    token ids by problem id; ``template`` makes them (default ``chat``)."""
    from vllm import SamplingParams

    prompts = {} if prompts is None else prompts
    tokenizer = llm.get_tokenizer()
    for r in requests:
        if r.problem.id not in prompts:
            prompts[r.problem.id] = prompt_token_ids(tokenizer, r.problem, template)
    seeds = [request_seed(sampling.seed, r.problem.id, r.chunk_index) for r in requests]
    params = [SamplingParams(n=r.size, temperature=sampling.temperature, top_p=sampling.top_p,
                             max_tokens=sampling.max_tokens, seed=s, logprobs=0) for r, s in zip(requests, seeds)]
    # Token-id prompts (vLLM's TokensPrompt is a TypedDict: a plain dict at run time); a problem's
    # images go with it as multimodal data, vLLM expanding each placeholder to the image's tokens.
    return [multimodal_prompt(prompts[r.problem.id], r.problem) for r in requests], params, seeds


def multimodal_prompt(token_ids: list[int], problem: Problem) -> dict[str, Any]:
    """A vLLM token prompt, with the problem's images (PIL, opened now) when it has any."""
    if not problem.images:
        return {"prompt_token_ids": token_ids}
    from passkcore.images import open_images

    return {"prompt_token_ids": token_ids,
            "multi_modal_data": {"image": open_images(problem.images, f"problem {problem.id!r}: field 'images'")}}


def request_rows(outputs: Sequence[Any], requests: Sequence[PlannedRequest], seeds: Sequence[int],
                 sampling: SamplingConfig, model: str) -> list[dict[str, Any]]:
    """Sample rows of finished requests, keeping only each request's wanted indices."""
    rows: list[dict[str, Any]] = []
    for out, request, seed in zip(outputs, requests, seeds):
        made = rows_from_request_outputs([out], [request.problem], model=model, seeds=[seed],
                                         first_index=[request.chunk_index * sampling.chunk])
        digest = images_digest(request.problem.images)
        rows.extend({**row, "image_digest": digest} for row in made if row["sample_index"] in request.wanted)
    return rows


def generate_requests(llm: Any, requests: Sequence[PlannedRequest], sampling: SamplingConfig, *, model: str = "model",
                      prompts: Optional[dict[str, list[int]]] = None, template: Any = None) -> list[dict[str, Any]]:
    """Sample rows for one batch of planned requests (one ``llm.generate`` call), keeping only each
    request's wanted indices. ``prompts`` caches prompt token ids by problem id; ``template`` makes
    them (default ``chat``)."""
    inputs, params, seeds = request_inputs(llm, requests, sampling, prompts, template)
    outputs = llm.generate(inputs, params, use_tqdm=False)
    return request_rows(outputs, requests, seeds, sampling, model)


def stream_requests(llm: Any, groups: Iterable[tuple[Any, Sequence[PlannedRequest]]], sampling: SamplingConfig, *,
                    model: str = "model", window: int = 256, prompts: Optional[dict[str, list[int]]] = None,
                    template: Any = None) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """Yields ``(tag, rows)`` for each group of requests as soon as all of its requests finished.

    The engine is kept full through vLLM's step loop (``LLM.enqueue``, ``llm_engine.step``): at
    least ``window`` requests are queued while any are left, topped up as groups finish, so no group
    waits for another's longest sequence and nothing is held once its group is yielded. Seeds are
    per request, as in ``generate_requests``: the same samples, whatever the window. A consumer that
    stops early (an exception, a kill) leaves no request behind: the unfinished ones are aborted."""
    engine = llm.llm_engine
    pending: dict[str, tuple[int, int]] = {}  # request id -> (group, position in the group)
    open_groups: dict[int, list[Any]] = {}  # group -> [tag, requests, seeds, outputs, unfinished]
    external: dict[str, str] = {}
    source = iter(enumerate(groups))
    prompts = {} if prompts is None else prompts

    def top_up() -> None:
        while len(pending) < window:
            nxt = next(source, None)
            if nxt is None:
                return
            gid, (tag, requests) = nxt
            inputs, params, seeds = request_inputs(llm, requests, sampling, prompts, template)
            ids = llm.enqueue(inputs, params, use_tqdm=False)
            open_groups[gid] = [tag, list(requests), seeds, [None] * len(ids), len(ids)]
            pending.update({rid: (gid, pos) for pos, rid in enumerate(ids)})
            # enqueue answers vLLM's internal ids ("7-1a2b3c4d"); outputs carry the external "7".
            external.update({rid.rsplit("-", 1)[0]: rid for rid in ids})
            if not ids:
                open_groups[gid][4] = 0

    try:
        top_up()
        while open_groups:
            done = [g for g, state in open_groups.items() if state[4] == 0]
            for gid in sorted(done):
                tag, requests, seeds, outputs, _ = open_groups.pop(gid)
                yield tag, request_rows(outputs, requests, seeds, sampling, model)
            if not open_groups:
                top_up()
                continue
            if not engine.has_unfinished_requests():
                raise RuntimeError(f"vLLM finished with {len(pending)} requests unanswered")
            for out in engine.step():
                rid = out.request_id if out.request_id in pending else external.get(out.request_id)
                if out.finished and rid in pending:
                    external.pop(out.request_id, None)
                    gid, pos = pending.pop(rid)
                    open_groups[gid][3][pos] = out
                    open_groups[gid][4] -= 1
            top_up()
    finally:
        if pending:
            engine.abort_request(list(pending), internal=True)


def sample(
    llm: Any,
    problems: Sequence[Problem],
    n: int,
    sampling: Any = SamplingConfig(),
    *,
    model: str = "model",
    have: Optional[Callable[[str], set[int]]] = None,
    on_rows: Optional[Callable[[list[dict[str, Any]]], None]] = None,
    batch_requests: int = 16,
    template: Any = None,
) -> list[dict[str, Any]]:
    """Draws n samples per problem; ``have(problem_id)`` lists indices already stored (skipped), and
    ``on_rows`` receives each finished batch (to store it before the next one starts). ``sampling`` is
    a SamplingConfig, a ``vllm.SamplingParams`` (its temperature, top_p, max_tokens, seed) or a dict;
    ``template`` is the prompt template (``passkcore.templates``; default ``chat``)."""
    template = resolve_template(template)
    sampling = as_config(sampling)
    plan = plan_requests(problems, n, sampling, have or (lambda _: set()))
    groups = ((b, plan[b:b + batch_requests]) for b in range(0, len(plan), batch_requests))
    all_rows: list[dict[str, Any]] = []
    for _, rows in stream_requests(llm, groups, sampling, model=model, template=template):
        if on_rows:
            on_rows(rows)
        all_rows.extend(rows)
    return all_rows
