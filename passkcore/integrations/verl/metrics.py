"""verl's validation metrics, exact: a drop-in for ``verl.trainer.ppo.metric_utils.process_validation_metrics``.

verl (0.9) estimates best@k, worst@k and maj@k per prompt from 1,000 bootstrap draws of k responses *with
replacement*, in Python loops: biased (one correct of four reads best@4 = 0.684; drawn without
replacement it is 1.0) and slow. Here every value is the exact expectation over the C(n, k) subsets drawn
without replacement (passkcore.integrations.exact, on the C++ core), with verl's signature, return shape
and metric names, so verl's val-core selection and logging work unchanged.

``install()`` swaps it in for verl's function in the modules that call it. It must run in the process
that validates: verl's Ray ``TaskRunner`` (pass a TaskRunner subclass whose ``run`` calls ``install()``
first to ``run_ppo(config, task_runner_class=...)``), not only the driver.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Optional

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from passkcore.integrations.exact import best_worst, majority_moments

Metrics = dict[Any, dict[str, dict[str, float]]]

# The modules that bind verl's function by name (verl 0.9: the trainer and the v1 trainer base).
_CALLERS = ("verl.trainer.ppo.metric_utils", "verl.trainer.ppo.ray_trainer", "verl.trainer.ppo.v1.trainer_base")


def k_ladder(n: int) -> list[int]:
    """verl's subset sizes for n responses: 2, 4, 8, ... below n, then n (none for n <= 1)."""
    if n <= 1:
        return []
    ks, k = [], 2
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


def _check_lengths(data_sources: Sequence[Any], sample_uids: Sequence[Any], infos_dict: Any) -> int:
    if not hasattr(infos_dict, "items"):
        raise ValueError(f"infos_dict must map variable names to per-sample lists, got {type(infos_dict).__name__}")
    size = len(data_sources)
    if len(sample_uids) != size:
        raise ValueError(f"sample_uids has {len(sample_uids)} entries but data_sources has {size}")
    for name, vals in infos_dict.items():
        if not hasattr(vals, "__len__") or isinstance(vals, (str, bytes)):
            raise ValueError(f"infos_dict[{name!r}] must be a list with one value per sample, got {type(vals).__name__}")
        if len(vals) != size:
            raise ValueError(f"infos_dict[{name!r}] has {len(vals)} entries but data_sources has {size}")
    return size


def _arrow_codes(items: Sequence[Any]) -> Optional[tuple[npt.NDArray[np.int64], list[Any]]]:
    """Codes in first-appearance order (None -> -1) when Arrow can type the items as one string or
    integer column (the common case, ~50x faster than a dict); None otherwise."""
    try:
        arr = pa.array(items if not isinstance(items, np.ndarray) else items.tolist())
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_integer(arr.type)):
        return None
    encoded = arr.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def _encode(items: Sequence[Any], field: str) -> tuple[npt.NDArray[np.int64], list[Any]]:
    """Codes in first-appearance order and the distinct items (verl groups with dicts: 1 == 1.0 == True)."""
    fast = _arrow_codes(items)
    if fast is not None and (fast[0] >= 0).all():
        return fast
    table: dict[Any, int] = {}
    codes = np.empty(len(items), dtype=np.int64)
    for i, item in enumerate(items):
        try:
            codes[i] = table.setdefault(item, len(table))
        except TypeError:
            raise ValueError(f"{field}[{i}] must be hashable, got {type(item).__name__}") from None
    return codes, list(table)


