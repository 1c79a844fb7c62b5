"""The benchmark target's draws (passkcore.numbers.posterior_grid): the correction ``curves`` applies to
the posterior draws where an unbiased variance exists (k <= n/2), its fade to none at k = n, and the
sampler's determinism."""

from __future__ import annotations

import numpy as np
import pytest

import passkcore as pk
from passkcore import _core
from passkcore.numbers.posterior_grid import SCALE_BOUNDS, GridPosterior, likelihood


def _study(n: int = 16, problems: int = 200, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.full(problems, n), rng.binomial(n, rng.beta(0.3, 3.0, problems))


def test_draws_centre_on_the_unbiased_estimate_and_match_its_stderr_up_to_n_half() -> None:
    n, c = _study()
    post = GridPosterior(n, c, draws=2000, seed=1)
    ks = np.arange(1, 9)
    draws = post.curves(ks)
    np.testing.assert_allclose(draws.mean(axis=0), pk.pass_at_k(n, c, ks).mean(axis=0), atol=1e-12)
    # Widened to the unbiased standard error, never narrowed below the raw draws, at most 2x them.
    se, raw_sd = pk.pass_at_k_variance(n, c, ks).stderr, post.raw_curves(ks).std(axis=0)
    sd = draws.std(axis=0)
    assert np.all(sd >= raw_sd * SCALE_BOUNDS[0] - 1e-12) and np.all(sd <= raw_sd * SCALE_BOUNDS[1] + 1e-12)
    np.testing.assert_allclose(sd, np.clip(se, raw_sd, 2 * raw_sd), rtol=1e-9)


def test_correction_fades_to_the_raw_posterior_at_k_n() -> None:
    n, c = _study()
    post = GridPosterior(n, c, draws=1000, seed=2)
    ks = np.arange(1, 17)
    draws, raw = post.curves(ks), post.raw_curves(ks)
    np.testing.assert_allclose(draws[:, -1], raw[:, -1], atol=1e-12)
    # Continuous across n/2: the shift of the mean changes by no more than its size at n/2 per step.
    shift = draws.mean(axis=0) - raw.mean(axis=0)
    assert np.all(np.abs(np.diff(shift[7:])) <= abs(shift[7]) + 1e-12)
    # Asking for one k gives the same draws as asking for it among others (the n/2 anchor is internal).
    np.testing.assert_allclose(post.curves([12])[:, 0], draws[:, 11], atol=1e-12)


def test_all_unsolved_or_all_solved_stay_in_range() -> None:
    # Up to n/2 the interval holds the estimate; at k = n it is the posterior's own, which for 50
    # never-solved problems puts the truth above 0 (c = 0 does not mean p = 0): low may exceed 0 there.
    for c in ([0] * 50, [8] * 50):
        value, low, high = pk.pass_at_k_interval(8, c, [1, 4, 8], resamples=500)
        assert np.all((0 <= low) & (low <= high) & (high <= 1))
        assert np.all((low[:2] <= value[:2]) & (value[:2] <= high[:2]))


def test_draws_are_deterministic_in_the_seed() -> None:
    n, c = _study(n=8, problems=60)
    a = GridPosterior(n, c, draws=300, seed=5).curves([1, 4, 8])
    np.testing.assert_array_equal(a, GridPosterior(n, c, draws=300, seed=5).curves([1, 4, 8]))
    assert not np.array_equal(a, GridPosterior(n, c, draws=300, seed=6).curves([1, 4, 8]))


def test_grid_curves_is_the_matrix_product_on_both_paths() -> None:
    # The sampler's counts are sparse integers; 51 draws leave one unpaired, K = 37 a tail past the
    # 16-column blocks.
    rng = np.random.default_rng(4)
    counts = rng.poisson(0.4, size=(51, 129)).astype(np.float64)
    counts[7] = 0.0
    table = rng.random((129, 37))
    for simd in (True, False):
        np.testing.assert_allclose(_core.grid_curves(counts, table, simd=simd), counts @ table, rtol=1e-13, atol=0)
    # The same rounding on both paths: a machine without AVX2 gets the same intervals.
    assert np.array_equal(_core.grid_curves(counts, table, simd=True), _core.grid_curves(counts, table, simd=False))
    assert _core.grid_curves(np.zeros((0, 3)), np.ones((3, 4))).shape == (0, 4)


def test_grid_curves_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="counts columns and table rows differ"):
        _core.grid_curves(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="counts must be 2-D"):
        _core.grid_curves(np.ones(3), np.ones((3, 5)))


