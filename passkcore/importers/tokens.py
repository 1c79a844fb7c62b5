"""Token ids for imported samples, which carry text: the scoring stage's one entry point.

``ensure_token_ids`` fills the empty ``prompt_token_ids``/``response_token_ids`` of rows with the
scorer's tokenizer: the prompt from the imported prompt text (or the problem under the model's
template), the response as plain text without special tokens. ``ensure_run_token_ids`` does it for a
run's rows and stores the ids it made in ``RUN/tokens/<scorer label>/`` shards, so a score can be traced
to the exact ids it was computed on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Optional

import pyarrow as pa

from passkcore.problems import Problem
from passkcore.templates import PromptTemplate, resolve_template, template_from_settings

TOKENS_SCHEMA = pa.schema([
    ("model", pa.string()),
    ("problem_id", pa.string()),
    ("sample_index", pa.int32()),
    ("prompt_token_ids", pa.list_(pa.int32())),
    ("response_token_ids", pa.list_(pa.int32())),
])


def needs_tokens(row: Mapping[str, Any]) -> bool:
    """Imported text without token ids (stored as empty lists)."""
    return not row.get("prompt_token_ids") or not row.get("response_token_ids")


def ensure_token_ids(rows: Sequence[Mapping[str, Any]], tokenizer: Any, template: Any = "raw",
                     problems: Optional[Mapping[str, Problem]] = None,
                     prompts: Optional[Mapping[str, str]] = None) -> list[dict[str, Any]]:
    """Rows with token ids: rows that have both lists are returned as they are; the others get
    ``prompt_token_ids`` from ``row["prompt"]``, else ``prompts[problem_id]`` (imported prompt text),
    else ``problems[problem_id]``, rendered by ``template`` (text prompts: tokenized as plain text) and
    ``response_token_ids`` from ``row["response"]``. Marks the rows it tokenized ``tokenized=True``."""
    tmpl: PromptTemplate = resolve_template(template)
    raw = resolve_template("raw")
    out = []
    for i, row in enumerate(rows):
        if not needs_tokens(row):
            out.append(dict(row))
            continue
        pid = str(row.get("problem_id"))
        new = dict(row)
        if not row.get("prompt_token_ids"):
            text = row.get("prompt") or (prompts or {}).get(pid)
            if text is not None and tmpl.name == "raw":
                ids = raw.token_ids(tokenizer, Problem(pid, text, "math"))
            elif problems is not None and pid in problems:
                ids = tmpl.token_ids(tokenizer, problems[pid])
            else:
                raise ValueError(f"row {i}: problem {pid!r} has no prompt text and is not among the problems")
            new["prompt_token_ids"] = ids
        if not row.get("response_token_ids"):
            if not isinstance(row.get("response"), str):
                raise ValueError(f"row {i}: no response text to tokenize (problem {pid!r})")
            new["response_token_ids"] = [int(t) for t in tokenizer.encode(row["response"], add_special_tokens=False)]
        new["tokenized"] = True
        out.append(new)
    return out


def ensure_run_token_ids(store: Any, rows: Sequence[Mapping[str, Any]], tokenizer_path: Any,
                         scorer_label: str) -> list[dict[str, Any]]:
    """``ensure_token_ids`` for a run's rows, per model label with its manifest template and imported
    prompts; the ids made are stored under ``RUN/tokens/<scorer_label>/``. The tokenizer is loaded
    only when a row needs it."""
    if not any(needs_tokens(r) for r in rows):
        return [dict(r) for r in rows]
    import pyarrow.parquet as pq

    from passkcore._atomic import write_atomically
    from passkcore.importers.run import imported_prompts
    from passkcore.models import load_tokenizer
    from passkcore.runs import run_problems
    from passkcore.store import check_label

    tokenizer = load_tokenizer(tokenizer_path)
    problems = {p.id: p for p in run_problems(store)}
    by_model: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_model.setdefault(str(r["model"]), []).append(i)
    out: list[dict[str, Any]] = [dict(r) for r in rows]
    for model, idx in by_model.items():
        template = template_from_settings(store.manifest["models"].get(model))
        made = ensure_token_ids([rows[i] for i in idx], tokenizer, template, problems, imported_prompts(store, model))
        for i, row in zip(idx, made):
            out[i] = row
        fresh = [{k: r[k] for k in TOKENS_SCHEMA.names} for r in made if r.get("tokenized")]
        if fresh:
            table = pa.Table.from_pylist(fresh, schema=TOKENS_SCHEMA)
            target = store.root / "tokens" / check_label(scorer_label) / f"{uuid.uuid4().hex}.parquet"
            write_atomically(target, partial(pq.write_table, table))
    return out