def _numeric(name: str, vals: Sequence[Any]) -> Optional[tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]]:
    """(values, present) of one variable; None for a text variable (verl skips those, e.g. ``pred``)."""
    try:
        arr = np.asarray(vals)
    except ValueError:  # ragged nested lists
        arr = np.asarray([None])
    if arr.dtype.kind in "US" and arr.ndim == 1 and all(isinstance(v, (str, bytes, np.str_)) for v in vals):
        return None  # text only (np.asarray also turns numbers mixed with text into text: checked above)
    if arr.dtype.kind in "biuf":  # numbers only: the fast path (np.asarray never parses text here)
        arr = arr.astype(np.float64)
        present = np.ones(arr.shape[0] if arr.ndim else 0, dtype=bool)
    else:
        arr, present = np.zeros(len(vals)), np.zeros(len(vals), dtype=bool)
        texts = 0
        for i, v in enumerate(vals):
            if v is None:
                continue
            if isinstance(v, (str, bytes)):
                texts += 1
                continue
            try:
                arr[i] = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"infos_dict[{name!r}][{i}] must be a number, None or text, got {v!r}") from None
            present[i] = True
        if texts:
            if present.any():
                i = int(np.argmax(present))
                raise ValueError(f"infos_dict[{name!r}] mixes text and numbers (entry {i} is {vals[i]!r})")
            return None
    if arr.ndim != 1:
        raise ValueError(f"infos_dict[{name!r}] must hold one scalar per sample (got shape {arr.shape})")
    bad = present & ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"infos_dict[{name!r}][{i}] is {arr[i]} (values must be finite)")
    return arr, present


def _prompts(src_codes: npt.NDArray[np.int64], sample_uids: Sequence[Any]) -> tuple[npt.NDArray[np.int64], dict[tuple[int, Any], int]]:
    """A prompt id per sample, in first-appearance order of (data source, uid), and the id of each pair."""
    uid_codes, uids = _encode(sample_uids, "sample_uids")
    key = src_codes * max(len(uids), 1) + uid_codes
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    prompt = rank[inverse.reshape(-1)]
    order = np.sort(first)
    uid_key = {(int(src_codes[i]), uids[uid_codes[i]]): p for p, i in enumerate(order.tolist())}
    return prompt, uid_key


def _pred_labels(preds: Sequence[Any]) -> npt.NDArray[np.int64]:
    """An answer-class code per sample (any hashable ``pred``); None abstains (-1)."""
    fast = _arrow_codes(preds)
    if fast is not None:
        return fast[0]
    table: dict[Hashable, int] = {}
    out = np.full(len(preds), -1, dtype=np.int64)
    for i, p in enumerate(preds):
        if p is None:
            continue
        try:
            out[i] = table.setdefault(p, len(table))
        except TypeError:
            raise ValueError(f"infos_dict['pred'][{i}] must be hashable, got {type(p).__name__}") from None
    return out


