"""The numbers: a typed surface over the native core. Estimators (``estimate``: pass@k, pass^k and
their variance; ``majority``: maj@k; ``metrics``: G-pass@k, mG-pass@k, Bayes@N, cover@tau),
``forecast`` (pass@K beyond n), ``stats`` (paired bootstrap bands, crossings, gaps, histograms),
``coverage`` (bitsets, pairwise tables) and ``counts`` (count tables: ``problem_id, model, n, c``).

Imports the core only: nothing here knows of run directories, stores or Ray (a run's counts reach
these functions through ``passkcore.analysis``)."""
