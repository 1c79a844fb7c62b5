"""Count files: CSV and Parquet, errors that name the row."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from passkcore.numbers.counts import read_counts


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "counts.csv"
    path.write_text(text)
    return path


def test_math500_loads_by_model(math500_path: Path) -> None:
    models = read_counts(math500_path)
    assert list(models) == ["base", "simplerl"]
    assert models["base"].problems == 500 and int(models["base"].c.sum()) == 39291
    assert int(models["simplerl"].c.sum()) == 49877


def test_parquet_equals_csv(tmp_path: Path, math500_path: Path) -> None:
    import pyarrow.csv as pcsv

    path = tmp_path / "c.parquet"
    pq.write_table(pcsv.read_csv(math500_path), path)
    a, b = read_counts(math500_path), read_counts(path)
    assert (a["base"].c == b["base"].c).all() and list(a["base"].problem_ids) == list(b["base"].problem_ids)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("problem_id,model,n\n1,a,3\n", "missing column.*c"),
        ("problem_id,model,n,c\n1,a,3,1\n2,a,3,4\n", r"row 1 \(model=a, problem_id=2\): c exceeds n \(n=3, c=4\)"),
        ("problem_id,model,n,c\n1,a,3,1\n1,a,3,2\n", r"duplicate \(model, problem_id\) = \(a, 1\) at rows 0, 1"),
        ("problem_id,model,n,c\n1,a,3,1\n2,a,0,0\n", r"row 1 .*n must be at least 1"),
        ("problem_id,model,n,c\n1,a,3,1.5\n", r"row 0: column 'c' is not an integer count"),
        ("problem_id,model,n,c\n1,a,3,\n", r"row 0: column 'c' is empty"),
        ("problem_id,model,n,c\n", "no rows"),
        ("problem_id,model,n,c\n1,a,3,x\n", "column 'c' must hold integer counts"),
    ],
)
def test_bad_files_name_the_row(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read_counts(_write(tmp_path, text))


def test_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        read_counts(tmp_path / "nope.csv")


def test_string_ids_are_kept(tmp_path: Path) -> None:
    table = pa.table({"problem_id": ["x/1", "x/2"], "model": ["m", "m"], "n": [4, 4], "c": [0, 4]})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    assert list(read_counts(path)["m"].problem_ids) == ["x/1", "x/2"]
