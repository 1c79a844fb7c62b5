"""The CLI people can type: list flags between positionals, one default and one meaning per flag name,
--version, the command table, and every invocation that worked before still parsing the same."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from passkcore.analysis import DEFAULT_BOOTSTRAP, DEFAULT_FORECAST_RESAMPLES
from passkcore.cli import COMMANDS, build_parser, main, parse_args
from passkcore.pipeline import commands
from passkcore.pipeline.stages import ScoreStage
from passkcore.scoring import DEFAULT_BACKEND, Scorer


def _counts(path: Path, better: int) -> Path:
    """Two models, five problems, n = 4: model b solves ``better`` more samples of each problem."""
    rows = ["problem_id,model,n,c"] + [f"p{i},{m},4,{min(4, i % 3 + (better if m == 'b' else 0))}"
                                       for m in ("a", "b") for i in range(5)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_repeated_benchmark_flags_between_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one, two = _counts(tmp_path / "one.csv", 1), _counts(tmp_path / "two.csv", 0)
    args = parse_args(["report", str(one), "--benchmark", "A", str(two), "--benchmark", "B"])
    assert args.source == [str(one), str(two)] and args.benchmark == ["A", "B"]
    assert parse_args(["report", str(one), str(two), "--benchmark", "A", "B"]).benchmark == ["A", "B"]  # as before
    assert parse_args(["report", str(one), str(two), "--benchmark", "A,B"]).benchmark == ["A", "B"]
    out = tmp_path / "r"
    assert main(["report", str(one), "--benchmark", "A", str(two), "--benchmark", "B", "--out", str(out),
                 "--bootstrap", "20", "--forecast-resamples", "2"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert [b["name"] for b in data["benchmarks"]] == ["A", "B"]
    assert [Path(b["source"]).name for b in data["benchmarks"]] == ["one.csv", "two.csv"]


@pytest.mark.parametrize("argv", [
    ["score", "--temperature", "1.0", "0.3", "RUN"],
    ["score", "RUN", "--temperature", "1.0", "0.3"],
    ["score", "--temperature", "1.0,0.3", "RUN"],
    ["score", "--temperature", "1.0", "RUN", "--temperature", "0.3"],
    ["score", "--temperature=1.0", "--temperature=0.3", "RUN"],
])
def test_score_temperatures_any_way(argv: list[str]) -> None:
    args = parse_args(argv)
    assert args.run == "RUN" and args.temperature == [1.0, 0.3]


def test_a_bad_list_value_names_the_flag(capsys: pytest.CaptureFixture[str], math500_path: Path) -> None:
    assert main(["estimate", str(math500_path), "--k", "1,x"]) == 2
    assert "passk estimate: error: --k: 'x' is not an integer" in capsys.readouterr().err
    assert main(["score", "RUN", "--temperature", "1.0,hot"]) == 2
    assert "--temperature: 'hot' is not a number" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import passkcore

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"passk (passkcore) {passkcore.__version__}"


def test_help_has_a_command_table(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    parser_commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert {name for name, _ in COMMANDS} == parser_commands
    for name, what in COMMANDS:
        assert f"  {name} " in text and what in text


def test_one_scoring_default_everywhere() -> None:
    from passkcore.demo import run_demo

    assert parse_args(["score", "RUN"]).backend == DEFAULT_BACKEND == parse_args(["demo"]).backend
    assert inspect.signature(Scorer).parameters["backend"].default == DEFAULT_BACKEND
    assert inspect.signature(commands.score).parameters["backend"].default == DEFAULT_BACKEND
    assert inspect.signature(run_demo).parameters["score_backend"].default == DEFAULT_BACKEND
    assert ScoreStage.__dataclass_fields__["backend"].default == DEFAULT_BACKEND
    # The same flag name in demo and score; the demo's old name still works.
    assert parse_args(["demo", "--backend", "vllm_fused"]).backend == "vllm_fused"
    assert parse_args(["demo", "--score-backend", "vllm_fused"]).backend == "vllm_fused"
    assert parse_args(["score", "RUN", "--score-backend", "torch"]).backend == "torch"


def test_one_default_per_flag_name() -> None:
    est, rep = parse_args(["estimate", "c.csv"]), parse_args(["report", "c.csv"])
    assert rep.bootstrap == DEFAULT_BOOTSTRAP and est.bootstrap is None  # estimate adds intervals when asked
    assert est.forecast_resamples == rep.forecast_resamples == DEFAULT_FORECAST_RESAMPLES


def test_estimate_bootstrap_default_is_the_report_s(math500_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", str(math500_path), "--ci", "0.9", "--k", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps the note
    assert "90% benchmark intervals" in out and f"{DEFAULT_BOOTSTRAP} resamples" in out


@pytest.mark.parametrize(("argv", "ks"), [
    (["--k", "1,2,4"], [1, 2, 4]),
    (["--k", "1", "2", "4"], [1, 2, 4]),
    (["--k", "1", "--k", "2"], [1, 2]),
])
def test_k_lists(argv: list[str], ks: list[int], math500_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args(["estimate", *argv, str(math500_path)]).k == ks  # the file after the ks is no k
    assert main(["estimate", str(math500_path), *argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["k"] == ks


def test_coverage_k_is_one_k(math500_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", str(math500_path), "--k", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["k"] == 8
    assert main(["coverage", str(math500_path), "--k", "1,8"]) == 2
    assert "coverage counts solved problems at one k" in capsys.readouterr().err


def test_problems_names_a_problem_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args(["sample", "--problems", "arith:4", "--n", "2", "--out", "r"]).problems == "arith:4"
    assert parse_args(["bench", "--num-problems", "10"]).num_problems == 10
    assert parse_args(["bench", "--problems", "10"]).num_problems == 10  # today's form, still accepted
    assert parse_args(["bench"]).num_problems == 20_000
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "--problems" not in capsys.readouterr().out.replace("--num-problems", "")


def test_counts_ray_is_accepted_and_said_to_do_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import fake_run

    fake_run(tmp_path / "run", {"base": 1})
    assert main(["verify", str(tmp_path / "run"), "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["counts", str(tmp_path / "run"), "--out", str(tmp_path / "c.csv"), "--ray"]) == 0
    assert "--ray is not needed and is ignored" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["counts", "--help"])
    assert "--ray" not in capsys.readouterr().out


def test_tensor_parallel_size_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "GPUs each vLLM engine spans (tensor parallel): the one engine in this process, or each replica" in text


@pytest.mark.parametrize("argv", [  # forms the CLI took before the list flags were unified
    ["report", "a.csv", "b.csv", "--benchmark", "A", "B", "--series", "s1", "s2", "--series-k", "1", "8"],
    ["report", "a.csv", "--series", "s1,s2", "--bootstrap", "100", "--forecast-resamples", "5"],
    ["estimate", "c.csv", "--k", "1,2", "--metric", "pass@k,maj@k", "--tau", "0.5,1.0", "--forecast", "256"],
    ["estimate", "--metric", "pass^k", "c.csv"],
    ["score", "RUN", "--temperature", "1.0", "0.3", "--backend", "vllm_fused"],
    ["demo", "--score-backend", "fused", "--n", "4"],
    ["coverage", "c.csv", "--k", "8"],
    ["counts", "RUN", "--out", "c.csv", "--ray"],
    ["bench", "--problems", "10", "--n", "8"],
    ["sample", "--problems", "arith", "--n", "4", "--out", "r", "--ray", "auto", "--tensor-parallel-size", "2"],
    ["import", "samples", "a.jsonl", "b.jsonl", "--out", "r", "--problems", "arith"],
])
def test_old_invocations_still_parse(argv: list[str]) -> None:
    args = parse_args(argv)
    assert args.command == argv[0]


def test_old_list_forms_mean_what_they_meant() -> None:
    args = parse_args(["report", "a.csv", "b.csv", "--benchmark", "A", "B", "--series", "s1", "s2",
                       "--series-k", "1", "8"])
    assert (args.source, args.benchmark, args.series, args.series_k) == (["a.csv", "b.csv"], ["A", "B"],
                                                                           ["s1", "s2"], [1, 8])
    args = parse_args(["estimate", "c.csv", "--metric", "pass@k,maj@k", "--tau", "0.5,1.0", "--forecast", "256"])
    assert (args.metric, args.tau, args.forecast) == (["pass@k", "maj@k"], [0.5, 1.0], [256])
    assert parse_args(["estimate", "--metric", "pass^k", "c.csv"]).counts == "c.csv"


def test_ctrl_c_exits_130_and_says_the_run_continues(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A command interrupted with Ctrl-C ends with the shell's SIGINT status and one line, not a traceback."""
    import passkcore.cli as cli

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    real = cli.parse_args

    def parse(argv: list[str]) -> object:
        args = real(argv)
        args.func = interrupted
        return args

    monkeypatch.setattr(cli, "parse_args", parse)
    assert main(["sample", "--problems", "arith", "--n", "2", "--out", "run"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "passk sample: interrupted; what was stored is kept, and the same command continues it"
