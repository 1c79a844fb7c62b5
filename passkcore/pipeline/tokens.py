"""Token ids for imported samples, which carry text: the scoring stage's one entry point.

``ensure_token_ids`` fills the empty ``prompt_token_ids``/``response_token_ids`` of rows with the
scorer's tokenizer: the prompt from the imported prompt text (or the problem under the model's
template), the response as plain text without special tokens. ``ensure_run_token_ids`` does it for a
run's rows and stores the ids it made in ``RUN/tokens/<scorer label>/`` shards, so a score can be traced
to the exact ids it was computed on. The scoring stage (``passkcore.pipeline.stages.ScoreStage``) calls
it per item, in whichever executor runs the item.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import pyarrow as pa

from passkcore.pipeline.run import TOKENS_SCHEMA, imported_prompts_path, shard_name
from passkcore.problems import Problem
from passkcore.templates import PromptTemplate, resolve_template, template_from_settings


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


def imported_prompts(store: Any, model: str) -> dict[str, str]:
    """The prompt texts an imported model label was sampled on, by problem id (empty if none)."""
    path = imported_prompts_path(store.root, model)
    if not path.is_file():
        return {}
    return {r["problem_id"]: r["prompt"] for r in map(json.loads, path.read_text().splitlines()) if r}


def ensure_run_token_ids(store: Any, rows: Sequence[Mapping[str, Any]], tokenizer_path: Any,
                         scorer_label: str, *, tokenizer: Any = None,
                         problems: Optional[Mapping[str, Problem]] = None) -> list[dict[str, Any]]:
    """``ensure_token_ids`` for a run's rows, per model label with its manifest template and imported
    prompts; the ids made are stored under ``RUN/tokens/<scorer_label>/`` in one shard per model whose
    name is a digest of its keys (a retried item finds it in place). The tokenizer (``tokenizer``, else
    loaded from ``tokenizer_path``) and the problems are needed only when a row lacks token ids."""
    if not any(needs_tokens(r) for r in rows):
        return [dict(r) for r in rows]
    from passkcore.models import load_tokenizer

    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(tokenizer_path)
    problems = problems if problems is not None else {p.id: p for p in store.problems()}
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
            keys = [(r["model"], r["problem_id"], r["sample_index"]) for r in fresh]
            store.write_shard("tokens", scorer_label, pa.Table.from_pylist(fresh, schema=TOKENS_SCHEMA),
                              shard_name("tokens", scorer_label, keys))
    return out
