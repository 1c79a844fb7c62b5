"""Big JSON documents item by item: with ijson, without it, and past NaN/Infinity (which ijson cannot parse)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from passkcore.importers import jsondoc


@pytest.fixture(params=["ijson", "whole"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "whole":
        monkeypatch.setattr(jsondoc, "_ijson", lambda: None)
    return str(request.param)


def test_items_and_kv_items(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"eval": {"model": "m"}, "samples": [{"id": i, "v": i / 2} for i in range(5)]}))
    assert list(jsondoc.items(path, "samples.item", "sample")) == [{"id": i, "v": i / 2} for i in range(5)]
    assert list(jsondoc.items(path, "eval", "header")) == [{"model": "m"}]
    assert [k for k, _ in jsondoc.kv_items(path, "", "entry")] == ["eval", "samples"]
    assert jsondoc.first_key(path) == "eval"


def test_nan_and_infinity_exactly_once(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"samples": [{"v": 1}, {"v": 2}, {"v": NaN}, {"v": -Infinity}, {"v": 5}]}')
    values = [s["v"] for s in jsondoc.items(path, "samples.item", "sample")]
    assert values[:2] == [1, 2] and values[2] != values[2] and values[3] == float("-inf") and values[4] == 5
    assert len(values) == 5  # the items before the NaN are not given twice


def test_truncated(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps({"samples": [{"id": i} for i in range(50)]})[:200])
    with pytest.raises(ValueError, match=r"cut.json:?\d*: (truncated or invalid JSON after sample \d+|not valid JSON)"):
        list(jsondoc.items(path, "samples.item", "sample"))


def test_labels() -> None:
    assert jsondoc.label_of("mockllm/model") == "mockllm_model"
    assert jsondoc.label_of("openai/gpt-4o (2024)") == "openai_gpt-4o_2024"
    assert jsondoc.label_of("///") == "model" and len(jsondoc.label_of("x" * 300)) == 100
