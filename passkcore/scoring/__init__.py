"""Teacher-forced scoring: PPL_M(Y | x) of stored samples under a model M, response tokens only.

Backends (``DEFAULT_BACKEND`` ``fused``: why, next to it):
- ``vllm_fused``: vLLM's pooling runner returns every token's final hidden state at vLLM's
  prefill speed (``passkcore.pooled``) and the ``passkcore.kernels`` head computes log-probs and
  entropy of the response tokens from them, at any temperature, without [T, V] logits. Its backbone is
  vLLM's fp32 CPU kernels, not transformers': per-token log-probs differ from the fp32 reference by
  at most 1.2e-4 measured (README). Starting the engine costs 20-70 s on this machine (a second process tree);
- ``fused`` (the default, the exact fp32 path): sequences packed without padding into rows of ``token_budget`` tokens
  (positions restarting per sequence, attention per sequence) through the fp32 backbone; prompt
  positions are dropped and the ``passkcore.kernels`` head computes log-probs and entropy of the
  response tokens without [T, V] logits. On a CPU the backbone of Llama-family models is
  ``passkcore.scoring.decoder`` (a few fused torch calls per layer, weights read from safetensors), one
  pack per worker thread (``passkcore.scoring.cpu``), rows that share a prompt (a study's n responses
  per problem) computing it once per call, every temperature from one pass of head tiles; on a GPU,
  and for other architectures, it is transformers' model with ``passkcore.varlen``'s attention.
  ``dtype=torch.bfloat16`` runs the same path in bf16;
- ``torch``: the reference, padded batches, full fp32 logits -> log_softmax -> gather;
- ``vllm``: ``prompt_logprobs=0`` with ``max_tokens=1`` on the concatenated ids (no entropy).

The fused backend packs rows to a token budget summed over its sequences (no padding); the torch backend
sorts rows by length and pads each batch to its longest row within the budget. On a GPU out-of-memory
error the budget halves and the batch is retried, never dropping a row. Rows that cannot be scored
(longer than the context, empty response, token ids outside the vocabulary) get a ``status`` saying
why and null scores: they never abort the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa

from passkcore.memory import limit_heap_arenas, release_free_memory
from passkcore.sampling import shutdown_engine
from passkcore.varlen import pack_sequences

# The rows this engine returns; the run directory stores them as they are (passkcore.pipeline.run
# imports this schema and stamps its store version on each shard it writes).
SCORE_SCHEMA = pa.schema([
    ("model", pa.string()),
    ("scorer", pa.string()),
    ("problem_id", pa.string()),
    ("sample_index", pa.int32()),
    ("num_tokens", pa.int64()),
    ("sum_logprob", pa.float64()),
    ("mean_logprob", pa.float64()),
    ("ppl", pa.float64()),
    ("mean_entropy", pa.float64()),
    ("status", pa.string()),
])

BACKENDS = ("fused", "torch", "vllm", "vllm_fused")
# The one default of Scorer(), `passk score`, `passk demo` and the pipeline: on CPU the fastest path
# measured, and the only one under the memory target (peak < 1.5 GiB, flat in run size). Measured on
# the quiet 2-core Xeon (docs/benchmarks.md, each backend in its own child, SmolLM2 fp32, 16 responses
# to one prompt): 734 response tokens/s with entropy at 1,165 MiB, against vllm_fused 561 at 4,416 MiB,
# vLLM's prompt_logprobs 503 at 4,134 MiB and the padded torch reference 392 at 1,920 MiB; in the
# issue-42 bench 1.43x vLLM's prompt_logprobs, and 1.16x when no two rows share a prompt.
DEFAULT_BACKEND = "fused"
# `passk score --dtype`: float32 (the default: within 1e-4 of an fp32 transformers forward) or bfloat16
# (faster on CPUs with bf16 arithmetic, measured 1.6-1.9x on the AMX Xeon; per token up to 0.26 nats
# from fp32, 0.05 on average, on the bench rows), never picked silently. A bf16 scorer's label ends in
# ".bf16" unless one is given, so its scores never mix with fp32 ones.
SCORE_DTYPES = ("float32", "bfloat16")
DTYPE_SUFFIX = {"float32": "", "bfloat16": ".bf16"}


def score_torch_dtype(dtype: str) -> Any:
    """The torch dtype of a ``SCORE_DTYPES`` name; a ValueError naming ``dtype`` otherwise."""
    if dtype not in SCORE_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(SCORE_DTYPES)}, got {dtype!r}")
    import torch

    return getattr(torch, dtype)


TokenScores = tuple[np.ndarray, Optional[np.ndarray]]  # per-token log-probs, entropies (None from vLLM)
STATUSES = ("ok", "too_long", "empty_response", "empty_prompt", "bad_token_id")


def _as_rows(rows: Union[pa.Table, Iterable[Mapping[str, Any]]]) -> list[Mapping[str, Any]]:
    return rows.to_pylist() if isinstance(rows, pa.Table) else list(rows)


GPU_BUDGET = 4096
# On CPU the budget sets the activations' share of `passk score`'s peak RSS, not its speed: SmolLM2
# fp32, 256 rows of 128-token responses, 2 cores, runs interleaved: 1,024 tokens 421 and 358 response
# tokens/s at a peak of 1,482 and 1,491 MiB; 4,096 tokens 366 and 347 at 1,565 and 1,598 MiB.
CPU_BUDGET = 1024


def budget_for(device: Any) -> int:
    """The default token budget of a packed batch on this device."""
    return GPU_BUDGET if str(device).startswith("cuda") else CPU_BUDGET


def pack_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Row indices in batches: sorted by length, each batch's padded size (rows x longest) <= budget
    (a single row longer than the budget gets a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class Scorer:
    """Scores (prompt, response) token ids under one model."""

    def __init__(self, model: Union[str, Path] = "smollm2-135m", device: Any = None, dtype: Any = None,
                 backend: str = DEFAULT_BACKEND, *, temperature: float = 1.0, token_budget: Optional[int] = None,
                 label: Optional[str] = None, attn_implementation: Optional[str] = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")
        if token_budget is not None and (isinstance(token_budget, bool) or not isinstance(token_budget, int)
                                         or token_budget < 16):
            raise ValueError(f"token_budget must be an integer of at least 16, got {token_budget!r}")
        from passkcore.models import resolve_model

        self.path = resolve_model(model)
        self.label = label or (str(model) if str(model) == "smollm2-135m" else self.path.name)
        self.backend = backend
        self.temperature = float(temperature)
        self.token_budget = token_budget  # None: budget_for(device)
        import json

        config = json.loads((self.path / "config.json").read_text())
        config = {**config.get("text_config", {}), **config}  # a VLM keeps its language model's in text_config
        self.vocab_size = int(config["vocab_size"])
        self.max_len = int(config.get("max_position_embeddings") or 2048)
        for knob in ("final_logit_softcapping", "logit_scale"):
            if config.get(knob) and backend in ("fused", "vllm_fused"):
                raise ValueError(f"the model's config sets {knob}: the fused head does not apply it; use backend='torch'")
        self._device, self._dtype = device, dtype
        # The fused backend packs sequences without padding and attends per sequence (passkcore.varlen);
        # attn_implementation applies to the padded torch reference. There, eager by default off CUDA:
        # SDPA's CPU kernels give a row hidden states that differ by up to 2.3e-5 depending on how much
        # padding its batch has (measured on SmolLM2), eager gives bit-identical rows in any batch.
        self._attn = attn_implementation
        self._model: Any = None
        self._llm: Any = None
        self._head: Any = None
        self._decoder: Any = None  # passkcore.scoring.decoder.PackedDecoder, on CPU
        self._cpu_decoder_ok = True

    # -- model access -------------------------------------------------------------------------------
    def close(self) -> None:
        """Shuts down the vLLM engine (its processes) if one was started; the Scorer can start it again.
        ``with Scorer(...) as s:``, ``del`` and interpreter exit close it too."""
        llm, self._llm = getattr(self, "_llm", None), None
        shutdown_engine(llm)

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit vLLM's modules may be gone; the exit hook ran first
            pass

    def _cpu_decoder(self) -> Any:
        """The packed CPU decoder (``passkcore.scoring.decoder``) when it computes this model on this
        device; None on a GPU, and for architectures it does not support (transformers' path then)."""
        if self._decoder is None and self._cpu_decoder_ok:
            import torch

            from passkcore.scoring.decoder import PackedDecoder, supports, text_config

            device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
            self._cpu_decoder_ok = not str(device).startswith("cuda") and supports(text_config(self.path)) is None
            if self._cpu_decoder_ok:
                limit_heap_arenas()  # before the worker threads first allocate
                self._decoder = PackedDecoder.load(self.path, self._dtype or torch.float32)
        return self._decoder

    def _load(self) -> Any:
        if self._model is None:
            import torch

            from passkcore.models import load_causal_lm

            device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
            if not str(device).startswith("cuda"):
                limit_heap_arenas()  # before the backbone's threads first allocate
            if self.backend == "fused":
                from passkcore.varlen import register

                attn = register()
            else:
                attn = self._attn or ("sdpa" if str(device).startswith("cuda") else "eager")
            self._model = load_causal_lm(self.path, dtype=self._dtype or torch.float32, device=device,
                                         attn_implementation=attn)
        return self._model

    # -- scoring ------------------------------------------------------------------------------------
    def check_row(self, prompt: Sequence[int], response: Sequence[int]) -> str:
        if len(response) == 0:
            return "empty_response"
        if len(prompt) == 0:
            return "empty_prompt"
        if len(prompt) + len(response) > self.max_len:
            return "too_long"
        ids = np.asarray(list(prompt) + list(response))
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            return "bad_token_id"
        return "ok"

    def label_for(self, temperature: float) -> str:
        """The scorer's label at a temperature: ``smollm2-135m``, or ``smollm2-135m.T0.3``."""
        return self.label if temperature == 1.0 else f"{self.label}.T{temperature:g}"

    def token_scores(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
                     progress: Optional[Callable[[int], None]] = None) -> list[TokenScores]:
        """Per-token (log-probs, entropies) of each valid (prompt, response) pair, float32 arrays."""
        return self.token_scores_at(pairs, [self.temperature], progress)[0]

    def token_scores_at(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], temperatures: Sequence[float],
                        progress: Optional[Callable[[int], None]] = None) -> list[list[TokenScores]]:
        """``token_scores`` at several temperatures from one backbone pass (only the head differs)."""
        for t in temperatures:
            if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
                raise ValueError(f"temperature must be finite and > 0, got {t!r}")
        if self.backend == "vllm_fused":
            return self._pooled_scores(pairs, temperatures, progress)
        if self.backend == "vllm":
            if any(t != 1.0 for t in temperatures):
                raise ValueError("the vllm backend scores at temperature 1 only; use backend='fused' or 'torch'")
            single = self._vllm_scores(pairs, progress)
            return [single for _ in temperatures]
        if not pairs:
            return [[] for _ in temperatures]
        if self.backend == "fused" and self._cpu_decoder() is not None:
            from passkcore.scoring.cpu import cpu_packed_scores

            return cpu_packed_scores(self._decoder, pairs, temperatures, self.token_budget or CPU_BUDGET, progress)
        out: list[Optional[list[TokenScores]]] = [None] * len(pairs)
        budget = self.token_budget or budget_for(next(self._load().parameters()).device)
        pack = pack_sequences if self.backend == "fused" else pack_batches
        pending = pack([len(p) + len(r) for p, r in pairs], budget)
        while pending:
            batch = pending.pop(0)
            try:
                per_temperature = self._torch_batch([pairs[i] for i in batch], temperatures)
                for j, i in enumerate(batch):
                    out[i] = [scored[j] for scored in per_temperature]
                release_free_memory()  # batches differ in shape: without it the heap grows each batch
                if progress:
                    progress(sum(len(pairs[i][1]) for i in batch))
            except RuntimeError as exc:  # torch.cuda.OutOfMemoryError is a RuntimeError
                if "out of memory" not in str(exc).lower() or len(batch) == 1 and budget <= 16:
                    raise
                import torch

                torch.cuda.empty_cache()
                budget = max(16, budget // 2)
                half = max(1, len(batch) // 2)
                pending[:0] = [batch[:half], batch[half:]] if len(batch) > 1 else [batch]
        missing = [i for i, o in enumerate(out) if o is None]
        if missing:  # every batch either fills its rows or raises: a gap would misalign the results
            raise RuntimeError(f"rows {missing[:5]} were not scored")
        return [[row[k] for row in out if row is not None] for k in range(len(temperatures))]

    def _torch_batch(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
                     temperatures: Sequence[float]) -> list[list[TokenScores]]:
        import torch

        model = self._load()
        device = next(model.parameters()).device
        sizes = [len(r) for _, r in pairs]
        bounds = np.cumsum([0, *sizes])
        tgt = torch.tensor([t for _, r in pairs for t in r], dtype=torch.long, device=device)
        results: list[list[TokenScores]] = []
        with torch.inference_mode():
            if self.backend == "torch":
                logits = self._padded_logits(model, pairs, device)
            else:
                from passkcore.kernels import token_logprobs
                from passkcore.varlen import packed_hidden_states

                hidden = packed_hidden_states(model.get_decoder(), [list(p) + list(r) for p, r in pairs], device)
                # Position t predicts token t + 1: a response is predicted from positions len(p)-1 ...
                starts = np.cumsum([0, *(len(p) + len(r) for p, r in pairs)])[:-1]
                index = np.concatenate([np.arange(s + len(p) - 1, s + len(p) - 1 + len(r))
                                        for s, (p, r) in zip(starts, pairs)])
                hidden = hidden[torch.from_numpy(index).to(device)]
                head = model.get_output_embeddings()
            for temperature in temperatures:
                if self.backend == "torch":
                    logp_all = torch.log_softmax(logits / temperature, dim=-1)
                    logp = logp_all.gather(1, tgt[:, None])[:, 0]
                    entropy = -(logp_all.exp() * logp_all).sum(dim=-1)
                else:
                    logp, entropy = token_logprobs(hidden, head.weight, tgt, bias=head.bias, temperature=temperature,
                                                   return_entropy=True)
                logp_np, ent_np = logp.float().cpu().numpy(), entropy.float().cpu().numpy()
                results.append([(logp_np[a:b], ent_np[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
        return results

    @staticmethod
    def _padded_logits(model: Any, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], device: Any) -> Any:
        """fp32 logits [response tokens, V] of the reference path: one padded batch, full logits."""
        import torch

        # One pad column, always: a batch without any padding takes transformers' unmasked causal path,
        # whose arithmetic differs (~2e-5 per token) from the masked path every padded batch takes.
        L = max(len(p) + len(r) for p, r in pairs) + 1
        ids = torch.zeros((len(pairs), L), dtype=torch.long)
        mask = torch.zeros((len(pairs), L), dtype=torch.long)
        rows, cols = [], []
        for b, (p, r) in enumerate(pairs):
            seq = list(p) + list(r)
            ids[b, : len(seq)] = torch.tensor(seq)
            mask[b, : len(seq)] = 1
            rows += [b] * len(r)
            cols += list(range(len(p) - 1, len(p) - 1 + len(r)))
        b_idx, t_idx = torch.tensor(rows, device=device), torch.tensor(cols, device=device)
        return model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()[b_idx, t_idx]

    def _vllm_scores(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
                     progress: Optional[Callable[[int], None]]) -> list[TokenScores]:
        from vllm import SamplingParams

        if self._llm is None:
            from passkcore.sampling import make_llm

            self._llm = make_llm(str(self.path), dtype="float32", max_model_len=self.max_len)
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        out: list[TokenScores] = []
        for start in range(0, len(pairs), 64):
            chunk = pairs[start:start + 64]
            results = self._llm.generate([{"prompt_token_ids": list(p) + list(r)} for p, r in chunk], params,
                                         use_tqdm=False)
            for (p, r), res in zip(chunk, results):
                entries = res.prompt_logprobs[len(p): len(p) + len(r)]
                out.append((np.array([e[t].logprob for e, t in zip(entries, r)], dtype=np.float32), None))
            if progress:
                progress(sum(len(r) for _, r in chunk))
        return out

    def _pooled_scores(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], temperatures: Sequence[float],
                       progress: Optional[Callable[[int], None]]) -> list[list[TokenScores]]:
        """vLLM pooling backbone (final hidden states of every token) + the fused head per temperature."""
        import torch

        from passkcore.kernels import token_logprobs
        from passkcore.pooled import head_weight, make_pooling_llm, pooled_hidden_states

        if self._llm is None:
            dtype = {None: "float32", torch.float32: "float32", torch.bfloat16: "bfloat16",
                     torch.float16: "float16"}.get(self._dtype, str(self._dtype))
            self._llm = make_pooling_llm(self.path, dtype=dtype, max_model_len=self.max_len)
            self._head = head_weight(self.path)
        weight, bias = self._head
        out: list[list[TokenScores]] = [[] for _ in temperatures]
        start = 0
        while start < len(pairs):  # rows in order, a few token budgets per engine call
            end, used = start, 0
            while end < len(pairs) and (end == start or used + len(pairs[end][0]) + len(pairs[end][1]) <= 4 * (self.token_budget or GPU_BUDGET)):
                used += len(pairs[end][0]) + len(pairs[end][1])
                end += 1
            chunk = pairs[start:end]
            states = pooled_hidden_states(self._llm, [list(p) + list(r) for p, r in chunk])
            # Position t predicts token t + 1: a response is predicted from positions len(p)-1 ...
            hidden = torch.cat([h[len(p) - 1:len(p) - 1 + len(r)] for h, (p, r) in zip(states, chunk)])
            tgt = torch.tensor([t for _, r in chunk for t in r], dtype=torch.long)
            bounds = np.cumsum([0, *(len(r) for _, r in chunk)])
            for k, temperature in enumerate(temperatures):
                logp, entropy = token_logprobs(hidden.to(weight.dtype), weight, tgt, bias=bias, temperature=temperature,
                                               return_entropy=True)
                logp_np, ent_np = logp.numpy(), entropy.numpy()
                out[k] += [(logp_np[a:b], ent_np[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
            if progress:
                progress(int(bounds[-1]))
            start = end
        return out

    def score(self, rows: Union[pa.Table, Iterable[Mapping[str, Any]]],
              progress: Optional[Callable[[int], None]] = None) -> pa.Table:
        """One score row per input row (``model, problem_id, sample_index, prompt_token_ids,
        response_token_ids``; or ``prompt``/``response`` texts, tokenized without special tokens)."""
        return self.score_at(rows, [self.temperature], progress)[0]

    def score_at(self, rows: Union[pa.Table, Iterable[Mapping[str, Any]]], temperatures: Sequence[float],
                 progress: Optional[Callable[[int], None]] = None) -> list[pa.Table]:
        """``score`` at several temperatures from one backbone pass; tables in the same order."""
        rows = _as_rows(rows)
        pairs, status = [], []
        tokenizer = None
        for row in rows:
            prompt, response = row.get("prompt_token_ids"), row.get("response_token_ids")
            if prompt is None or response is None:
                if tokenizer is None:
                    from passkcore.models import load_tokenizer

                    tokenizer = load_tokenizer(self.path)
                prompt = tokenizer.encode(row["prompt"], add_special_tokens=False) if prompt is None else prompt
                response = tokenizer.encode(row["response"], add_special_tokens=False) if response is None else response
            pairs.append((list(prompt), list(response)))
            status.append(self.check_row(pairs[-1][0], pairs[-1][1]))
        valid = [i for i, s in enumerate(status) if s == "ok"]
        images = [rows[i].get("images") for i in valid]
        if any(images):  # image problems: the transformers VLM backbone (passkcore.visual says why)
            per_t = self.visual().token_scores_at([pairs[i] for i in valid], images, temperatures, progress)
        elif valid:
            per_t = self.token_scores_at([pairs[i] for i in valid], temperatures, progress)
        else:
            per_t = [[] for _ in temperatures]
        return [self._table(rows, pairs, status, dict(zip(valid, scores)), self.label_for(t))
                for t, scores in zip(temperatures, per_t)]

    def visual(self) -> Any:
        """The VLM backbone that scores rows with images (``passkcore.visual``), loaded on first use."""
        if getattr(self, "_visual", None) is None:
            from passkcore.visual import VisualBackbone, is_multimodal

            if not is_multimodal(self.path):
                raise ValueError(f"rows with images need a vision-language scorer; {self.path} has no vision_config")

            self._visual = VisualBackbone(self.path, dtype=self._dtype, device=self._device)
        return self._visual

    def _table(self, rows: list[Mapping[str, Any]], pairs: list[tuple[list[int], list[int]]], status: list[str],
               scored: Mapping[int, TokenScores], label: str) -> pa.Table:
        out = []
        for i, row in enumerate(rows):
            record = {"model": row.get("model"), "scorer": label, "problem_id": row.get("problem_id"),
                      "sample_index": row.get("sample_index"), "num_tokens": len(pairs[i][1]), "status": status[i],
                      "sum_logprob": None, "mean_logprob": None, "ppl": None, "mean_entropy": None}
            if i in scored:
                logp, ent = scored[i]
                total = float(np.sum(logp, dtype=np.float64))
                mean = total / len(logp)
                record.update(sum_logprob=total, mean_logprob=mean, ppl=math.exp(-mean),
                              mean_entropy=float(np.mean(ent, dtype=np.float64)) if ent is not None else None)
            out.append(record)
        return pa.Table.from_pylist(out, schema=SCORE_SCHEMA)
