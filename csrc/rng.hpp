// Counter-seeded random numbers for the core's resampling: splitmix64 (strong, and seeded by a counter,
// so resample r's draws depend only on (seed, r), never on a thread split), uniform doubles, standard
// normals (ziggurat) and gamma variates (Marsaglia-Tsang) for Dirichlet draws.
#pragma once

#include <cmath>
#include <cstdint>

namespace passk {

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// The ziggurat's layers for the standard normal: x[i] the right edge of layer i (x[0] the base
// layer's width, x[1] = r, x[128] = 0), ratio[i] = x[i + 1] / x[i], the share of layer i under the curve
// everywhere. Built once (function-local static: thread-safe).
struct Ziggurat {
    static constexpr double kR = 3.442619855899, kV = 9.91256303526217e-3;
    double x[129], ratio[128];
    Ziggurat() {
        double f = std::exp(-0.5 * kR * kR);
        x[0] = kV / f;
        x[1] = kR;
        x[128] = 0.0;
        for (int i = 2; i < 128; ++i) {
            x[i] = std::sqrt(-2.0 * std::log(kV / x[i - 1] + f));
            f = std::exp(-0.5 * x[i] * x[i]);
        }
        for (int i = 0; i < 128; ++i) ratio[i] = x[i + 1] / x[i];
    }
};

inline const Ziggurat& ziggurat() {
    static const Ziggurat z;
    return z;
}

struct SplitMix {
    static constexpr uint64_t kStep = 0x9E3779B97F4A7C15ull;
    uint64_t state;
    static uint64_t mix(uint64_t x) {
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        return x ^ (x >> 31);
    }
    uint64_t next() { return mix(state += kStep); }
    // The stream is a counter: output k (1-based) from here is mix(state + k * kStep), so a loop may
    // read its outputs in any order (at) and then move past them (skip) with the same numbers.
    uint64_t at(uint64_t k) const { return mix(state + k * kStep); }
    void skip(uint64_t k) { state += k * kStep; }
    // Unbiased integer in [0, range) by Lemire's multiply-shift with rejection.
    uint64_t bounded(uint64_t range) {
        const uint64_t threshold = (0 - range) % range;
        while (true) {
            const unsigned __int128 m = static_cast<unsigned __int128>(next()) * range;
            if (static_cast<uint64_t>(m) >= threshold) return static_cast<uint64_t>(m >> 64);
        }
    }
    // Uniform in (0, 1): 53 random bits, never exactly 0 (logs of it stay finite).
    double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
    // Standard normal by the ziggurat (Doornik 2005's ZIGNOR: 128 layers, Marsaglia and Tsang's r and
    // v): 98.8% of draws take one 64-bit output, a compare and a multiply; the polar method it replaced
    // took two uniforms, a log, a square root and a division (the grid posterior's gamma draws: 1.6 ->
    // 0.9 ms at MATH500's size). 53 bits of the output give u, the low 7 the layer.
    double normal() {
        const Ziggurat& z = ziggurat();
        while (true) {
            const uint64_t bits = next();
            const double u = (static_cast<double>(bits >> 11) + 0.5) * 0x1.0p-52 - 1.0;  // (-1, 1)
            const unsigned i = static_cast<unsigned>(bits & 127u);
            if (std::fabs(u) < z.ratio[i]) return u * z.x[i];
            if (i == 0) {  // the base layer's tail beyond r: Marsaglia's exponential rejection
                double x, y;
                do {
                    x = std::log(uniform()) / Ziggurat::kR;
                    y = std::log(uniform());
                } while (-2.0 * y < x * x);
                return u < 0.0 ? x - Ziggurat::kR : Ziggurat::kR - x;
            }
            const double x = u * z.x[i];  // a wedge: accept under the density
            const double f0 = std::exp(-0.5 * (z.x[i] * z.x[i] - x * x));
            const double f1 = std::exp(-0.5 * (z.x[i + 1] * z.x[i + 1] - x * x));
            if (f1 + uniform() * (f0 - f1) < 1.0) return x;
        }
    }
    // Marsaglia and Tsang's constants for a shape >= 1, to be computed once where one shape recurs.
    struct GammaShape {
        double d, c;
        explicit GammaShape(double shape) : d(shape - 1.0 / 3.0), c(1.0 / std::sqrt(9.0 * d)) {}
    };
    // Gamma(shape, 1) by Marsaglia and Tsang; shape < 1 through Gamma(shape + 1) * U^(1/shape).
    double gamma(double shape) {
        if (shape < 1.0) return gamma_below_one(shape, GammaShape(shape + 1.0));
        return gamma(GammaShape(shape));
    }
    // The same numbers as gamma(shape) for shape < 1, with GammaShape(shape + 1) given.
    double gamma_below_one(double shape, const GammaShape& boosted) {
        return gamma(boosted) * std::exp(std::log(uniform()) / shape);
    }
    double gamma(const GammaShape& s) {
        while (true) {
            double x, v;
            do {
                x = normal();
                v = 1.0 + s.c * x;
            } while (v <= 0.0);
            v = v * v * v;
            const double u = uniform();
            if (u < 1.0 - 0.0331 * x * x * x * x) return s.d * v;
            if (std::log(u) < 0.5 * x * x + s.d * (1.0 - v + std::log(v))) return s.d * v;
        }
    }
};

}  // namespace passk
