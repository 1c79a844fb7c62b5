"""Each importer reads a fixture in its stack's format and gives the counts computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from passkcore.importers import (
    FORMATS,
    IMPORT_SCHEMA,
    read,
    read_evalplus,
    read_lighteval,
    read_lighteval_counts,
    read_livecodebench,
    read_lm_eval,
    read_rlvr,
    read_samples,
)
from passkcore.importers.lm_eval import iter_lm_eval
from passkcore.numbers.estimate import pass_at_k

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
IMPORTS = FIXTURES / "imports"
LM_EVAL = FIXTURES / "lm_eval" / "samples.jsonl"
LIGHTEVAL = next((FIXTURES / "lighteval").glob("details_passk_arith_*.parquet"))
RLVR = [IMPORTS / f"test_qwen-boxed_-1_seed{s}_t0.6_s0_e-1.jsonl" for s in (0, 1)]


def counts(table: pa.Table) -> dict[tuple[str, str], tuple[int, int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for r in table.select(["model", "problem_id", "correct"]).to_pylist():
        nc = out.setdefault((r["model"], r["problem_id"]), [0, 0])
        nc[0] += 1
        nc[1] += int(bool(r["correct"]))
    return {k: (v[0], v[1]) for k, v in out.items()}


def test_evalplus_plus_and_base() -> None:
    path = IMPORTS / "humaneval_samples.eval_results.json"
    plus = read_evalplus([path], model="m")
    assert plus.schema == IMPORT_SCHEMA
    # By hand: HumanEval/0 passes base+plus in sample 0 only; HumanEval/1 in samples 1 and 2.
    assert counts(plus) == {("m", "HumanEval/0"): (3, 1), ("m", "HumanEval/1"): (3, 2)}
    assert counts(read_evalplus([path], model="m", tests="base")) == {("m", "HumanEval/0"): (3, 2),
                                                                      ("m", "HumanEval/1"): (3, 2)}
    assert plus.column("reason").to_pylist()[:4] == ["correct", "wrong", "wrong", "timeout"]


def test_livecodebench() -> None:
    table = read_livecodebench([IMPORTS / "Scenario.codegeneration_4_0.2_eval_all.json"])
    assert counts(table) == {("livecodebench", "abc301_a"): (4, 3), ("livecodebench", "1873_B"): (4, 0)}
    assert table.column("response").to_pylist()[0].startswith("```python")


def test_rlvr_seeds_concatenate_without_padding() -> None:
    table = read_rlvr(RLVR, model="base")
    # seed 0 + seed 1 scores per idx: 0: TF+TT, 1: FF+FT, 2: TT+TF
    assert counts(table) == {("base", "0"): (4, 3), ("base", "1"): (4, 1), ("base", "2"): (4, 3)}
    assert sorted(table.filter(pa.compute.equal(table.column("problem_id"), "0")).column("sample_index").to_pylist()) == [0, 1, 2, 3]
    assert set(table.column("answer").to_pylist()) == {"0", "2", "4"}


def test_generic_samples() -> None:
    table = read_samples([IMPORTS / "samples.jsonl"])
    assert counts(table) == {("mine", "p0"): (3, 2), ("mine", "p1"): (3, 0)}
    assert counts(read_samples([IMPORTS / "samples.jsonl"], model="other")) == {("other", "p0"): (3, 2),
                                                                               ("other", "p1"): (3, 0)}


def test_lighteval_current_and_old_layouts() -> None:
    table = read_lighteval([IMPORTS / "details_math_500_2026-11-22T04-00-00.parquet"], model="lt")
    assert table.num_rows == 8 and table.column("correct").null_count == 8  # texts only: verified at import
    assert set(table.column("answer").to_pylist()) == {"4", "9"}
    old = read_lighteval([IMPORTS / "details_old_layout.parquet"])
    assert old.column("problem_id").to_pylist() == ["q0", "q0"] and old.column("prompt")[0].as_py() == "Q: What is 0?\nA:"
    metric = read_lighteval_counts([IMPORTS / "details_math_500_2026-11-22T04-00-00.parquet"], "pass@k:k=1&n=4")
    assert metric.to_pylist() == [{"problem_id": "0", "model": "lighteval", "n": 4, "c": 3},
                                  {"problem_id": "1", "model": "lighteval", "n": 4, "c": 1}]
    with pytest.raises(ValueError, match="no metric 'acc'"):
        read_lighteval_counts([IMPORTS / "details_math_500_2026-11-22T04-00-00.parquet"], "acc")


def test_lighteval_real_details() -> None:
    """The fixture was written by lighteval 0.13.0 itself (tests/fixtures/lighteval/make_fixture.sh): the
    embedded SmolLM2, transformers backend, a local task, four sampled responses per document, with
    lighteval's own per-document avg@n:n=4 and pass@k:k=2&n=4 over them."""
    docs = pq.read_table(LIGHTEVAL).to_pylist()
    n = {r["doc"]["id"]: len(r["model_response"]["text"]) for r in docs}
    assert len(docs) == 6 and set(n.values()) == {4} and all(r["doc"]["num_samples"] == 4 for r in docs)
    # What lighteval's own per-document metrics imply: avg@n is c / n over the four responses.
    implied = {r["doc"]["id"]: round(r["metric"]["avg@n:n=4"] * 4) for r in docs}
    assert 0 < sum(implied.values()) < 24  # some right, some wrong: the counts can disagree
    counts_table = read_lighteval_counts([LIGHTEVAL], "avg@n:n=4", model="lt")
    got = {r["problem_id"]: (r["n"], r["c"]) for r in counts_table.to_pylist()}
    assert got == {pid: (4, c) for pid, c in implied.items()}
    # The same counts reproduce lighteval's other per-document metric through passkcore's estimator.
    pass2 = pass_at_k([4] * 6, [got[r["doc"]["id"]][1] for r in docs], 2)
    assert pass2 == pytest.approx([r["metric"]["pass@k:k=2&n=4"] for r in docs], abs=1e-12)
    # The texts: every sampled response once, with the document's gold answer and query.
    table = read_lighteval([LIGHTEVAL], model="lt")
    assert table.num_rows == 24 and table.column("correct").null_count == 24  # verified at import
    by_doc = {r["doc"]["id"]: r for r in docs}
    for row in table.to_pylist():
        doc = by_doc[row["problem_id"]]
        assert row["response"] == doc["model_response"]["text"][row["sample_index"]]
        assert row["answer"] == doc["doc"]["choices"][doc["doc"]["gold_index"]] and row["prompt"] == doc["doc"]["query"]
    # lighteval 0.13 pads input_tokens/output_tokens to the batch (output padded with <|im_end|>, one
    # prompt cut to 48 ids): not token ids to score, so none are imported; scoring tokenizes the text.
    assert table.column("prompt_token_ids").null_count == 24 and table.column("response_token_ids").null_count == 24


