"""Imports into runs through the CLI: a study from files alone (curves, coverage, PPL), counts files,
and the token ids scoring makes for imported text."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from passkcore.cli import main
from passkcore.importers.run import import_run
from passkcore.pipeline.store import SampleStore
from passkcore.pipeline.tokens import ensure_token_ids, imported_prompts
from passkcore.problems import Problem

IMPORTS = Path(__file__).resolve().parent.parent / "fixtures" / "imports"
LIGHTEVAL = next((IMPORTS.parent / "lighteval").glob("details_passk_arith_*.parquet"))
RLVR = [str(IMPORTS / f"test_qwen-boxed_-1_seed{s}_t0.6_s0_e-1.jsonl") for s in (0, 1)]


@pytest.mark.slow
def test_study_from_files_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["import", "rlvr", *RLVR, "--out", str(run), "--model", "base"]) == 0
    assert main(["import", "rlvr", RLVR[1], "--out", str(run), "--model", "rl"]) == 0
    assert "rl: 6 samples, 6 with verdicts, 4 correct" in capsys.readouterr().out
    store = SampleStore(run)
    counts = {(r["model"], r["problem_id"]): (r["n"], r["c"]) for r in store.counts().to_pylist()}
    assert counts == {("base", "0"): (4, 3), ("base", "1"): (4, 1), ("base", "2"): (4, 3),
                      ("rl", "0"): (2, 2), ("rl", "1"): (2, 1), ("rl", "2"): (2, 1)}
    assert store.manifest["models"]["base"]["imported"] == "rlvr" and store.manifest["models"]["base"]["template"] == "raw"
    assert [p.id for p in store.problems()] == ["0", "1", "2"] and store.problems()[1].answer == "2"
    # Imported text has no token ids; scoring tokenizes it with the scorer's tokenizer and stores the ids.
    assert store.samples(columns=["prompt_token_ids"]).column("prompt_token_ids").to_pylist()[0] == []
    assert main(["score", str(run), "--backend", "torch"]) == 0
    assert "18 samples scored: ok 18" in capsys.readouterr().out
    tokens = pq.read_table(run / "tokens" / "smollm2-135m")
    assert tokens.num_rows == 18 and all(tokens.column("response_token_ids").to_pylist())
    from passkcore.models import load_tokenizer, resolve_model

    tok = load_tokenizer(resolve_model("smollm2-135m"))
    row = tokens.sort_by([("model", "ascending"), ("problem_id", "ascending"), ("sample_index", "ascending")]).to_pylist()[0]
    assert tok.decode(row["prompt_token_ids"]) == "What is 0+0?"
    assert main(["ppl", str(run), "--json"]) == 0
    ppl = json.loads(capsys.readouterr().out)["ppl"]
    assert {p["model"] for p in ppl} == {"base", "rl"} and all(p["scored"] == p["samples"] for p in ppl)
    assert main(["report", str(run), "--bootstrap", "50", "--forecast-resamples", "10"]) == 0
    data = json.loads((run / "report" / "report.json").read_text())
    assert set(data["curves"]) == {"base", "rl"} and data["coverage"] is not None
    # PPL of every imported sample under the scorer, from the ids it tokenized: 12 base, 6 rl.
    values = data["ppl"]["values"]
    assert {k: len(v) for k, v in values.items()} == {"base|smollm2-135m": 12, "rl|smollm2-135m": 6}
    assert all(math.isfinite(x) and x > 1 for v in values.values() for x in v)


def test_counts_output_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c.parquet"
    assert main(["import", "lighteval", str(IMPORTS / "details_math_500_2026-11-22T04-00-00.parquet"), "--out", str(out),
                 "--metric", "pass@k:k=1&n=4", "--model", "lt"]) == 0
    table = pq.read_table(out)
    assert table.to_pylist() == [{"problem_id": "0", "model": "lt", "n": 4, "c": 3},
                                 {"problem_id": "1", "model": "lt", "n": 4, "c": 1}]
    assert b"c = value x n" in table.schema.metadata[b"passkcore.import_note"]
    csv = tmp_path / "c.csv"
    assert main(["import", "evalplus", str(IMPORTS / "humaneval_samples.eval_results.json"), "--out", str(csv)]) == 0
    assert "\"HumanEval/1\",\"evalplus\",3,2" in csv.read_text() and (tmp_path / "c.csv.note.txt").is_file()
    assert main(["estimate", str(csv), "--json"]) == 0


def test_texts_verified_at_import(tmp_path: Path) -> None:
    store = import_run("lighteval", [IMPORTS / "details_math_500_2026-11-22T04-00-00.parquet"], tmp_path / "r",
                       model="lt", workers=1)
    assert {r["problem_id"]: r["c"] for r in store.counts().to_pylist()} == {"0": 3, "1": 1}
    assert imported_prompts(store, "lt")["0"].startswith("<|im_start|>user")
    verdicts = store.samples(columns=["problem_id", "correct", "verifier", "answer_key"]).to_pylist()
    # answer_key is each sample's own extracted answer (the key majority voting groups by): the
    # correct ones equal the reference answers 4 and 9, the wrong ones differ.
    assert {v["problem_id"]: v["answer_key"] for v in verdicts if v["correct"]} == {"0": "4", "1": "9"}
    reference = {"0": "4", "1": "9"}
    assert all(v["answer_key"] != reference[v["problem_id"]] for v in verdicts if not v["correct"])
    assert verdicts[0]["verifier"].startswith("math-verify")


def test_real_lighteval_run_verified_at_import(tmp_path: Path) -> None:
    """The details lighteval 0.13.0 wrote for the embedded model (tests/fixtures/lighteval): the texts,
    verified with math-verify at import, give the counts lighteval's own avg@n implies, but for one of
    the 24 responses: '\\boxed{2 + 2} = \\frac{4}{2} = 2' (gold 4), which lighteval's first-match
    extraction takes as the boxed 2 + 2 and passkcore's last-answer fallback as the final 2."""
    store = import_run("lighteval", [LIGHTEVAL], tmp_path / "r", model="lt", workers=1)
    docs = pq.read_table(LIGHTEVAL).to_pylist()
    implied = {r["doc"]["id"]: round(r["metric"]["avg@n:n=4"] * 4) for r in docs}
    counts = {r["problem_id"]: (r["n"], r["c"]) for r in store.counts().to_pylist()}
    assert set(counts) == set(implied) and all(n == 4 for n, _ in counts.values())
    assert sum(abs(c - implied[pid]) for pid, (_, c) in counts.items()) <= 1
    assert store.manifest["models"]["lt"]["imported"] == "lighteval"
    assert imported_prompts(store, "lt") == {r["doc"]["id"]: r["doc"]["query"] for r in docs}


