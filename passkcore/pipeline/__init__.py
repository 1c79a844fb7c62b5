"""The pipeline: the run directory (``run``, ``store``), stages written once (``stages``) and the
executors that run their items (``executors``: an in-process loop, or Ray Data). Engines (sampling,
verify, scoring) know nothing of it."""

from passkcore.pipeline.store import SampleStore

__all__ = ["SampleStore"]