def test_lm_eval_real_log_samples() -> None:
    """The fixture was written by lm-eval 0.4.13 itself (tests/fixtures/lm_eval/make_fixture.sh): the
    embedded SmolLM2, HF backend, a local task with repeats: 4."""
    lines = [json.loads(line) for line in LM_EVAL.read_text().splitlines()]
    # What lm-eval's own records imply: a response is right when its filtered answer equals the target.
    expected = {("lm", str(d["doc_id"])): (len(d["resps"][0]), sum(f == d["target"] for f in d["filtered_resps"][0]))
                for d in lines}
    table = read_lm_eval([LM_EVAL], model="lm", verify="filtered")
    assert counts(table) == expected
    assert sum(n for n, _ in expected.values()) == 24
    # lm-eval's own per-document exact_match is the mean over the four filtered responses: c = value x n.
    assert {k[1]: c for k, (_, c) in counts(table).items()} == {str(d["doc_id"]): round(d["exact_match"] * 4) for d in lines}
    assert 0 < sum(c for _, c in expected.values()) < 24  # some right, some wrong: the counts can disagree
    math = read_lm_eval([LM_EVAL], model="lm")
    assert math.column("correct").null_count == 24 and math.column("prompt")[0].as_py().startswith("<|im_start|>")
    ids = read_lm_eval([LM_EVAL], id_field="id").column("problem_id").to_pylist()
    assert ids[0].startswith("easy/") or ids[0].startswith("arith/")


