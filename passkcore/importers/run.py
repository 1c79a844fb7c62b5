"""Imported samples into a run directory (or a counts file), streamed in batches.

Two passes over the input: the first gathers what is per problem (its prompt text and reference
answer, checked consistent) and checks every (model, problem, sample) key is new and unique; the second
writes samples and verdicts batch by batch as store shards. Memory holds the per-problem
facts, the keys as small integers per problem, and one batch.

An imported model label is registered in the manifest with ``{"imported": FORMAT, "sources": [...],
"template": ...}``. Its prompt texts, where the source keeps them, go to ``RUN/imported/<label>/
prompts.jsonl``: with the default template ``raw``, scoring tokenizes exactly the text the stack sent.
Rows without a verdict but with a reference answer are verified with math-verify at import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from passkcore._atomic import write_atomically, write_text_atomically
from passkcore.importers import FORMATS, ITERATORS, import_note
from passkcore.importers.common import COUNTS
from passkcore.pipeline.run import (
    IMPORTED_PROMPTS,
    SAMPLE_SCHEMA,
    VERDICT_SCHEMA,
    check_label,
    imported_prompts_path,
    is_run_dir,
    shard_name,
    shard_names,
)
from passkcore.pipeline.store import SampleStore
from passkcore.problem_files import load_problems
from passkcore.problems import Problem

PROMPTS = IMPORTED_PROMPTS
# Rows per batch and stored shard. Measured on 300,000 generic lines: peak RSS 402 MiB with 65,536-row
# batches (26 s), 186 MiB with 8,192 (61 s); the per-row Python objects of a batch set the peak.
WRITE_ROWS = 16_384


class _Plan:
    """Pass one: per-problem prompt and answer per model, and the keys seen."""

    def __init__(self) -> None:
        self.prompts: dict[tuple[str, str], str] = {}
        self.answers: dict[str, str] = {}
        self.keys: dict[tuple[str, str], set[int]] = {}
        self.shards: dict[str, set[str]] = {}  # label -> the sample shard names pass two writes
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        cols = {name: batch.column(name).to_pylist() for name in
                ("model", "problem_id", "sample_index", "prompt", "answer", "source")}
        for model, pid, idx, prompt, answer, where in zip(*cols.values()):
            check_label(model)
            seen = self.keys.setdefault((model, pid), set())
            if idx in seen:
                raise ValueError(f"{where}: duplicate sample: model {model!r}, problem {pid!r}, sample_index {idx}")
            seen.add(idx)
            if prompt is not None and self.prompts.setdefault((model, pid), prompt) != prompt:
                raise ValueError(f"{where}: model {model!r} has two prompts for problem {pid!r}; passkcore keeps "
                                 "one prompt per problem and model")
            if answer is not None and self.answers.setdefault(pid, answer) != answer:
                raise ValueError(f"{where}: problem {pid!r} has two reference answers "
                                 f"({self.answers[pid]!r} and {answer!r})")
        for label, keys in _keys_by_label(cols["model"], cols["problem_id"], cols["sample_index"]).items():
            self.shards.setdefault(label, set()).add(shard_name("samples", label, keys) + ".parquet")
        self.rows += batch.num_rows

    def problems(self) -> list[Problem]:
        ids = sorted({pid for _, pid in self.keys})
        first_prompt: dict[str, str] = {}
        for (_, pid), text in self.prompts.items():
            first_prompt.setdefault(pid, text)
        return [Problem(pid, first_prompt.get(pid, ""), "math" if pid in self.answers else "code",
                        answer=self.answers.get(pid)) for pid in ids]


def _keys_by_label(models: list[str], pids: list[str], indexes: list[int]) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for model, pid, idx in zip(models, pids, indexes):
        out.setdefault(model, []).append((pid, idx))
    return out


def _batches(fmt: str, paths: Sequence[Union[str, Path]], options: dict[str, Any]) -> Iterator[pa.RecordBatch]:
    if fmt not in ITERATORS:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    return ITERATORS[fmt](list(paths), **options)


def _verdicts(batch: pa.RecordBatch, workers: Optional[int], timeout_s: float) -> list[dict[str, Any]]:
    """Verdict rows of one batch: kept where the source has one, math-verify against the answer where
    it has only text, none where it has neither."""
    from passkcore.verify import verify_rows

    rows = batch.to_pylist()
    todo = [r for r in rows if r["correct"] is None and r["answer"] is not None]
    checked = {}
    if todo:
        problems = {r["problem_id"]: Problem(r["problem_id"], "", "math", answer=r["answer"]) for r in todo}
        for r, v in zip(todo, verify_rows(todo, problems, workers=workers, timeout_s=timeout_s)):
            checked[(r["problem_id"], r["sample_index"])] = v.as_row()
    out = []
    for r in rows:
        key = {"model": r["model"], "problem_id": r["problem_id"], "sample_index": r["sample_index"]}
        if r["correct"] is not None:
            out.append({**key, "correct": r["correct"], "verifier": r["verifier"], "reason": r["reason"],
                        # the source's extracted answer as the maj@k key (its own form; none if it kept none)
                        "extracted_answer": r["extracted_answer"], "answer_key": r["extracted_answer"]})
        elif (r["problem_id"], r["sample_index"]) in checked:
            verdict = checked[(r["problem_id"], r["sample_index"])]
            out.append({**key, **verdict})  # answer_key: this sample's own answer (none if none extracted)
    return out


def _sample_table(batch: pa.RecordBatch) -> pa.Table:
    """SAMPLE_SCHEMA rows of one batch, column by column (no Python rows): seed -1, no log-prob, and
    empty token-id lists where the source has none (scoring tokenizes the text: ensure_token_ids)."""
    n = batch.num_rows
    empty = pa.array([[]] * n, pa.list_(pa.int32()))
    columns = {
        "model": batch.column("model"), "problem_id": batch.column("problem_id"),
        "sample_index": batch.column("sample_index"), "seed": pa.array([-1] * n, pa.int64()),
        "prompt_token_ids": pc.if_else(pc.is_null(batch.column("prompt_token_ids")), empty, batch.column("prompt_token_ids")),
        "response_token_ids": pc.if_else(pc.is_null(batch.column("response_token_ids")), empty,
                                         batch.column("response_token_ids")),
        "response": batch.column("response"), "finish_reason": batch.column("finish_reason"),
        "cumulative_logprob": pa.nulls(n, pa.float64()), "correct": pa.nulls(n, pa.bool_()),
        "extracted_answer": pa.nulls(n, pa.string()), "verifier": pa.nulls(n, pa.string()),
        "image_digest": pa.nulls(n, pa.string()),
    }
    return pa.table(columns, schema=SAMPLE_SCHEMA)


def _write_batch(store: SampleStore, batch: pa.RecordBatch, workers: Optional[int], timeout_s: float) -> None:
    """One batch's verdict and sample shards per model label. Keys were checked new and unique in
    pass one, so shards are written directly instead of through write_samples, whose per-call re-read
    of every stored key (~0.5 GB of Python objects at 10^6 samples, measured) would set the peak.
    Shard names are digests of their keys and the sample shard is written last: a label whose sample
    shard is in place was finished by an earlier attempt and is skipped (an interrupted import resumes
    exactly once)."""
    table = pa.Table.from_batches([batch])
    keys = _keys_by_label(*(table.column(c).to_pylist() for c in ("model", "problem_id", "sample_index")))
    todo = [label for label, k in keys.items()
            if not store.has_shard("samples", label, shard_name("samples", label, k))]
    if not todo:
        return
    if len(todo) < len(keys):
        table = table.filter(pc.is_in(table.column("model"), pa.array(todo)))
    mine_all = table.combine_chunks().to_batches()
    verdicts = _verdicts(mine_all[0], workers, timeout_s) if mine_all else []
    for label in todo:
        mine = table.filter(pc.equal(table.column("model"), label)).combine_chunks()
        rows = [v for v in verdicts if v["model"] == label]
        if rows:
            store.write_shard("verdicts", label,
                              pa.Table.from_pylist([{k: r.get(k) for k in VERDICT_SCHEMA.names} for r in rows],
                                                   schema=VERDICT_SCHEMA),
                              shard_name("verdicts", label, [(r["problem_id"], r["sample_index"]) for r in rows]))
        store.write_shard("samples", label, _sample_table(mine.to_batches()[0]), shard_name("samples", label, keys[label]))


def _open(out: Path, plan: _Plan, problems: Optional[str], fields: Optional[dict[str, Any]],
          fmt: str) -> tuple[SampleStore, dict[str, Problem]]:
    if problems is not None:
        chosen = load_problems(problems, fields=fields)
        spec: dict[str, Any] = {"spec": problems, "limit": None, "seed": 0, **({"fields": fields} if fields else {})}
        store = SampleStore.open_run(out, chosen, spec)
    elif is_run_dir(out):
        store = SampleStore(out)
        chosen = store.problems()
    else:
        chosen = plan.problems()
        store = SampleStore.open_run(out, chosen, {"spec": f"imported:{fmt}"})
    known = {p.id: p for p in chosen}
    missing = sorted({pid for _, pid in plan.keys} - set(known))
    if missing:
        raise ValueError(f"{len(missing)} imported problem id(s) are not among the run's problems, e.g. {missing[:3]}; "
                         "give --problems (and its field mapping) for the benchmark the results come from")
    return store, known


def import_run(fmt: str, paths: Sequence[Union[str, Path]], out: Union[str, Path], *, model: Optional[str] = None,
               template: Optional[str] = None, problems: Optional[str] = None,
               fields: Optional[dict[str, Any]] = None, workers: Optional[int] = None, timeout_s: float = 10.0,
               **options: Any) -> SampleStore:
    """Imports ``paths`` (format ``fmt``) into the run ``out`` (created, or extended with new model
    labels). ``problems`` names the benchmark file the results belong to (else the problems come from
    the results: the first prompt text and answer seen per problem); ``template`` is recorded as the
    model's prompt template (default ``raw``: the imported prompt texts as they are)."""
    from passkcore.templates import resolve_template

    options = {"batch_rows": WRITE_ROWS, **options, "model": model}
    prompt_template = resolve_template(template or "raw")
    plan = _Plan()
    for batch in _batches(fmt, paths, options):
        plan.add(batch)
    if not plan.rows:
        raise ValueError(f"no samples in {', '.join(map(str, paths))}")
    store, _ = _open(Path(out), plan, problems, fields, fmt)
    labels = sorted({m for m, _ in plan.keys})
    settings = {"imported": fmt, "sources": [str(Path(p).resolve()) for p in paths],
                "source_bytes": [Path(p).stat().st_size for p in paths], **prompt_template.settings()}
    note = import_note(fmt, options)
    if note is not None:
        settings["note"] = note
    for label in labels:
        done = set(shard_names(store.folder("samples", label)))
        if done and (store.manifest["models"].get(label) != settings or not done <= plan.shards[label]):
            raise ValueError(f"{store.root} already holds samples of model {label!r} from another import (other "
                             "files, sizes, template or batching); import under another --model")
        store.register_model(label, settings)
        if template is None:
            texts = [{"problem_id": pid, "prompt": text} for (m, pid), text in sorted(plan.prompts.items()) if m == label]
            path = imported_prompts_path(store.root, label)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomically(path, "".join(json.dumps(t) + "\n" for t in texts))
    for batch in _batches(fmt, paths, options):
        _write_batch(store, batch, workers, timeout_s)
    return store


