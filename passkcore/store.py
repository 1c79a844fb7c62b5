"""The sample store's public names, kept where they always were; the run directory itself is
``passkcore.pipeline.run`` (layout, schemas, shards) and ``passkcore.pipeline.store`` (``SampleStore``)."""

from __future__ import annotations

from passkcore.pipeline.run import (
    COUNTS_SCHEMA,
    READABLE_VERSIONS,
    SAMPLE_SCHEMA,
    SCHEMA_VERSION,
    SCORE_SCHEMA,
    VERDICT_SCHEMA,
    check_label,
    is_run_dir,
    shard_files,
)
from passkcore.pipeline.store import SampleStore

__all__ = ["COUNTS_SCHEMA", "READABLE_VERSIONS", "SAMPLE_SCHEMA", "SCHEMA_VERSION", "SCORE_SCHEMA", "VERDICT_SCHEMA",
           "SampleStore", "check_label", "is_run_dir", "shard_files"]
