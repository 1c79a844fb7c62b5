"""passkcore inside other eval stacks: one module per stack, each importing only its own stack.

- :mod:`passkcore.integrations.verl`: exact ``process_validation_metrics`` and ``install()``; the reward
  functions ``compute_score`` and ``compute_score_batch`` (math-verify in killable workers, code sandboxed).
- :mod:`passkcore.integrations.lm_eval`: lm-evaluation-harness metric functions (pass@k, maj@k, sandboxed
  code pass@k over ``repeats``) and task YAMLs in ``lm_eval_tasks/`` (``--include_path``).
- :mod:`passkcore.integrations.lighteval`: lighteval metric objects (pass@k, maj@k, G-pass@k, n per document).
- :mod:`passkcore.integrations.evaluate`: HF evaluate's ``code_eval``, sandboxed, same return shape.
- :mod:`passkcore.integrations.inspect`: Inspect epoch reducers (exact pass@k, maj@k, G-pass@k) and a pass@k
  metric with benchmark and population intervals.

Every number comes from the C++ core (exact, unbiased); math is judged by passkcore's math verifier and
code only in passkcore's sandbox. See docs/integrations.md.
"""
