"""The guesswork audit: label the hardest problems' correct samples, by hand or by an LLM judge, and count
guesses as wrong.

- ``audit_queue``: the correct samples of each model's hardest solved problems (``queue``);
- ``export_audit`` / ``apply_audit``: the queue as a CSV or JSONL file, and its labels back into the
  run's ``audits/`` table, all or nothing per file (``files``; the table: ``store``);
- ``serve``: a local review page, one key per label (``serve``); ``judge``: an LLM's labels under
  ``judge:<model>`` (``judge``);
- ``audited_counts``: (n, c) per problem with guesses counted as incorrect, and the guess rate and
  judge agreement the report shows (``numbers``, ``summary``).
"""

from __future__ import annotations

from passkcore.audit.files import COLUMNS, apply_audit, export_audit, read_labels
from passkcore.audit.judge import judge_run
from passkcore.audit.numbers import INTERVAL, agreement, audited_counts, cohen_kappa, wilson_interval
from passkcore.audit.queue import DEFAULT_HARDEST, DEFAULT_PER_PROBLEM, QueueItem, audit_queue
from passkcore.audit.serve import make_server, serve
from passkcore.audit.store import (
    DEFAULT_AUDITOR,
    JUDGE_PREFIX,
    LABELS,
    Label,
    check_labels,
    latest_labels,
    read_audits,
    store_labels,
)

__all__ = [
    "COLUMNS", "DEFAULT_AUDITOR", "DEFAULT_HARDEST", "DEFAULT_PER_PROBLEM", "INTERVAL", "JUDGE_PREFIX", "LABELS",
    "Label", "QueueItem", "agreement", "apply_audit", "audit_queue", "audited_counts", "check_labels",
    "cohen_kappa", "export_audit", "judge_run", "latest_labels", "make_server", "read_audits", "read_labels",
    "serve", "store_labels", "wilson_interval",
]
