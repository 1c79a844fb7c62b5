"""``passk audit serve``: the audit queue as a local review page (the standard library's HTTP server).

The queue is ``audit_queue``'s, hardest first; each sample shows its problem (with its images), the
reference answer, the response, its verdict's reason, and its PPL under each scorer that scored it.
A label typed on the page is stored at once in the run's ``audits/`` table, as ``apply`` stores a
file's (one shard per label saved, under the page's auditor), so a reload, another session or
``passk estimate --audited`` sees it. The server listens on 127.0.0.1 unless told otherwise, answers
only requests whose Host names the address it serves (no DNS rebinding onto it), and stores labels
only from requests carrying the page's random token (no other web page can post one).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional, Union

from passkcore.audit.page import content_security_policy, render_page
from passkcore.audit.queue import (
    DEFAULT_HARDEST,
    DEFAULT_PER_PROBLEM,
    QueueItem,
    audit_queue,
    problems_of,
    sample_details,
    sample_ppl,
)
from passkcore.audit.store import (
    DEFAULT_AUDITOR,
    LABELS,
    MAX_NOTE,
    Label,
    check_auditor,
    latest_labels,
    opened,
    read_audits,
    store_labels,
)
from passkcore.images import data_uri, locator_bytes
from passkcore.pipeline.store import SampleStore

_ITEM = re.compile(r"^/api/item/(\d{1,9})$")
MAX_BODY = 64 * 1024


class AuditSession:
    """The queue of one page, with what each sample shows, and the auditor's latest labels."""

    def __init__(self, store: SampleStore, auditor: str, queue: list[QueueItem]) -> None:
        self.store, self.auditor, self.queue = store, check_auditor(auditor), queue
        self.lock = threading.Lock()
        self.token = secrets.token_urlsafe(24)
        keys = {item.key for item in queue}
        self.labels = {k: row for k, row in latest_labels(read_audits(store), self.auditor).items() if k in keys}
        self.details = sample_details(store, queue)
        self.ppl = sample_ppl(store, keys)
        self.problems = {p.id: p for p in problems_of(store)}

    def counts(self) -> tuple[int, int]:
        done = sum(item.key in self.labels for item in self.queue)
        return done, len(self.queue) - done

    def queue_view(self) -> dict[str, Any]:
        done, left = self.counts()
        items = [{"i": i, "model": q.model, "problem_id": q.problem_id, "sample_index": q.sample_index, "n": q.n,
                  "c": q.c, **self.label_of(q)} for i, q in enumerate(self.queue)]
        return {"auditor": self.auditor, "items": items, "done": done, "left": left}

    def label_of(self, item: QueueItem) -> dict[str, Any]:
        row = self.labels.get(item.key)
        return {"label": row["label"] if row else None, "note": (row["note"] or "") if row else ""}

    def item_view(self, i: int) -> dict[str, Any]:
        item = self.queue[i]
        problem = self.problems.get(item.problem_id)
        detail = self.details.get(item.key, {})
        images = [data_uri(locator_bytes(x, f"problem {item.problem_id!r} image")) for x in (problem.images or [])] \
            if problem is not None else []
        return {"i": i, "model": item.model, "problem_id": item.problem_id, "sample_index": item.sample_index,
                "n": item.n, "c": item.c, "prompt": problem.prompt if problem else "",
                "answer": (problem.answer or "") if problem else "", "images": images,
                "response": detail.get("response") or "", "reason": detail.get("reason") or "",
                "extracted_answer": detail.get("extracted_answer") or "", "ppl": self.ppl.get(item.key, []),
                **self.label_of(item)}

    def save(self, payload: Any) -> dict[str, Any]:
        """Stores one label typed on the page; a ValueError names what is wrong with the request."""
        if not isinstance(payload, dict):
            raise ValueError("expected a JSON object {i, label, note}")
        i, label, note = payload.get("i"), payload.get("label"), payload.get("note", "")
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(self.queue):
            raise ValueError(f"i {i!r} is not a position in the queue (0-{len(self.queue) - 1})")
        if label not in LABELS:
            raise ValueError(f"label {label!r} is not one of {', '.join(LABELS)}")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise ValueError(f"note must be text of at most {MAX_NOTE} characters")
        item = self.queue[i]
        with self.lock:
            stored = store_labels(self.store, [Label(*item.key, label, note)], self.auditor, current=self.labels)
            self.labels[item.key] = {"label": label, "note": note}
            done, left = self.counts()
        return {"stored": stored, "label": label, "note": note, "done": done, "left": left}