class _Accumulator:
    """Per data source, variable and metric name: the sum and count over prompts (verl averages the
    per-prompt values of each metric name over the prompts that have it)."""

    def __init__(self, sources: int) -> None:
        self.sources = sources
        self.sums: dict[tuple[str, str], list[npt.NDArray[np.float64]]] = {}

    def add(self, var: str, name: str, source: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        total = np.bincount(source, weights=values, minlength=self.sources).astype(np.float64)
        count = np.bincount(source, minlength=self.sources).astype(np.float64)
        if (var, name) in self.sums:
            self.sums[(var, name)][0] += total
            self.sums[(var, name)][1] += count
        else:
            self.sums[(var, name)] = [total, count]

    def result(self, source_names: list[Any]) -> Metrics:
        out: Metrics = {}
        for s, src in enumerate(source_names):
            for (var, name), (total, count) in self.sums.items():
                if count[s]:
                    out.setdefault(src, {}).setdefault(var, {})[name] = float(total[s] / count[s])
        return out


def _variable(acc: _Accumulator, var: str, prompt: npt.NDArray[np.int64], values: npt.NDArray[np.float64],
              label: Optional[npt.NDArray[np.int64]], prompt_source: npt.NDArray[np.int64]) -> None:
    """Adds one variable's per-prompt metrics; ``prompt``/``values``/``label`` hold its present samples."""
    order = np.argsort(prompt, kind="stable")
    prompt, values = prompt[order], values[order]
    label = None if label is None else label[order]
    ids, start, n = np.unique(prompt, return_index=True, return_counts=True)
    for size in np.unique(n):
        size = int(size)
        rows = np.flatnonzero(n == size)
        idx = (start[rows, None] + np.arange(size)).reshape(-1)
        block = values[idx].reshape(rows.size, size)
        src = prompt_source[ids[rows]]
        acc.add(var, f"mean@{size}", src, block.mean(axis=1))
        if size <= 1:
            continue
        acc.add(var, f"std@{size}", src, block.std(axis=1))
        ks = k_ladder(size)
        best_m, best_s, worst_m, worst_s = best_worst(block, ks)
        if label is not None:
            local = np.repeat(np.arange(rows.size), size)
            maj_m, maj_s = majority_moments(local, label[idx], values[idx], rows.size, ks)
        for j, k in enumerate(ks):
            acc.add(var, f"best@{k}/mean", src, best_m[:, j])
            acc.add(var, f"best@{k}/std", src, best_s[:, j])
            acc.add(var, f"worst@{k}/mean", src, worst_m[:, j])
            acc.add(var, f"worst@{k}/std", src, worst_s[:, j])
            if label is not None:
                acc.add(var, f"maj@{k}/mean", src, maj_m[:, j])
                acc.add(var, f"maj@{k}/std", src, maj_s[:, j])


def _expected(expected_acc_counts: Any, source_table: dict[Any, int], uid_key: dict[tuple[int, Any], int],
              acc: Optional[tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]],
              prompt: npt.NDArray[np.int64], prompt_source: list[int]) -> tuple[list[int], list[int], list[int]]:
    """verl's ``expected_acc_counts`` policy for sources that report ``acc``: the prompts it names, and
    the prompts and counts of the missing responses (each counted as acc 0, abstaining in maj@k). New
    prompts are appended to ``uid_key``/``prompt_source``."""
    if not hasattr(expected_acc_counts, "items"):
        raise ValueError(f"expected_acc_counts must map (data_source, uid) to a count, got {type(expected_acc_counts).__name__}")
    if acc is None:
        return [], [], []
    values, present = acc
    with_acc = set(np.asarray(prompt_source)[prompt[present]].tolist()) if present.any() else set()
    observed = np.bincount(prompt[present], minlength=len(prompt_source))
    named, pad_prompt, pad_count = [], [], []
    for key, count in expected_acc_counts.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"expected_acc_counts key {key!r} must be a (data_source, uid) pair")
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"expected_acc_counts[{key!r}] must be a non-negative int, got {count!r}")
        s = source_table.get(key[0])
        if s is None or s not in with_acc:
            continue
        p = uid_key.setdefault((s, key[1]), len(uid_key))
        if p == len(prompt_source):
            prompt_source.append(s)
        named.append(p)
        have = int(observed[p]) if p < observed.size else 0
        if count > have:
            pad_prompt.append(p)
            pad_count.append(int(count) - have)
    return named, pad_prompt, pad_count


