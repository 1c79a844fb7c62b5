// Counter-seeded random numbers for the core's resampling: splitmix64 (strong, and seeded by a counter,
// so resample r's draws depend only on (seed, r), never on a thread split), uniform doubles, standard
// normals and gamma variates (Marsaglia-Tsang) for Dirichlet draws.
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
    // Standard normal by the polar method (the spare is dropped: draws stay a function of the stream).
    double normal() {
        while (true) {
            const double u = 2.0 * uniform() - 1.0, v = 2.0 * uniform() - 1.0, s = u * u + v * v;
            if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
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