def make_handler(session: AuditSession, hosts: set[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "passk-audit"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass  # one line per request on stderr would bury the page's address

        def send(self, status: int, body: bytes, kind: str, extra: Optional[dict[str, str]] = None) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": kind, "Content-Length": str(len(body)), "Cache-Control": "no-store",
                                "X-Content-Type-Options": "nosniff", **(extra or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def json(self, status: int, value: Any) -> None:
            self.send(status, json.dumps(value).encode(), "application/json")

        def host_ok(self) -> bool:
            if hosts and (self.headers.get("Host") or "").lower() not in hosts:
                self.json(403, {"error": "unexpected Host header"})
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not self.host_ok():
                return
            if self.path == "/":
                nonce = secrets.token_urlsafe(16)
                page = render_page(session.token, nonce, f"passk audit: {session.store.root.name}")
                self.send(200, page.encode(), "text/html; charset=utf-8",
                          {"Content-Security-Policy": content_security_policy(nonce)})
            elif self.path == "/api/queue":
                with session.lock:
                    self.json(200, session.queue_view())
            elif (m := _ITEM.match(self.path)) and int(m.group(1)) < len(session.queue):
                self.json(200, session.item_view(int(m.group(1))))
            else:
                self.json(404, {"error": f"no such page {self.path!r}"})

        def do_POST(self) -> None:  # noqa: N802
            if not self.host_ok():
                return
            if self.path != "/api/label":
                self.json(404, {"error": f"no such page {self.path!r}"})
                return
            if not secrets.compare_digest(self.headers.get("X-Audit-Token") or "", session.token):
                self.json(403, {"error": "missing or wrong X-Audit-Token"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self.json(400, {"error": f"a label request is 1 to {MAX_BODY} bytes"})
                return
            try:
                self.json(200, session.save(json.loads(self.rfile.read(length))))
            except (ValueError, json.JSONDecodeError) as exc:
                self.json(400, {"error": str(exc)})

    return Handler


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def make_server(run: Union[str, Path, SampleStore], *, host: str = "127.0.0.1", port: int = 8765,
                auditor: str = DEFAULT_AUDITOR, hardest: int = DEFAULT_HARDEST, per_problem: int = DEFAULT_PER_PROBLEM,
                models: Optional[Sequence[str]] = None, seed: int = 0) -> tuple[ThreadingHTTPServer, AuditSession]:
    """The review server, bound (``port`` 0: a free port) and not yet serving, and its session."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"--port must be in 0-65535, got {port!r}")
    store = opened(run)
    session = AuditSession(store, auditor, audit_queue(store, hardest=hardest, per_problem=per_problem,
                                                       models=models, seed=seed))
    server = ThreadingHTTPServer((host, port), make_handler(session, set()))
    bound = server.server_address[1]
    if host in LOOPBACK:  # another --host serves whatever names reach it
        hosts = {f"{name}:{bound}" for name in LOOPBACK}
        server.RequestHandlerClass = make_handler(session, hosts)
    return server, session


def serve(run: Union[str, Path, SampleStore], **kwargs: Any) -> None:
    """Serves the review page until Ctrl-C; prints its address first."""
    server, session = make_server(run, **kwargs)
    host, port = str(server.server_address[0]), server.server_address[1]
    done, left = session.counts()
    print(f"audit page: http://{host if ':' not in host else f'[{host}]'}:{port}/ (auditor {session.auditor!r}: "
          f"{done} done, {left} left; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
