"""passkcore.integrations.code: which names a reference takes from the candidate, and one outcome per program."""

from __future__ import annotations

from passkcore.integrations.code import CodeRunner, reference_names
from tests.integrations.code_completions import FAILING, HONEST, REFERENCE


def test_reference_names_are_its_free_names_without_builtins() -> None:
    humaneval = "METADATA = {}\n\ndef check(candidate):\n    assert abs(candidate([1.0], 0.5)) == 1\n\ncheck(has_close_elements)\n"
    assert reference_names(humaneval) == (["has_close_elements"], [])
    mbpp = "import re\nassert math.isclose(area(2), 12.56)\nassert re.match('a', first(['a']))\n"
    assert reference_names(mbpp) == (["area", "first"], ["math"])
    # A stdlib name the tests call is the candidate's function, not the module.
    assert reference_names("assert string(3) == '3'\n") == (["string"], [])
    for bound in ("for add in []: pass\nadd\n", "try:\n    pass\nexcept E as add:\n    add\n", "[add for add in x]\n"):
        assert "add" not in reference_names(bound)[0]
    assert reference_names("def f(:\n") == ([], [])


def test_runner_gives_each_program_an_outcome() -> None:
    programs = [HONEST["alias"], FAILING["empty"][0], FAILING["syntax_error"][0], HONEST["globals"]]
    with CodeRunner(workers=2, timeout_s=2.0) as runner:
        outcomes = runner.run([(p, REFERENCE) for p in programs])
    assert [o.passed for o in outcomes] == [True, False, False, True]
    assert outcomes[1].result == "failed: NameError: name 'add' is not defined (the program never binds it)"


def test_runner_keeps_its_sandboxes_between_batches() -> None:
    # Each batch's pool threads end with it; the judges' sandboxes, started in those threads, must not
    # (bwrap's --die-with-parent follows the forking thread: before passkcore.verify.spawner, a honest
    # program of the second or third batch failed with "crash: the program killed its sandbox").
    items = [(HONEST["alias"], REFERENCE), (HONEST["globals"], REFERENCE)] * 2
    with CodeRunner(workers=2, timeout_s=2.0) as runner:
        batches = [runner.run(items) for _ in range(3)]
    assert [[o.result for o in b if not o.passed] for b in batches] == [[], [], []]