def test_every_draw_places_every_problem_inside_its_likelihood() -> None:
    n, c = _study(n=64, problems=300)
    post = GridPosterior(n, c, draws=100, seed=7)
    np.testing.assert_array_equal(post.counts.sum(axis=1), np.full(100, 300.0))
    pn, pc, _ = post.pairs
    reachable = (likelihood(pn, pc, post.rates) > 1e-18).any(axis=0)
    assert not post.counts[:, ~reachable].any()


def test_grid_moments_and_affine_clip_give_numpys_numbers() -> None:
    rng = np.random.default_rng(6)
    raw = rng.random((301, 19)) * 0.1 + 0.45
    mean, sd = _core.grid_moments(raw, 7)
    np.testing.assert_array_equal(mean, raw.mean(axis=0))
    np.testing.assert_array_equal(sd, raw[:, :7].std(axis=0))
    scale, offset = rng.uniform(1.0, 2.0, 19), np.linspace(-1.0, 0.5, 19)
    expected = np.clip(raw * scale + offset, 0.0, 1.0)
    _core.grid_affine_clip(raw, scale, offset)
    np.testing.assert_array_equal(raw, expected)
    assert (raw == 0.0).any() and (raw == 1.0).any()


def test_grid_moments_and_affine_clip_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"spread_columns must be in \[0, 3\], got 4"):
        _core.grid_moments(np.ones((2, 3)), 4)
    with pytest.raises(ValueError, match="raw has no draws"):
        _core.grid_moments(np.ones((0, 3)), 1)
    with pytest.raises(ValueError, match="raw columns and scale differ"):
        _core.grid_affine_clip(np.ones((2, 3)), np.ones(2), np.ones(3))
    with pytest.raises(TypeError):  # in place: a copy would silently drop the result
        _core.grid_affine_clip(np.ones((3, 2)).T, np.ones(3), np.ones(3))


def test_grid_posterior_refuses_bad_likelihoods_and_counts() -> None:
    """A NaN at either end of a likelihood row is named (the row's trim used to skip it), and more
    problems than the draws' uint32 counts hold are refused."""
    alpha = np.full(3, 0.1)
    lik = np.array([[1.0, 0.5, np.nan]])
    with pytest.raises(ValueError, match=r"lik\[0, 2\] is not a finite non-negative number"):
        _core.grid_posterior(lik, np.array([4], dtype=np.int64), alpha, 10, 1, 1, 1, 0)
    lik = np.array([[-1.0, 0.5, 1.0]])
    with pytest.raises(ValueError, match=r"lik\[0, 0\] is not a finite non-negative number"):
        _core.grid_posterior(lik, np.array([4], dtype=np.int64), alpha, 10, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="more than 4294967295 problems"):
        _core.grid_posterior(np.ones((1, 3)), np.array([2**32], dtype=np.int64), alpha, 10, 1, 1, 1, 0)


def test_curves_refuse_k_beyond_the_smallest_n() -> None:
    posterior = GridPosterior([8, 8, 4], [1, 0, 2], draws=20)
    assert posterior.curves([1, 4]).shape == (20, 2)
    with pytest.raises(ValueError, match="k = 5 exceeds the smallest n = 4"):
        posterior.curves([1, 5])