def process_validation_metrics(
    data_sources: Sequence[Any],
    sample_uids: Sequence[Any],
    infos_dict: dict[str, Sequence[Any]],
    seed: int = 42,
    expected_acc_counts: Optional[dict[tuple[str, str], int]] = None,
) -> Metrics:
    """verl's validation metrics, ``{data_source: {var_name: {metric_name: value}}}``, exact.

    Per prompt (same data source and uid) and numeric variable of ``infos_dict`` (None entries are
    missing; text variables such as ``pred`` are skipped): ``mean@N``, ``std@N`` (N > 1) and, for k in
    2, 4, 8, ... and N, ``best@k/mean``, ``best@k/std``, ``worst@k/mean``, ``worst@k/std`` and, when
    ``infos_dict`` has ``pred``, ``maj@k/mean``, ``maj@k/std``: the exact mean and standard deviation
    over the C(N, k) subsets drawn without replacement of the max, the min, and the winning answer
    class's value (ties split evenly; a None ``pred`` abstains; all abstaining is 0). Each metric is
    averaged over the data source's prompts, as verl does. ``seed`` is accepted for verl's signature
    and unused: nothing is drawn. ``expected_acc_counts`` follows verl: in sources that report
    ``acc``, missing expected responses count as acc 0, and ``acc_success_only`` keeps the observed ones.
    """
    _check_lengths(data_sources, sample_uids, infos_dict)
    src_codes, source_names = _encode(data_sources, "data_sources")
    source_table = {s: i for i, s in enumerate(source_names)}
    prompt, uid_key = _prompts(src_codes, sample_uids)
    prompt_source = [0] * len(uid_key)
    for (s, _), p in uid_key.items():
        prompt_source[p] = s
    variables = {name: _numeric(str(name), vals) for name, vals in infos_dict.items()}
    label = _pred_labels(infos_dict["pred"]) if "pred" in infos_dict else None
    if expected_acc_counts:
        named, pad_prompt, pad_count = _expected(expected_acc_counts, source_table, uid_key, variables.get("acc"),
                                                 prompt, prompt_source)
        if named:
            variables = _pad_acc(variables, prompt, named, pad_prompt, pad_count)
            extra = np.repeat(np.asarray(pad_prompt, dtype=np.int64), pad_count)
            prompt = np.concatenate([prompt, extra])
            if label is not None:
                label = np.concatenate([label, np.full(extra.size, -1, dtype=np.int64)])
    psrc = np.asarray(prompt_source, dtype=np.int64)
    acc = _Accumulator(len(source_names))
    for name, parsed in variables.items():
        if parsed is None:
            continue
        values, present = parsed
        if present.any():
            _variable(acc, name, prompt[present], values[present], None if label is None else label[present], psrc)
    return acc.result(source_names)


def _pad_acc(variables: dict[Any, Any], prompt: npt.NDArray[np.int64], named_prompts: list[int],
             pad_prompt: list[int], pad_count: list[int]) -> dict[Any, Any]:
    """``acc`` with a 0 per missing response (other variables missing there) and ``acc_success_only``."""
    extra = int(sum(pad_count))
    out: dict[Any, Any] = {}
    for name, parsed in variables.items():
        if parsed is None:
            out[name] = None
            continue
        values, present = parsed
        fill = name == "acc"
        out[name] = (np.concatenate([values, np.zeros(extra)]),
                     np.concatenate([present, np.full(extra, fill, dtype=bool)]))
    values, present = variables["acc"]
    # Only the prompts named in expected_acc_counts get acc_success_only, as in verl.
    named = np.zeros(max(int(prompt.max(initial=-1)), max(named_prompts)) + 1, dtype=bool)
    named[named_prompts] = True
    keep = present & named[prompt]
    out["acc_success_only"] = (np.concatenate([values, np.zeros(extra)]), np.concatenate([keep, np.zeros(extra, dtype=bool)]))
    return out


_original: dict[str, Callable[..., Any]] = {}


def install() -> list[str]:
    """Puts :func:`process_validation_metrics` in place of verl's in every module that calls it (imported
    here if needed); returns their names. Run it inside verl's Ray TaskRunner process, before the trainer
    validates. ImportError when verl's metric_utils cannot be imported."""
    importlib.import_module(_CALLERS[0])
    patched = []
    for name in _CALLERS:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a caller whose own dependencies are absent never runs validation here
            continue
        current = getattr(module, "process_validation_metrics", None)
        if current is None:
            continue
        if current is not process_validation_metrics:
            _original.setdefault(name, current)
            module.process_validation_metrics = process_validation_metrics  # type: ignore[attr-defined]
        patched.append(name)
    return patched


def uninstall() -> None:
    """Restores verl's own function where :func:`install` replaced it."""
    for name, fn in list(_original.items()):
        module = sys.modules.get(name)
        if module is not None:
            module.process_validation_metrics = fn  # type: ignore[attr-defined]
        del _original[name]