def test_bad_files_name_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "s.jsonl"
    bad.write_text(json.dumps({"problem_id": "p", "model": "m", "sample_index": 0, "response": "x", "correct": True})
                   + "\n" + json.dumps({"problem_id": "p", "model": "m", "sample_index": -1, "response": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"s.jsonl:2: field 'sample_index' must be an integer >= 0"):
        read_samples([bad])
    bad.write_text(json.dumps({"problem_id": "p", "model": "m", "sample_index": 0, "response": "x", "correct": "maybe"}) + "\n")
    with pytest.raises(ValueError, match=r"s.jsonl:1: field 'correct' must be a verdict"):
        read_samples([bad])
    bad.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"s.jsonl:1: not valid JSON"):
        read_lm_eval([bad])
    bad.write_text(json.dumps({"idx": 0, "code": ["a", "b"], "score": [True]}) + "\n")
    with pytest.raises(ValueError, match=r"s.jsonl:1: fields 'code' and 'score' must be lists of the same length"):
        read_rlvr([bad])
    bad.write_text(json.dumps({"doc_id": 0, "arguments": [["p", {}]], "resps": [["a"]], "filtered_resps": [["a"]],
                               "target": "1", "filter": "x"}) + "\n")
    assert read_lm_eval([bad]).num_rows == 1
    bad.write_text(json.dumps({"doc_id": 0, "arguments": [["p", {}]], "resps": [["a", "b"]], "filtered_resps": ["a"],
                               "target": "1", "filter": "take-first"}) + "\n")
    with pytest.raises(ValueError, match=r"s.jsonl:1: field 'filtered_resps' does not keep one answer per response"):
        read_lm_eval([bad], verify="filtered")
    ev = tmp_path / "e.json"
    ev.write_text(json.dumps({"eval": {"T/0": [{"solution": "x", "base_status": "ok", "plus_status": None}]}}))
    with pytest.raises(ValueError, match=r"e.json: eval\['T/0'\]\[0\]: field 'base_status'"):
        read_evalplus([ev])
    details = tmp_path / "d.parquet"
    doc = {"query": "q", "choices": ["1"], "gold_index": 0, "id": "0"}
    pq.write_table(pa.table({"doc": [doc, {**doc, "gold_index": 3}], "model_response": [{"text": ["a", "b"]}] * 2,
                             "metric": [{"avg@n:n=2": 0.5}, {"avg@n:n=2": 0.3}]}), details)
    with pytest.raises(ValueError, match=r"d.parquet: row 1: no gold answer \(doc.choices\[doc.gold_index\]"):
        read_lighteval([details])
    with pytest.raises(ValueError, match=r"d.parquet: row 1: metric 'avg@n:n=2' = 0.3 times n = 2 is not a whole count"):
        read_lighteval_counts([details], "avg@n:n=2")
    pq.write_table(pa.table({"prediction": ["x"]}), details)
    with pytest.raises(ValueError, match=r"d.parquet: row 0: neither lighteval's doc/model_response/metric columns"):
        read_lighteval([details])
    lcb = tmp_path / "x_eval_all.json"
    lcb.write_text(json.dumps([{"question_id": "q1", "code_list": ["a", "b"], "output_list": ["a", "b"],
                                "graded_list": [True]}]))
    with pytest.raises(ValueError, match=r"x_eval_all.json: entry 0: field 'graded_list' \(1\) and"):
        read_livecodebench([lcb])
    with pytest.raises(ValueError, match="does not exist"):
        read_samples([tmp_path / "missing.jsonl"])
    with pytest.raises(ValueError, match="unknown format"):
        read("helm", [bad])


def test_every_format_streams_batches() -> None:
    batches = list(iter_lm_eval([LM_EVAL], batch_rows=5))
    assert [b.num_rows for b in batches] == [5, 5, 5, 5, 4]
    assert set(FORMATS) == {"lm-eval", "lighteval", "evalplus", "livecodebench", "rlvr", "samples", "inspect", "opencompass",
                            "evalscope", "verl"}
