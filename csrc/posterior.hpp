// Beta-posterior pass@k (Bayes@N): moments of g(p) = 1 - (1-p)^k under p ~ Beta(alpha, beta), and the
// Beta quantiles that give exact equal-tailed credible intervals of g (g is increasing in p).
//
// E[(1-p)^j] = B(alpha, beta + j) / B(alpha, beta) = prod_{i<j} (beta + i) / (alpha + beta + i): one
// double-double product for every j up to 2k serves the mean (j = k) and the variance
// E[(1-p)^2k] - E[(1-p)^k]^2, which cancels badly in float64 when the posterior is narrow.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
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
        // (beta + i) / (alpha + beta + i) with both sums exact as s + e: the ratio of the leading
        // parts (one division, error-free remainder) corrected to first order by the tails, whose
        // square (< 2^-104) is below double-double precision. ~3x cheaper than a full dd_div.
        double bs, be, as, ae;
        two_sum(beta, static_cast<double>(i), bs, be);
        two_sum(ab.hi, static_cast<double>(i), as, ae);
        ae += ab.lo;
        DD f = dd_ratio(bs, as);
        f = dd_add(f, DD{f.hi * (be / bs - ae / as), 0.0});
        v = dd_mul(v, f);
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

// lb = log B(a, b), computed once by the caller (three lgammas cost more than the fraction itself).
inline double beta_inc(double a, double b, double x, double lb) {
    if (x <= 0.0) return 0.0;
    if (x >= 1.0) return 1.0;
    const double front = std::exp(a * std::log(x) + b * std::log1p(-x) - lb);
    if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_cf(a, b, x) / a;
    return 1.0 - front * beta_cf(b, a, 1.0 - x) / b;
}

// The q-quantile of Beta(a, b): a closed-form first guess (a normal-quantile approximation for
// a, b >= 1, the small-x / small-(1-x) power laws otherwise), then Halley steps on I_x(a, b) = q kept
// inside a shrinking bracket: 3-5 evaluations of I_x instead of ~10 Newton steps from the mean.
inline double beta_quantile(double a, double b, double q) {
    if (q <= 0.0) return 0.0;
    if (q >= 1.0) return 1.0;
    const double lb = log_beta_fn(a, b);
    double x;
    if (a >= 1.0 && b >= 1.0) {
        const double pp = q < 0.5 ? q : 1.0 - q;
        const double t = std::sqrt(-2.0 * std::log(pp));
        double z = (2.30753 + t * 0.27061) / (1.0 + t * (0.99229 + t * 0.04481)) - t;
        if (q < 0.5) z = -z;
        const double al = (z * z - 3.0) / 6.0;
        const double h = 2.0 / (1.0 / (2.0 * a - 1.0) + 1.0 / (2.0 * b - 1.0));
        const double w = z * std::sqrt(al + h) / h - (1.0 / (2.0 * b - 1.0) - 1.0 / (2.0 * a - 1.0)) * (al + 5.0 / 6.0 - 2.0 / (3.0 * h));
        x = a / (a + b * std::exp(2.0 * w));
    } else {
        const double t = std::exp(a * std::log(a / (a + b)) - lb) / a, u = std::exp(b * std::log(b / (a + b)) - lb) / b;
        const double w = t + u;
        x = q < t / w ? std::pow(a * w * q, 1.0 / a) : 1.0 - std::pow(b * w * (1.0 - q), 1.0 / b);
    }
    double lo = 0.0, hi = 1.0;
    if (!(x > 0.0 && x < 1.0)) x = 0.5;
    for (int it = 0; it < 300; ++it) {
        const double f = beta_inc(a, b, x, lb) - q;
        if (f == 0.0) return x;
        if (f < 0.0) lo = x; else hi = x;
        const double pdf = std::exp((a - 1.0) * std::log(x) + (b - 1.0) * std::log1p(-x) - lb);
        const double u = f / pdf;
        // Halley only while its correction is mild; far from the root (pdf ~ 1e-94 at a = 3000) it
        // would crawl, so Newton overshoots the bracket and bisection takes over.
        const double curv = u * ((a - 1.0) / x - (b - 1.0) / (1.0 - x));
        const double step = std::fabs(curv) < 1.0 ? u / (1.0 - 0.5 * curv) : u;
        double next = x - step;
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
        if (std::fabs(next - x) <= 1e-15 * x || hi - lo <= 1e-300) return next;
        x = next;
    }
    return x;
}

}  // namespace passk

