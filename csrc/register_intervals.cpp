// Benchmark-target intervals: posterior draws of every problem's solve rate on a grid of rates.
//
// Model: problem i's rate p_i takes grid value r_g with probability w_g; c_i ~ Binomial(n_i, p_i). The
// grid weights get a Dirichlet(alpha) prior, so their own uncertainty (how much mass sits at 0 or near
// it, which decides pass@k at k = n) travels into every draw. A Gibbs sampler alternates
//   z | w: each problem's grid index, drawn from w_g L(c_i | n_i, r_g) (problems with the same (n, c)
//          share one cumulative table), and
//   w | z: Dirichlet(alpha + problems at each grid point),
// starting from the weights' maximum-likelihood estimate (EM, the NPMLE on the grid). Draw r returns
// how many problems sit at each grid point, so any mean of g(p) over problems is a matrix product.
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <vector>

#include "common.hpp"
#include "rng.hpp"

namespace passk {
namespace {

// Grid columns whose likelihood is below 1e-18 of the row's largest cannot be drawn in practice; each
// pair keeps its [lo, hi) run of columns, about a third of a 129-point grid at n = 128 (measured).
constexpr double kNegligible = 1e-18;

struct Grid {
    size_t D, G;
    const double* lik;  // [D, G], every row scaled to a maximum of 1
    std::vector<size_t> lo, hi;
};

void em(const Grid& grid, const double* count, double total, std::vector<double>& w, int64_t iters) {
    std::vector<double> next(grid.G);
    for (int64_t it = 0; it < iters; ++it) {
        std::fill(next.begin(), next.end(), 0.0);
        for (size_t d = 0; d < grid.D; ++d) {
            if (count[d] == 0.0) continue;
            const double* row = grid.lik + d * grid.G;
            double f = 0.0;
            for (size_t g = grid.lo[d]; g < grid.hi[d]; ++g) f += w[g] * row[g];
            if (!(f > 0.0)) continue;
            const double s = count[d] / f;
            for (size_t g = grid.lo[d]; g < grid.hi[d]; ++g) next[g] += s * row[g];
        }
        for (size_t g = 0; g < grid.G; ++g) w[g] *= next[g] / total;
    }
}

py::tuple grid_posterior(const F64Array& lik, const I64Array& pair_count, const F64Array& alpha, int64_t draws,
                         int64_t burn, int64_t em_iters, int64_t per_weight, uint64_t seed) {
    if (lik.ndim() != 2) throw std::invalid_argument("lik must be 2-D [pairs, grid]");
    Grid grid{static_cast<size_t>(lik.shape(0)), static_cast<size_t>(lik.shape(1)), lik.data(), {}, {}};
    same_length(grid.D, length_1d(pair_count, "pair_count"), "lik rows", "pair_count");
    same_length(grid.G, length_1d(alpha, "alpha"), "lik columns", "alpha");
    if (grid.D == 0 || grid.G == 0) throw std::invalid_argument("lik is empty");
    if (grid.G > 65535) throw std::invalid_argument("lik has more than 65535 grid columns");
    if (draws < 1 || burn < 0 || em_iters < 0 || per_weight < 1)
        throw std::invalid_argument("draws and per_weight must be >= 1, burn and em_iters >= 0");
    const int64_t* m = pair_count.data();
    const double* a = alpha.data();
    std::vector<double> count(grid.D);
    double total = 0.0;
    for (size_t d = 0; d < grid.D; ++d) {
        if (m[d] < 0) throw std::invalid_argument("pair_count[" + std::to_string(d) + "] is negative");
        count[d] = static_cast<double>(m[d]);
        total += count[d];
    }
    if (total == 0.0) throw std::invalid_argument("pair_count sums to 0: no problems");
    for (size_t g = 0; g < grid.G; ++g)
        if (!(a[g] > 0.0) || !std::isfinite(a[g])) throw std::invalid_argument("alpha[" + std::to_string(g) + "] must be positive");
    grid.lo.resize(grid.D);
    grid.hi.resize(grid.D);
    for (size_t d = 0; d < grid.D; ++d) {
        const double* row = grid.lik + d * grid.G;
        size_t lo = 0, hi = grid.G;
        while (lo < grid.G && !(row[lo] > kNegligible)) ++lo;
        while (hi > lo && !(row[hi - 1] > kNegligible)) --hi;
        if (lo == hi) throw std::invalid_argument("lik row " + std::to_string(d) + " has no positive entry");
        for (size_t g = lo; g < hi; ++g)
            if (!(row[g] >= 0.0) || !std::isfinite(row[g]))
                throw std::invalid_argument("lik[" + std::to_string(d) + ", " + std::to_string(g) + "] is not a finite non-negative number");
        grid.lo[d] = lo;
        grid.hi[d] = hi;
    }
    py::array_t<double> out({static_cast<py::ssize_t>(draws), static_cast<py::ssize_t>(grid.G)});
    py::array_t<double> start(static_cast<py::ssize_t>(grid.G));
    double* o = out.mutable_data();
    double* w_out = start.mutable_data();
    {
        py::gil_scoped_release nogil;
        std::vector<double> w(grid.G, 1.0 / static_cast<double>(grid.G));
        em(grid, count.data(), total, w, em_iters);
        std::copy(w.begin(), w.end(), w_out);
        SplitMix rng{splitmix64(seed)};
        // Every pair's cumulative table is built once per weight draw and serves `per_weight` draws of
        // the allocation (each, with the weights, a draw from the joint posterior); the last one moves
        // the chain. At MATH500's size the tables and the Dirichlet cost ~2/3 of a step (measured).
        std::vector<double> cum(grid.G * grid.D);
        std::vector<uint32_t> h(grid.G);
        // Guide tables (the cutpoint method) for pairs drawn often per table: guide[b] is the first
        // column whose cumulative weight exceeds b/width of the total, so a draw starts next to its
        // answer instead of bisecting. The walk then finds exactly upper_bound's column, so the draws
        // are the same as with bisection, ~2x cheaper at MATH500's size (measured).
        std::vector<uint16_t> guide(grid.G * grid.D);
        std::vector<char> guided(grid.D, 0);
        const int64_t steps = burn + (draws + per_weight - 1) / per_weight;
        int64_t kept = 0;
        for (int64_t it = 0; it < steps; ++it) {
            const int64_t reps = it < burn ? 1 : std::min(per_weight, draws - kept);
            for (size_t d = 0; d < grid.D; ++d) {
                if (m[d] == 0) continue;
                const double* row = grid.lik + d * grid.G;
                double* cd = cum.data() + d * grid.G;
                const size_t lo = grid.lo[d], width = grid.hi[d] - lo;
                double s = 0.0;
                for (size_t j = 0; j < width; ++j) cd[j] = (s += w[lo + j] * row[lo + j]);
                // Weights that vanish on this pair's whole run (a Dirichlet draw can underflow to 0):
                // the likelihood alone decides, as under a flat prior on the run.
                if (!(s > 0.0)) {
                    s = 0.0;
                    for (size_t j = 0; j < width; ++j) cd[j] = (s += row[lo + j]);
                }
                guided[d] = m[d] * reps >= 16;
                if (guided[d]) {
                    uint16_t* gd = guide.data() + d * grid.G;
                    const double step = s / static_cast<double>(width);
                    size_t j = 0;
                    for (size_t b = 0; b < width; ++b) {
                        const double edge = step * static_cast<double>(b);
                        while (j + 1 < width && !(cd[j] > edge)) ++j;
                        gd[b] = static_cast<uint16_t>(j);
                    }
                }
            }
            for (int64_t rep = 0; rep < reps; ++rep) {
                std::fill(h.begin(), h.end(), 0u);
                for (size_t d = 0; d < grid.D; ++d) {
                    if (m[d] == 0) continue;
                    const double* cd = cum.data() + d * grid.G;
                    const size_t lo = grid.lo[d], width = grid.hi[d] - lo;
                    const double s = cd[width - 1];
                    uint32_t* hd = h.data() + lo;
                    if (guided[d]) {
                        // 32 random bits per draw, two draws per 64-bit output: a cell's share is resolved
                        // to 2^-32 of the pair's total (columns below that are ~1e-9 likely: negligible
                        // next to the draws' own Monte-Carlo error). The bucket is an integer product, so
                        // no division; most draws take no step of the walk. Measured ~2x cheaper per draw.
                        const uint16_t* gd = guide.data() + d * grid.G;
                        const double unit = s * 0x1.0p-32;
                        auto one = [&](uint32_t bits) {
                            const double u = (static_cast<double>(bits) + 0.5) * unit;
                            size_t j = gd[(static_cast<uint64_t>(bits) * width) >> 32];
                            while (j > 0 && cd[j - 1] > u) --j;  // rounding in the bucket: step back
                            while (j + 1 < width && !(cd[j] > u)) ++j;
                            ++hd[j];
                        };
                        int64_t i = 0;
                        for (; i + 1 < m[d]; i += 2) {
                            const uint64_t r = rng.next();
                            one(static_cast<uint32_t>(r >> 32));
                            one(static_cast<uint32_t>(r));
                        }
                        if (i < m[d]) one(static_cast<uint32_t>(rng.next() >> 32));
                        continue;
                    }
                    for (int64_t i = 0; i < m[d]; ++i) {
                        const double u = rng.uniform() * s;
                        const size_t j = static_cast<size_t>(std::upper_bound(cd, cd + width, u) - cd);
                        ++hd[std::min(j, width - 1)];
                    }
                }
                if (it >= burn) {
                    double* row = o + static_cast<size_t>(kept++) * grid.G;
                    for (size_t g = 0; g < grid.G; ++g) row[g] = static_cast<double>(h[g]);
                }
            }
            double sum = 0.0;
            for (size_t g = 0; g < grid.G; ++g) sum += (w[g] = rng.gamma(a[g] + static_cast<double>(h[g])));
            for (size_t g = 0; g < grid.G; ++g) w[g] /= sum;
        }
    }
    return py::make_tuple(out, start);
}

}  // namespace

void register_intervals(py::module_& m) {
    m.def("grid_posterior", &grid_posterior, py::arg("lik"), py::arg("pair_count"), py::arg("alpha"), py::arg("draws"),
          py::arg("burn"), py::arg("em_iters"), py::arg("per_weight"), py::arg("seed"),
          "Gibbs draws of how many problems sit at each grid rate: lik[d, g] = L(pair d | rate g) (rows scaled), "
          "pair_count[d] problems per pair, Dirichlet(alpha) on the grid weights, started from em_iters EM steps. "
          "Returns (counts [draws, G], the EM weights [G]). Deterministic in seed.");
}

}  // namespace passk
