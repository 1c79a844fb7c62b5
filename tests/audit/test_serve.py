"""``passk audit serve`` in a real browser (Playwright driving Debian's chromium; no browser download):
load, label three samples by keyboard, reload, see them kept, see them in ``passk estimate --audited``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from passkcore.audit import audit_queue, latest_labels, read_audits
from passkcore.audit.serve import make_server
from passkcore.cli import main
from passkcore.pipeline.store import SampleStore
from tests.audit.conftest import N

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUEUE = ["--hardest", "2", "--per-problem", "2"]


@pytest.fixture
def served(run: SampleStore) -> Iterator[str]:
    cmd = [sys.executable, "-m", "passkcore.cli", "audit", "serve", str(run.root), "--port", "0", *QUEUE]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            assert line.startswith("audit page: http://127.0.0.1:"), (line, proc.stderr.read() if proc.stderr else "")
            yield line.split()[2]
        finally:
            proc.terminate()
            proc.communicate(timeout=30)


def _text(page, selector: str) -> str:
    return page.inner_text(selector).strip()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make install adds it)")
def test_label_three_by_keyboard_reload_and_estimate(run: SampleStore, served: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    queue = audit_queue(run, hardest=2, per_problem=2)
    assert len(queue) == 7
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(served)
            expect(page.locator("#position")).to_have_text("1 of 7")
            assert (_text(page, "#done"), _text(page, "#left")) == ("0", "7")
            first = queue[0]
            assert _text(page, "#key").startswith(f"{first.model} · {first.problem_id} · sample {first.sample_index}")
            # Model text shows as text: the response's <script> is on the page and never ran.
            assert "<script>alert('a')</script>" in _text(page, "#response")
            assert _text(page, "#answer") == run.problems()[0].answer
            assert _text(page, "#reason") == "ok (extracted answer: " + run.problems()[0].answer + ")"
            assert _text(page, "#ppl") == "not scored"
            page.keyboard.press("n")
            page.keyboard.type("right answer, wrong steps")
            page.keyboard.press("Escape")
            page.keyboard.press("g")
            expect(page.locator("#done")).to_have_text("1")
            expect(page.locator("#position")).to_have_text("2 of 7")
            page.keyboard.press("v")
            expect(page.locator("#done")).to_have_text("2")
            expect(page.locator("#position")).to_have_text("3 of 7")
            page.keyboard.press("g")
            expect(page.locator("#done")).to_have_text("3")
            assert _text(page, "#left") == "4"
            page.reload()
            expect(page.locator("#position")).to_have_text("4 of 7")  # next open
            assert (_text(page, "#done"), _text(page, "#left")) == ("3", "4")
            for _ in range(3):
                page.keyboard.press("k")
            expect(page.locator("#position")).to_have_text("1 of 7")
            expect(page.locator("#label")).to_have_text("guess")
            assert page.input_value("#note") == "right answer, wrong steps"
        finally:
            browser.close()
    assert dialogs == []
    latest = latest_labels(read_audits(run))
    assert {k: (r["label"], r["note"], r["auditor"]) for k, r in latest.items()} == {
        queue[0].key: ("guess", "right answer, wrong steps", "human"), queue[1].key: ("valid", "", "human"),
        queue[2].key: ("guess", "", "human")}
    raw = _estimate(run, capsys)
    audited = _estimate(run, capsys, "--audited")
    lost = {"a": 0, "b": 0}
    for item in (queue[0], queue[2]):
        lost[item.model] += 1
    for model, k in lost.items():
        assert audited["models"][model]["pass_at_k"][0] == pytest.approx(raw["models"][model]["pass_at_k"][0] - k / N / 4)


def _estimate(run: SampleStore, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    assert main(["estimate", str(run.root), "--k", "1", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_server_refuses_what_the_page_never_sends(run: SampleStore) -> None:
    import threading

    server, session = make_server(run, port=0, hardest=1, per_problem=1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        good = {"Content-Type": "application/json", "X-Audit-Token": session.token}
        assert _post(url + "/api/label", b'{"i": 0, "label": "guess"}', {"Content-Type": "application/json"})[0] == 403
        assert _post(url + "/api/label", b'{"i": 0, "label": "maybe"}', good) == (
            400, {"error": "label 'maybe' is not one of valid, guess, unsure"})
        assert _post(url + "/api/label", b'{"i": 99, "label": "valid"}', good)[0] == 400
        rebinding = urllib.request.Request(url + "/api/queue", headers={"Host": "evil.example:80"})
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(rebinding, timeout=10)
        assert read_audits(run).num_rows == 0
        status, out = _post(url + "/api/label", b'{"i": 0, "label": "valid", "note": "ok"}', good)
        assert status == 200 and (out["done"], out["left"], out["stored"]) == (1, len(session.queue) - 1, 1)
        assert _post(url + "/api/label", b'{"i": 0, "label": "valid", "note": "ok"}', good)[1]["stored"] == 0
        with urllib.request.urlopen(url + "/", timeout=10) as page:
            assert "script-src 'nonce-" in page.headers["Content-Security-Policy"]
    finally:
        server.shutdown()
        server.server_close()


def test_a_sample_shows_its_images_and_ppl(tmp_path: Path) -> None:
    import pyarrow as pa

    from passkcore.images import data_uri
    from passkcore.pipeline.run import SCORE_SCHEMA, write_shard
    from passkcore.problems import Problem
    from tests.conftest import make_image

    png = make_image((200, 30, 30))
    problem = Problem(id="v1", prompt="What colour is the square?", kind="math", answer="white",
                      images=[data_uri(png)])
    store = SampleStore.open_run(tmp_path / "run", [problem], {"spec": "visual"})
    key = {"model": "m", "problem_id": "v1", "sample_index": 0}
    store.write_samples([{**key, "seed": 1, "prompt_token_ids": [1], "response_token_ids": [2], "response": "white",
                          "finish_reason": "stop", "cumulative_logprob": -1.0}])
    store.write_verdicts([{**key, "correct": True, "extracted_answer": "white", "verifier": "t", "reason": "ok"}])
    row = {**key, "scorer": "base", "num_tokens": 1, "sum_logprob": -1.0, "mean_logprob": -1.0, "ppl": 2.5,
           "mean_entropy": 1.0, "status": "ok"}
    write_shard(pa.Table.from_pylist([row], schema=SCORE_SCHEMA), store.folder("scores", "base"), "s0")
    server, session = make_server(store, port=0)
    server.server_close()
    view = session.item_view(0)
    assert view["images"] == [data_uri(png)] and view["prompt"] == problem.prompt and view["answer"] == "white"
    assert view["ppl"] == [{"scorer": "base", "ppl": 2.5}] and view["reason"] == "ok"