def test_import_resumes_exactly_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repeated import adds nothing; one interrupted after its first batch resumes where it stopped,
    every key stored once; a repeat with other batching (other shard names) is refused."""
    import passkcore.importers.run as run_module

    run, source = tmp_path / "run", [RLVR[0]]
    import_run("rlvr", source, run, model="base", batch_rows=2)
    first = sorted(p.name for p in (run / "samples").rglob("*.parquet"))
    import_run("rlvr", source, run, model="base", batch_rows=2)
    assert sorted(p.name for p in (run / "samples").rglob("*.parquet")) == first and len(first) == 3
    assert {r["problem_id"]: (r["n"], r["c"]) for r in SampleStore(run).counts().to_pylist()} == {
        "0": (2, 1), "1": (2, 0), "2": (2, 2)}

    cut = tmp_path / "cut"
    real, calls = run_module._write_batch, []

    def dies_after_one(*args: object, **kwargs: object) -> None:
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        real(*args, **kwargs)

    monkeypatch.setattr(run_module, "_write_batch", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        import_run("rlvr", source, cut, model="base", batch_rows=2)
    monkeypatch.undo()
    assert len(list((cut / "samples").rglob("*.parquet"))) == 1
    store = import_run("rlvr", source, cut, model="base", batch_rows=2)
    assert store.counts().to_pylist() == SampleStore(run).counts().to_pylist()
    assert len(store.samples()) == 6 and len(store.sample_keys("base")) == 6
    with pytest.raises(ValueError, match="already holds samples of model 'base' from another import"):
        import_run("rlvr", source, cut, model="base", batch_rows=4)


def test_import_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dup = tmp_path / "dup.jsonl"
    line = json.dumps({"problem_id": "p", "model": "m", "sample_index": 0, "response": "x", "correct": True})
    dup.write_text(line + "\n" + line + "\n")
    assert main(["import", "samples", str(dup), "--out", str(tmp_path / "r")]) == 2
    assert "dup.jsonl:2: duplicate sample" in capsys.readouterr().err
    run = tmp_path / "ok"
    assert main(["import", "samples", str(IMPORTS / "samples.jsonl"), "--out", str(run)]) == 0
    other = tmp_path / "other.jsonl"
    other.write_text((IMPORTS / "samples.jsonl").read_text())
    assert main(["import", "samples", str(other), "--out", str(run)]) == 2
    assert "already holds samples of model 'mine' from another import" in capsys.readouterr().err
    math = tmp_path / "math500.jsonl"
    math.write_text(json.dumps({"problem": "What is 1+1?", "answer": "2"}) + "\n")
    assert main(["import", "rlvr", *RLVR, "--out", str(tmp_path / "r2"), "--problems", f"math500:{math}"]) == 2
    assert "not among the run's problems" in capsys.readouterr().err


def test_ensure_token_ids_uses_template_or_imported_text() -> None:
    from passkcore.models import load_tokenizer, resolve_model

    tok = load_tokenizer(resolve_model("smollm2-135m"))
    problems = {"a": Problem("a", "What is 1+1?", "math", answer="2")}
    rows = [{"model": "m", "problem_id": "a", "sample_index": 0, "response": " 2", "prompt_token_ids": [],
             "response_token_ids": []},
            {"model": "m", "problem_id": "a", "sample_index": 1, "response": "x", "prompt_token_ids": [5],
             "response_token_ids": [6]}]
    boxed = ensure_token_ids(rows, tok, "qwen-boxed", problems)
    assert tok.decode(boxed[0]["prompt_token_ids"]).startswith("<|im_start|>system\nYou are a helpful assistant.")
    assert boxed[0]["response_token_ids"] == tok.encode(" 2") and boxed[0]["tokenized"]
    assert boxed[1] == rows[1]  # ids from the source stay the source of truth
    raw = ensure_token_ids(rows, tok, "raw", problems, prompts={"a": "Q: 1+1\nA:"})
    assert tok.decode(raw[0]["prompt_token_ids"]) == "Q: 1+1\nA:"
    with pytest.raises(ValueError, match="row 0: problem 'a' has no prompt text"):
        ensure_token_ids(rows, tok, "raw")


def test_score_stage_tokenizes_imported_items_once(tmp_path: Path) -> None:
    """The scoring stage (either executor runs its items) gives each item's imported rows token ids and
    stores them in one digest-named shard of RUN/tokens/<scorer>/: a retried item adds nothing."""
    from passkcore.pipeline.planning import read_rows
    from passkcore.pipeline.stages import ScoreStage

    run = tmp_path / "run"
    assert main(["import", "rlvr", RLVR[0], "--out", str(run), "--model", "base"]) == 0
    stage = ScoreStage(str(run), "smollm2-135m", backend="torch", batch=2)
    items = stage.plan()
    assert len(items) == 3 and all(i["rows"] <= 2 for i in items)
    columns = ["model", "problem_id", "sample_index", "prompt_token_ids", "response_token_ids", "response"]
    for _ in range(2):  # the second pass is a retry of every item
        for item in items:
            rows = stage.tokenize(read_rows(run, item, columns).to_pylist())
            assert all(r["prompt_token_ids"] and r["response_token_ids"] for r in rows)
    folder = run / "tokens" / "smollm2-135m"
    assert len(list(folder.glob("*.parquet"))) == 3
    tokens = SampleStore(run).read("tokens", "smollm2-135m")
    assert tokens.num_rows == 6 and len({(r["problem_id"], r["sample_index"]) for r in tokens.to_pylist()}) == 6
