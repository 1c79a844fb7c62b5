// Beta-posterior pass@k (Bayes@N): moments of g(p) = 1 - (1-p)^k under p ~ Beta(alpha, beta), and the
// Beta quantiles that give exact equal-tailed credible intervals of g (g is increasing in p).
//
// E[(1-p)^j] = B(alpha, beta + j) / B(alpha, beta) = prod_{i<j} (beta + i) / (alpha + beta + i): one
// double-double product for every j up to 2k serves the mean (j = k) and the variance
// E[(1-p)^2k] - E[(1-p)^k]^2, which cancels badly in float64 when the posterior is narrow.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ddouble.hpp"

namespace passk {

// moments[j] = E[(1-p)^j] for j = 0..jmax (double-double; flushed to 0 below 2^-1000).
inline void beta_power_moments(double alpha, double beta, int64_t jmax, std::vector<DD>& moments) {
    moments.assign(static_cast<size_t>(jmax + 1), DD{});
    DD v{1.0, 0.0};
    double s, e;
    two_sum(alpha, beta, s, e);
    const DD ab{s, e};
    for (int64_t i = 0; i <= jmax; ++i) {
        moments[static_cast<size_t>(i)] = v;
        if (v.hi < 1e-300) break;
        double bs, be, as, ae;
        two_sum(beta, static_cast<double>(i), bs, be);
        two_sum(ab.hi, static_cast<double>(i), as, ae);
        v = dd_mul(v, dd_div(DD{bs, be}, dd_add(DD{as, ae}, DD{ab.lo, 0.0})));
    }
}

// Regularised incomplete beta I_x(a, b) by its continued fraction (modified Lentz), ~1e-14 relative.
inline double beta_cf(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (std::fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m < 100000; ++m) {
        const double dm = static_cast<double>(m);
        double num = dm * (b - dm) * x / ((a + 2 * dm - 1) * (a + 2 * dm));
        d = 1.0 + num * d;
        if (std::fabs(d) < tiny) d = tiny;
        c = 1.0 + num / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        h *= d * c;
        num = -(a + dm) * (a + b + dm) * x / ((a + 2 * dm) * (a + 2 * dm + 1));
        d = 1.0 + num * d;
        if (std::fabs(d) < tiny) d = tiny;
        c = 1.0 + num / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        const double del = d * c;
        h *= del;
        if (std::fabs(del - 1.0) < 1e-16) break;
    }
    return h;
}

inline double log_beta_fn(double a, double b) { return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b); }

inline double beta_inc(double a, double b, double x) {
    if (x <= 0.0) return 0.0;
    if (x >= 1.0) return 1.0;
    const double front = std::exp(a * std::log(x) + b * std::log1p(-x) - log_beta_fn(a, b));
    if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_cf(a, b, x) / a;
    return 1.0 - front * beta_cf(b, a, 1.0 - x) / b;
}

// The q-quantile of Beta(a, b): Newton steps on I_x(a, b) = q, kept inside a shrinking bracket.
inline double beta_quantile(double a, double b, double q) {
    if (q <= 0.0) return 0.0;
    if (q >= 1.0) return 1.0;
    double lo = 0.0, hi = 1.0, x = a / (a + b);
    const double lb = log_beta_fn(a, b);
    for (int it = 0; it < 200; ++it) {
        const double f = beta_inc(a, b, x) - q;
        if (f == 0.0) return x;
        if (f < 0.0) lo = x; else hi = x;
        const double logpdf = (a - 1.0) * std::log(x) + (b - 1.0) * std::log1p(-x) - lb;
        double next = x - f / std::exp(logpdf);
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
        if (std::fabs(next - x) <= 1e-16 * std::max(x, 1e-300) || hi - lo <= std::numeric_limits<double>::min()) return next;
        x = next;
    }
    return x;
}

}  // namespace passk
