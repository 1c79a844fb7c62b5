"""The review page of ``passk audit serve``: one HTML document, its script and style inline under a nonce.

Every text that comes from a model or a problem file goes into the page through ``textContent`` (never
as markup), images only as ``data:image/...`` URIs the server built, and the Content-Security-Policy
the server sends allows no other script, style, image or connection source, so a response holding
``<script>`` shows as text. Keys: ``v`` valid, ``g`` guess, ``u`` unsure (saved at once, with the note,
then the next unlabelled sample), ``j``/``k`` or the arrows next and previous, ``n`` the note box
(leaving it saves the note of a labelled sample; Escape leaves it).
"""

from __future__ import annotations

from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { position: sticky; top: 0; background: #f4f4f4; border-bottom: 1px solid #ccc; padding: 8px 16px;
         display: flex; gap: 24px; align-items: baseline; }
main { padding: 12px 16px; max-width: 1100px; }
pre { white-space: pre-wrap; word-break: break-word; background: #fafafa; border: 1px solid #ddd; padding: 8px; }
.label-valid { color: #1a7f37; } .label-guess { color: #b42318; } .label-unsure { color: #9a6700; }
#note { width: 100%; height: 4em; }
img { max-width: 480px; border: 1px solid #ccc; margin: 4px; }
.keys { color: #555; font-size: 90%; }
"""

SCRIPT = """
"use strict";
const token = document.querySelector('meta[name="audit-token"]').content;
let queue = [], at = 0;
const $ = (id) => document.getElementById(id);
function put(id, text) { $(id).textContent = text == null ? "" : String(text); }
function counts(done, left) { put("done", done); put("left", left); }
async function loadQueue() {
  const r = await fetch("/api/queue"); const q = await r.json();
  queue = q.items; counts(q.done, q.left); put("auditor", q.auditor);
  const first = queue.findIndex((it) => !it.label);
  await show(first < 0 ? 0 : first);
}
async function show(i) {
  if (!queue.length) { put("position", "nothing to audit"); return; }
  at = Math.max(0, Math.min(queue.length - 1, i));
  const r = await fetch("/api/item/" + at); const it = await r.json();
  put("position", (at + 1) + " of " + queue.length);
  put("key", it.model + " · " + it.problem_id + " · sample " + it.sample_index + " · c/n = " + it.c + "/" + it.n);
  put("prompt", it.prompt); put("answer", it.answer); put("response", it.response);
  put("reason", it.reason + (it.extracted_answer ? " (extracted answer: " + it.extracted_answer + ")" : ""));
  put("ppl", it.ppl.length ? it.ppl.map((p) => p.scorer + ": " + (p.ppl == null ? "-" : p.ppl.toFixed(3))).join(", ")
                           : "not scored");
  const images = $("images"); images.replaceChildren();
  for (const src of it.images) {
    if (!src.startsWith("data:image/")) continue;
    const img = document.createElement("img"); img.src = src; img.alt = "problem image"; images.appendChild(img);
  }
  $("note").value = it.note || "";
  showLabel(it.label);
}
function showLabel(label) {
  const el = $("label"); el.className = label ? "label-" + label : ""; el.textContent = label || "not labelled";
}
async function save(label) {
  const body = JSON.stringify({i: at, label: label, note: $("note").value});
  const r = await fetch("/api/label", {method: "POST", headers: {"Content-Type": "application/json",
                                                                "X-Audit-Token": token}, body: body});
  const out = await r.json();
  if (!r.ok) { put("status", "not saved: " + out.error); return false; }
  queue[at].label = out.label; queue[at].note = out.note;
  counts(out.done, out.left); showLabel(out.label);
  put("status", "saved " + out.label + " for " + queue[at].problem_id + " #" + queue[at].sample_index);
  return true;
}
function nextOpen(from) {
  for (let j = from + 1; j < queue.length; j++) if (!queue[j].label) return j;
  return Math.min(from + 1, queue.length - 1);
}
const LABEL_KEYS = {v: "valid", g: "guess", u: "unsure"};
document.addEventListener("keydown", async (e) => {
  if (e.target === $("note")) {
    if (e.key === "Escape") $("note").blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (LABEL_KEYS[e.key]) { e.preventDefault(); if (await save(LABEL_KEYS[e.key])) await show(nextOpen(at)); }
  else if (e.key === "j" || e.key === "ArrowRight") await show(at + 1);
  else if (e.key === "k" || e.key === "ArrowLeft") await show(at - 1);
  else if (e.key === "n") { e.preventDefault(); $("note").focus(); }
});
$("note").addEventListener("change", async () => { if (queue[at] && queue[at].label) await save(queue[at].label); });
loadQueue();
"""

BODY = """
<header>
  <strong>passk audit</strong>
  <span>done <b id="done">0</b> · left <b id="left">0</b></span>
  <span>sample <b id="position"></b></span>
  <span>auditor <b id="auditor"></b></span>
  <span class="keys">v valid · g guess · u unsure · j/k next/previous · n note</span>
</header>
<main>
  <p id="key"></p>
  <p>label: <b id="label"></b> <span id="status"></span></p>
  <h3>Problem</h3><pre id="prompt"></pre><div id="images"></div>
  <h3>Reference answer</h3><pre id="answer"></pre>
  <h3>Sample</h3><pre id="response"></pre>
  <p>verdict: <span id="reason"></span></p>
  <p>PPL: <span id="ppl"></span></p>
  <h3>Note</h3><textarea id="note" placeholder="why (saved with the label; leaving the box saves it)"></textarea>
</main>
"""


def render_page(token: str, nonce: str, title: str) -> str:
    """The page, its script and style under ``nonce``, the POST token in a meta tag."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="audit-token" content="{escape(token)}"><style nonce="{nonce}">{STYLE}</style></head>'
            f'<body>{BODY}<script nonce="{nonce}">{SCRIPT}</script></body></html>')


def content_security_policy(nonce: str) -> str:
    return (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
