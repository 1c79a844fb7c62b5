// Hypergeometric upper tails for G-pass@k: P(X >= m), X the correct draws among k of n (c correct).
//
// The pmf is built by its term ratio outwards from the mode, where it is largest, in double-double:
// terms only shrink away from the mode, so none overflows, those that underflow are below 2^-1000 of
// the total, and the tail sums add positive terms (no 1 - x cancellation). Every tail is thus within a
// few ulp of the exact rational sum_{j>=m} C(c,j) C(n-c,k-j) / C(n,k).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ddouble.hpp"

namespace passk {

// tails[m] = P(X >= m) * total for m = 0..k+1, as double-doubles, with total = tails[0] (the pmf is
// scaled to 1 at the mode). Callers divide only the tails they use: normalising all k + 2 was one
// double-double division each, ~40% of a G-pass call at k = 64.
inline void hypergeom_tails(int64_t n, int64_t c, int64_t k, std::vector<DD>& w, std::vector<DD>& tails) {
    const int64_t lo = std::max<int64_t>(0, k - (n - c)), hi = std::min(c, k);
    const int64_t mode = std::clamp<int64_t>(((k + 1) * (c + 1)) / (n + 2), lo, hi);
    w.assign(static_cast<size_t>(k + 2), DD{});
    w[static_cast<size_t>(mode)] = DD{1.0, 0.0};
    // Below n = 9.4e7 both products of a term ratio are exact in a double (< 2^53): one exact ratio
    // per step instead of two ratios and a product (half the step's cost).
    const bool exact_products = n < 94'000'000;
    const auto step = [&](DD v, int64_t a1, int64_t a2, int64_t b1, int64_t b2) {  // v * (a1 a2) / (b1 b2)
        if (exact_products) return dd_mul(v, dd_ratio(static_cast<double>(a1 * a2), static_cast<double>(b1 * b2)));
        v = dd_mul(v, dd_ratio(static_cast<double>(a1), static_cast<double>(b1)));
        return dd_mul(v, dd_ratio(static_cast<double>(a2), static_cast<double>(b2)));
    };
    for (int64_t j = mode; j < hi; ++j) {  // pmf(j+1)/pmf(j) = (c-j)(k-j) / ((j+1)(n-c-k+j+1))
        const DD v = step(w[static_cast<size_t>(j)], c - j, k - j, j + 1, n - c - k + j + 1);
        if (v.hi < 1e-300) break;
        w[static_cast<size_t>(j + 1)] = v;
    }
    for (int64_t j = mode; j > lo; --j) {  // pmf(j-1)/pmf(j) = j (n-c-k+j) / ((c-j+1)(k-j+1))
        const DD v = step(w[static_cast<size_t>(j)], j, n - c - k + j, c - j + 1, k - j + 1);
        if (v.hi < 1e-300) break;
        w[static_cast<size_t>(j - 1)] = v;
    }
    tails.assign(static_cast<size_t>(k + 2), DD{});
    for (int64_t j = k; j >= 0; --j)
        tails[static_cast<size_t>(j)] = dd_add(tails[static_cast<size_t>(j + 1)], w[static_cast<size_t>(j)]);
}

// P(X >= m) from unnormalised tails.
inline double tail_probability(const std::vector<DD>& tails, int64_t m) {
    const DD v = dd_div(tails[static_cast<size_t>(m)], tails[0]);
    return v.hi + v.lo;
}

// mG-pass@k (Liu et al. 2024, as lighteval computes it): (2/k) sum_{i = ceil(k/2)+1}^{k} P(X >= i),
// from unnormalised tails (one division for the sum).
inline double mg_pass_value(int64_t k, const std::vector<DD>& tails) {
    DD s{};
    for (int64_t i = (k + 1) / 2 + 1; i <= k; ++i) s = dd_add(s, tails[static_cast<size_t>(i)]);
    const DD v = dd_div(dd_mul_d(s, 2.0), dd_mul_d(tails[0], static_cast<double>(k)));
    return v.hi + v.lo;
}

}  // namespace passk