def import_counts(fmt: str, paths: Sequence[Union[str, Path]], out: Union[str, Path], *, model: Optional[str] = None,
                  metric: Optional[str] = None, workers: Optional[int] = None, timeout_s: float = 10.0,
                  **options: Any) -> tuple[pa.Table, str]:
    """Counts (``problem_id, model, n, c``) straight from a source, written to ``out`` (.parquet or .csv)
    with a note of how c was recovered (Parquet metadata ``passkcore.import_note``; CSV: ``OUT.note.txt``)."""
    if metric is not None:
        if fmt != "lighteval":
            raise ValueError("--metric reads a per-document metric as counts: lighteval only")
        from passkcore.importers.lighteval import read_lighteval_counts

        table = read_lighteval_counts(list(paths), metric, model=model, n=options.get("n"))
        note = f"lighteval metric {metric!r} per document: c = value x n (n = sample texts or doc.num_samples)"
    else:
        tally: dict[tuple[str, str], list[int]] = {}
        verified = 0
        for batch in _batches(fmt, paths, {**options, "model": model}):
            rows = _verdicts(batch, workers, timeout_s)
            if len(rows) != batch.num_rows:
                raise ValueError("some samples have neither a verdict nor a reference answer; import into a run and "
                                 "verify it against --problems")
            verified += sum(1 for r, c in zip(rows, batch.column("correct").to_pylist()) if c is None)
            for r in rows:
                nc = tally.setdefault((r["model"], r["problem_id"]), [0, 0])
                nc[0] += 1
                nc[1] += int(bool(r["correct"]))
        keys = sorted(tally)
        table = pa.table({"problem_id": [k[1] for k in keys], "model": [k[0] for k in keys],
                          "n": [tally[k][0] for k in keys], "c": [tally[k][1] for k in keys]}, schema=COUNTS)
        note = (f"{fmt}: per-sample verdicts counted; {verified} samples verified at import with math-verify "
                "against the source's reference answer" if verified else f"{fmt}: the source's per-sample verdicts counted")
        extra = import_note(fmt, options)
        note = f"{note}; {extra}" if extra else note
    dupes = table.num_rows - len(set(zip(table.column("model").to_pylist(), table.column("problem_id").to_pylist())))
    if dupes:
        raise ValueError(f"{dupes} (model, problem) pairs appear twice in {', '.join(map(str, paths))}")
    _write_counts(table, Path(out), note)
    return table, note


def _write_counts(table: pa.Table, out: Path, note: str) -> None:
    if out.suffix.lower() == ".csv":
        import pyarrow.csv as pcsv

        write_atomically(out, lambda tmp: pcsv.write_csv(table, tmp))
        write_text_atomically(out.with_name(out.name + ".note.txt"), note + "\n")
    elif out.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        meta = table.replace_schema_metadata({b"passkcore.import_note": note.encode()})
        write_atomically(out, lambda tmp: pq.write_table(meta, tmp))
    else:
        raise ValueError(f"counts file {str(out)!r} must end in .parquet or .csv")