namespace passk {

// A double-double with a separate binary exponent, for products of up to ~10^6 factors.
struct XD {
    DD v{1.0, 0.0};
    int e = 0;
    // Keeps v.hi in [0.5, 1). The exponent is read from the bits and the rescaling is a multiplication
    // by a power of two built from bits (exact, as ldexp's is): frexp + ldexp, two libm calls per
    // factor, were ~2/3 of the prefix build. Out of the safe range (subnormal or huge hi) libm does it.
    void normalise() {
        uint64_t bits;
        std::memcpy(&bits, &v.hi, sizeof bits);
        const int biased = static_cast<int>((bits >> 52) & 0x7ff);
        if (biased < 64 || biased > 1984) {
            int ex = 0;
            const double m = std::frexp(v.hi, &ex);
            v.lo = std::ldexp(v.lo, -ex);
            v.hi = m;
            e += ex;
            return;
        }
        const int ex = biased - 1022;  // v.hi = m * 2^ex, m in [0.5, 1)
        const double scale = pow2(-ex);
        v.hi *= scale;
        v.lo *= scale;
        e += ex;
    }
    void mul(DD f) {
        v = dd_mul(v, f);
        normalise();
    }
    // 2^s for s in [-1022, 1023], from its bits.
    static double pow2(int s) {
        const uint64_t bits = static_cast<uint64_t>(1023 + s) << 52;
        double out;
        std::memcpy(&out, &bits, sizeof out);
        return out;
    }
};

// x * y with exponents added (mantissas in [0.5, 1): the product in [0.25, 1), not renormalised).
inline XD xd_mul(const XD& x, const XD& y) {
    XD r;
    r.v = dd_mul(x.v, y.v);
    r.e = x.e + y.e;
    return r;
}

// 1 / x, normalised.
inline XD xd_inverse(const XD& x) {
    XD r;
    r.v = dd_div(DD{1.0, 0.0}, x.v);
    r.e = -x.e;
    r.normalise();
    return r;
}

// x * y * z as a plain double-double, for products known to be <= 1 (moments): the mantissa product
// is in [1/64, 1], so the exponent sum is at most 6; below 2^-1000 the value is flushed to 0.
inline DD xd_value3(const XD& x, const XD& y, const XD& z) {
    const DD r = dd_mul(dd_mul(x.v, y.v), z.v);
    const int shift = x.e + y.e + z.e;
    if (shift < -1000) return DD{};
    const double scale = XD::pow2(shift);
    return DD{r.hi * scale, r.lo * scale};
}

// pre1[T] = prod_{t<T} (base1 + t) and pre2 likewise, each factor base + t (base = hi + lo, a
// double-double) to ~2^-106. Both chains in one loop: each step waits on the last (~40 cycles of
// dependent double-double work), so two independent chains take the time of one.
inline void shifted_prefixes(DD base1, DD base2, int64_t upto, std::vector<XD>& pre1, std::vector<XD>& pre2) {
    pre1.resize(static_cast<size_t>(upto + 1));
    pre2.resize(static_cast<size_t>(upto + 1));
    const auto factor = [](DD base, double t) {
        double s, e, hi, lo;
        two_sum(base.hi, t, s, e);
        quick_two_sum(s, e + base.lo, hi, lo);
        return DD{hi, lo};
    };
    XD x1, x2;
    pre1[0] = x1;
    pre2[0] = x2;
    for (int64_t t = 0; t < upto; ++t) {
        x1.mul(factor(base1, static_cast<double>(t)));
        x2.mul(factor(base2, static_cast<double>(t)));
        pre1[static_cast<size_t>(t + 1)] = x1;
        pre2[static_cast<size_t>(t + 1)] = x2;
    }
}

}  // namespace passk
