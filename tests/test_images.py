from __future__ import annotations

import base64
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from passkcore.images import images_digest, keep_images, open_images, resolve_images
from passkcore.pipeline.store import SampleStore
from passkcore.problem_files import field_map, load_problem_file, load_problems
from tests.conftest import make_image

RED, BLUE = (200, 30, 30), (30, 30, 200)


def mathvista_rows(folder: Path) -> list[dict]:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "images" / "1.png").write_bytes(make_image(RED))
    (folder / "images" / "2.jpg").write_bytes(make_image(BLUE, fmt="JPEG"))
    return [
        {"pid": "1", "question": "What is the angle?", "image": "images/1.png", "choices": ["100°", "145°"],
         "answer": "145°", "question_type": "multi_choice", "answer_type": "text", "precision": None},
        {"pid": "2", "question": "How many squares?", "image": "images/2.jpg", "choices": None, "answer": "3",
         "question_type": "free_form", "answer_type": "integer", "precision": None},
        {"pid": "3", "question": "What is x?", "image": "images/1.png", "choices": None, "answer": "1.25",
         "question_type": "free_form", "answer_type": "float", "precision": 2.0},
    ]


def test_mathvista_json_paths_relative_to_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "mathvista"
    rows = mathvista_rows(folder)
    (folder / "testmini.json").write_text(json.dumps({r["pid"]: r for r in rows}))
    problems = load_problems(f"mathvista:{folder / 'testmini.json'}")
    assert [p.id for p in problems] == ["1", "2", "3"]
    assert problems[0].choices == ["100°", "145°"] and problems[0].images == [str((folder / "images/1.png").resolve())]
    assert problems[1].answer_type == "integer" and problems[1].choices is None
    assert problems[2].precision == 2 and problems[2].answer == "1.25"
    assert "(B) 145°" in problems[0].user_message()


def test_mathvista_parquet_bytes_win_over_the_path(tmp_path: Path) -> None:
    folder = tmp_path / "mathvista"
    rows = mathvista_rows(folder)
    for r in rows:
        r["decoded_image"] = {"bytes": make_image(BLUE), "path": r["image"]}
        r["image"] = "images/missing.png"  # never read: decoded_image comes first
    pq.write_table(pa.Table.from_pylist(rows), folder / "testmini.parquet")
    problems = load_problems(f"mathvista:{folder / 'testmini.parquet'}")
    assert all(p.images[0].startswith("data:image/png;base64,") for p in problems)
    assert open_images(problems[0].images)[0].getpixel((30, 30)) == BLUE


def test_mathvision_preset_data_uri_and_letters(tmp_path: Path) -> None:
    uri = "data:image/png;base64," + base64.b64encode(make_image(RED)).decode()
    rows = [{"id": "7", "question": "<image1> Which shape?", "options": ["A", "B", "C"], "image": uri, "answer": "C"},
            {"id": "8", "question": "<image1> How long?", "options": [], "image": uri, "answer": "4"}]
    path = tmp_path / "mathvision.json"
    path.write_text(json.dumps(rows))
    a, b = load_problems(f"mathvision:{path}")
    assert a.choices == ["A", "B", "C"] and a.images == [uri]
    assert b.choices is None and b.answer == "4"


@pytest.mark.parametrize("value, message", [
    ("images/nope.png", "does not exist"),
    ("data:image/png;base64,bm90IGFuIGltYWdl", "not a decodable image"),
    ("data:image/png,plain", "base64"),
])
def test_bad_image_names_the_record_and_field(tmp_path: Path, value: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"id": "ok", "prompt": "p", "answer": "1", "img": "a.png"},
                                {"id": "bad", "prompt": "p", "answer": "1", "img": value}]))
    (tmp_path / "a.png").write_bytes(make_image(RED))
    with pytest.raises(ValueError, match=rf"entry 1.*field 'img'.*{message}"):
        load_problem_file(path, field_map(images="img"))


def test_undecodable_parquet_bytes(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": ["x"], "prompt": ["p"], "answer": ["1"], "img": [[b"\x89PNG broken", make_image(RED)]]}),
                   path)
    with pytest.raises(ValueError, match=r"row 0: field 'img'\[0\]: not a decodable image"):
        load_problem_file(path, field_map(images="img"))


def test_run_keeps_images_by_digest_and_detects_a_change(tmp_path: Path) -> None:
    folder = tmp_path / "mathvista"
    rows = mathvista_rows(folder)
    (folder / "testmini.json").write_text(json.dumps(rows))
    spec = f"mathvista:{folder / 'testmini.json'}"
    problems = load_problems(spec)
    store = SampleStore.open_run(tmp_path / "run", problems, {"spec": spec})
    kept = store.problems()
    assert kept[0].images[0].startswith(str(tmp_path / "run" / "images"))
    assert kept[0].images == kept[2].images  # one file, by digest
    assert len(list((tmp_path / "run" / "images").iterdir())) == 2
    assert images_digest(kept[0].images) == images_digest(problems[0].images)
    # Reopened over the same images: the same run.
    SampleStore.open_run(tmp_path / "run", load_problems(spec), {"spec": spec})
    (folder / "images" / "2.jpg").write_bytes(make_image(RED, fmt="JPEG"))
    with pytest.raises(ValueError, match=r"images of problem '2' changed.*field 'images'\[0\]"):
        SampleStore.open_run(tmp_path / "run", load_problems(spec), {"spec": spec})


def test_text_problems_keep_their_run_digest(tmp_path: Path) -> None:
    """Problems without images store no image fields: a text run made before them reopens as it was."""
    problems = load_problems("arith:3")
    store = SampleStore.open_run(tmp_path / "run", problems, {"spec": "arith:3"})
    line = json.loads((tmp_path / "run" / "problems.jsonl").read_text().splitlines()[0])
    assert "images" not in line and "choices" not in line
    assert store.problems() == problems
    assert keep_images(tmp_path, problems) == problems == resolve_images(tmp_path, problems)
