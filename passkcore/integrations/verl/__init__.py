"""passkcore inside verl: exact validation metrics (metrics.py) and the reward function (reward.py).

- ``process_validation_metrics`` (and ``install()``/``uninstall()``): a drop-in for verl's
  ``verl.trainer.ppo.metric_utils.process_validation_metrics``, exact instead of bootstrapped.
- ``compute_score`` / ``compute_score_batch``: verl's custom reward signatures, math judged by math-verify
  in killable workers and code in passkcore's sandbox.

Neither imports verl. See docs/integrations.md.
"""

from __future__ import annotations

from passkcore.integrations.verl.metrics import Metrics, install, k_ladder, process_validation_metrics, uninstall
from passkcore.integrations.verl.reward import Options, close, compute_score, compute_score_batch

__all__ = ["Metrics", "Options", "close", "compute_score", "compute_score_batch", "install", "k_ladder",
           "process_validation_metrics", "uninstall"]
