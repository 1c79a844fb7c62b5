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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PASSK_GRID_AVX2 1
#endif

namespace passk {
namespace {

// Grid columns whose likelihood is below 1e-18 of the row's largest cannot be drawn in practice; each
// pair keeps its [lo, hi) run of columns, 46 to 63 of a 129-point grid at n = 128 (MATH500, measured).
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

// How many of cum[0 .. 2^L) are <= u: std::upper_bound's index in a sorted run padded with +inf, by a
// bisection without branches (a compare feeds an add). The first three compares are independent and
// pick a quarter. Guide tables with a walk cost ~2x more at MATH500's size (measured): their building
// is per pair and weight draw, and the walk's exits mispredict.
template <int L>
size_t upper_index(const double* cum, double u) {
    constexpr size_t q = size_t{1} << (L - 2);
    size_t j = q * (static_cast<size_t>(cum[q - 1] <= u) + static_cast<size_t>(cum[2 * q - 1] <= u) +
                    static_cast<size_t>(cum[3 * q - 1] <= u));
    for (int l = L - 3; l >= 0; --l) {
        const size_t step = size_t{1} << l;
        j += step & (size_t{0} - static_cast<size_t>(cum[j + step - 1] <= u));
    }
    return j;
}

// One pair's allocation draws for every rep of a weight draw. The stream is read as if reps ran one
// after another over all pairs (rep r's outputs for this pair start at r * per_rep + first): the same
// numbers as drawing rep by rep, with the pair's table built once and hot. Pairs drawn >= 16 times
// per table take two 32-bit draws per output (a cell's share resolved to 2^-32 of the pair's total:
// negligible next to the draws' own Monte-Carlo error); the rest one 53-bit uniform each.
struct PairDraws {
    const double* cum;  // the pair's cumulative weights, padded with +inf to a power of two >= 4
    size_t width;       // real entries; cum[width - 1] is the total
    int64_t m, reps;
    bool halves;
    uint64_t first, per_rep;  // stream positions (1-based, from the step's state)
    uint32_t* hist;           // rep r's counts at hist + r * stride, from the pair's first column
    size_t stride;
};

// Two 32-bit draws per output. u = (bits + 0.5) * total * 2^-32 stays below the total (by 2^-33 of it,
// far above rounding) whenever total * 2^-32 is a normal number, so the index is at most width - 1:
// Clamp only for totals under 2^-960, where it could round up (never seen: weights sum to 1).
template <int L, bool Clamp>
void draw_halves(const PairDraws& p, const SplitMix& rng) {
    const double* cum = p.cum;
    const size_t last = p.width - 1;
    const double unit = cum[last] * 0x1.0p-32;
    auto one = [cum, last, unit](uint32_t* h, uint32_t bits) {
        const size_t j = upper_index<L>(cum, (static_cast<double>(bits) + 0.5) * unit);
        ++h[Clamp ? std::min(j, last) : j];
    };
    for (int64_t r = 0; r < p.reps; ++r) {
        uint32_t* h = p.hist + static_cast<size_t>(r) * p.stride;
        uint64_t k = p.first + static_cast<uint64_t>(r) * p.per_rep;
        int64_t i = 0;
        for (; i + 1 < p.m; i += 2) {
            const uint64_t x = rng.at(k++);
            one(h, static_cast<uint32_t>(x >> 32));
            one(h, static_cast<uint32_t>(x));
        }
        if (i < p.m) one(h, static_cast<uint32_t>(rng.at(k) >> 32));
    }
}

template <int L>
void draw_pair(const PairDraws& p, const SplitMix& rng) {
    const double* cum = p.cum;
    const size_t last = p.width - 1;
    const double total = cum[last];
    if (p.halves) {
        if (total >= 0x1.0p-960) draw_halves<L, false>(p, rng);
        else draw_halves<L, true>(p, rng);
        return;
    }
    for (int64_t r = 0; r < p.reps; ++r) {
        uint32_t* h = p.hist + static_cast<size_t>(r) * p.stride;
        uint64_t k = p.first + static_cast<uint64_t>(r) * p.per_rep;
        for (int64_t i = 0; i < p.m; ++i) {
            const double u = (static_cast<double>(rng.at(k++) >> 11) + 0.5) * 0x1.0p-53 * total;
            ++h[std::min(upper_index<L>(cum, u), last)];  // u can round up to the total: as upper_bound's clamp
        }
    }
}

void draw_pair(const PairDraws& p, const SplitMix& rng, int levels) {
    switch (levels) {
        case 2: return draw_pair<2>(p, rng);
        case 3: return draw_pair<3>(p, rng);
        case 4: return draw_pair<4>(p, rng);
        case 5: return draw_pair<5>(p, rng);
        case 6: return draw_pair<6>(p, rng);
        case 7: return draw_pair<7>(p, rng);
        case 8: return draw_pair<8>(p, rng);
        case 9: return draw_pair<9>(p, rng);
        case 10: return draw_pair<10>(p, rng);
        case 11: return draw_pair<11>(p, rng);
        case 12: return draw_pair<12>(p, rng);
        case 13: return draw_pair<13>(p, rng);
        case 14: return draw_pair<14>(p, rng);
        case 15: return draw_pair<15>(p, rng);
        default: return draw_pair<16>(p, rng);
    }
}

// Bisection levels for a run of `width` columns: at least 2 (upper_index's quarters).
int levels_for(size_t width) {
    int levels = 2;
    while ((size_t{1} << levels) < width) ++levels;
    return levels;
}

// The Dirichlet step's gamma draws, Gamma(alpha_g + count_g), with Marsaglia and Tsang's constants
// (a square root and a division) computed once per shape that recurs: alpha_g + 1 for the boost of
// every empty grid point (~90 of 129 in a MATH500 draw), and alpha + count for counts up to 4,096
// where alpha is one value over the grid (posterior_grid's). The same arithmetic: the same numbers.
class DirichletShapes {
  public:
    DirichletShapes(const double* alpha, size_t G, uint32_t problems) : alpha_(alpha) {
        for (size_t g = 0; g < G; ++g) boosted_.emplace_back(alpha[g] + 1.0);
        if (std::all_of(alpha, alpha + G, [&](double v) { return v == alpha[0]; }))
            for (uint32_t c = 0; c <= std::min(problems, 4096u); ++c) by_count_.emplace_back(alpha[0] + static_cast<double>(c));
    }
    double draw(SplitMix& rng, size_t g, uint32_t count) const {
        const double a = alpha_[g];
        if (count == 0 && a < 1.0) return rng.gamma_below_one(a, boosted_[g]);
        if (count > 0 && count < by_count_.size()) return rng.gamma(by_count_[count]);
        return rng.gamma(a + static_cast<double>(count));
    }

  private:
    const double* alpha_;
    std::vector<SplitMix::GammaShape> boosted_, by_count_;
};

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
    // The draws count problems per grid point in uint32: more problems than that would wrap.
    if (total > 4294967295.0) throw std::invalid_argument("pair_count sums to more than 4294967295 problems");
    for (size_t g = 0; g < grid.G; ++g)
        if (!(a[g] > 0.0) || !std::isfinite(a[g])) throw std::invalid_argument("alpha[" + std::to_string(g) + "] must be positive");
    grid.lo.resize(grid.D);
    grid.hi.resize(grid.D);
    for (size_t d = 0; d < grid.D; ++d) {
        const double* row = grid.lik + d * grid.G;
        for (size_t g = 0; g < grid.G; ++g)  // the whole row: the trim below would skip a NaN at an end
            if (!(row[g] >= 0.0) || !std::isfinite(row[g]))
                throw std::invalid_argument("lik[" + std::to_string(d) + ", " + std::to_string(g) + "] is not a finite non-negative number");
        size_t lo = 0, hi = grid.G;
        while (lo < grid.G && !(row[lo] > kNegligible)) ++lo;
        while (hi > lo && !(row[hi - 1] > kNegligible)) --hi;
        if (lo == hi) throw std::invalid_argument("lik row " + std::to_string(d) + " has no positive entry");
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
        // the chain. Pair by pair, all reps at once: the table stays in L1 while it is used.
        std::vector<double> cum(size_t{1} << levels_for(grid.G), HUGE_VAL);
        std::vector<uint32_t> h(static_cast<size_t>(std::min(per_weight, draws)) * grid.G);
        std::vector<uint64_t> first(grid.D);
        const DirichletShapes shapes(a, grid.G, static_cast<uint32_t>(total));
        const int64_t steps = burn + (draws + per_weight - 1) / per_weight;
        int64_t kept = 0;
        for (int64_t it = 0; it < steps; ++it) {
            const int64_t reps = it < burn ? 1 : std::min(per_weight, draws - kept);
            uint64_t per_rep = 0;  // stream outputs one allocation draw reads
            for (size_t d = 0; d < grid.D; ++d) {
                first[d] = per_rep + 1;
                per_rep += static_cast<uint64_t>(m[d] * reps >= 16 ? (m[d] + 1) / 2 : m[d]);
            }
            std::fill(h.begin(), h.begin() + reps * static_cast<int64_t>(grid.G), 0u);
            for (size_t d = 0; d < grid.D; ++d) {
                if (m[d] == 0) continue;
                const double* row = grid.lik + d * grid.G;
                const size_t lo = grid.lo[d], width = grid.hi[d] - lo;
                const int levels = levels_for(width);
                double s = 0.0;
                for (size_t j = 0; j < width; ++j) cum[j] = (s += w[lo + j] * row[lo + j]);
                // Weights that vanish on this pair's whole run (a Dirichlet draw can underflow to 0):
                // the likelihood alone decides, as under a flat prior on the run.
                if (!(s > 0.0)) {
                    s = 0.0;
                    for (size_t j = 0; j < width; ++j) cum[j] = (s += row[lo + j]);
                }
                std::fill(cum.begin() + static_cast<std::ptrdiff_t>(width),
                          cum.begin() + (std::ptrdiff_t{1} << levels), HUGE_VAL);
                const PairDraws p{cum.data(), width, m[d], reps, m[d] * reps >= 16, first[d], per_rep, h.data() + lo, grid.G};
                draw_pair(p, rng, levels);
            }
            rng.skip(static_cast<uint64_t>(reps) * per_rep);
            if (it >= burn) {
                for (int64_t r = 0; r < reps; ++r) {
                    double* row = o + static_cast<size_t>(kept++) * grid.G;
                    const uint32_t* hr = h.data() + static_cast<size_t>(r) * grid.G;
                    for (size_t g = 0; g < grid.G; ++g) row[g] = static_cast<double>(hr[g]);
                }
            }
            const uint32_t* last = h.data() + static_cast<size_t>(reps - 1) * grid.G;
            double sum = 0.0;
            for (size_t g = 0; g < grid.G; ++g) sum += (w[g] = shapes.draw(rng, g, last[g]));
            for (size_t g = 0; g < grid.G; ++g) w[g] /= sum;
        }
    }
    return py::make_tuple(out, start);
}

// Draws' curves: out[r, k] = sum over g of counts[r, g] * table[g, k]. A draw's counts are sparse (~38
// of 129 grid points hold a problem at MATH500's size), so two draws at a time sum over the grid points
// either holds, 16 columns at a time in registers, each table load serving both (0.8-0.9 ms for
// MATH500's 2,000 x 128 on the quiet 2-core VM; one draw at a time 1.5 ms). One thread:
// BLAS's threaded product took 0.6 ms there when quiet but 2-6 ms while another process held a core.
struct DrawPair {
    std::vector<uint32_t> g;
    std::vector<double> a, b;  // the two draws' counts at the grid points g[0 .. n)
    size_t n = 0;
    // Every point is written and n moves on only past those either draw holds: no branch to
    // mispredict (a branch per point cost ~0.3 ms of 1.1 at MATH500's size). g, a, b have G + 1 slots.
    void load(const double* ra, const double* rb, size_t G) {  // rb may be null (an odd last draw)
        n = 0;
        for (size_t j = 0; j < G; ++j) {
            const double x = ra[j], y = rb ? rb[j] : 0.0;
            g[n] = static_cast<uint32_t>(j);
            a[n] = x;
            b[n] = y;
            n += static_cast<size_t>((x != 0.0) | (y != 0.0));
        }
    }
};

void curves_generic(const double* counts, const double* table, double* out, size_t R, size_t G, size_t K) {
    DrawPair p{std::vector<uint32_t>(G + 1), std::vector<double>(G + 1), std::vector<double>(G + 1)};
    for (size_t r = 0; r < R; r += 2) {
        const bool two = r + 1 < R;
        p.load(counts + r * G, two ? counts + (r + 1) * G : nullptr, G);
        for (size_t k = 0; k < K; k += 16) {
            const size_t width = std::min<size_t>(16, K - k);
            double x[16] = {}, y[16] = {};
            for (size_t i = 0; i < p.n; ++i) {
                const double* t = table + p.g[i] * K + k;
                for (size_t c = 0; c < width; ++c) {
                    x[c] += p.a[i] * t[c];
                    y[c] += p.b[i] * t[c];
                }
            }
            std::copy(x, x + width, out + r * K + k);
            if (two) std::copy(y, y + width, out + (r + 1) * K + k);
        }
    }
}

#ifdef PASSK_GRID_AVX2
// A multiply then an add, not an FMA: curves_generic's rounding (the build sets -ffp-contract=off), so a
// study's intervals are the same numbers on a CPU with or without AVX2.
__attribute__((target("avx2"))) void curves_avx2(const double* counts, const double* table, double* out, size_t R,
                                                 size_t G, size_t K) {
    DrawPair p{std::vector<uint32_t>(G + 1), std::vector<double>(G + 1), std::vector<double>(G + 1)};
    for (size_t r = 0; r < R; r += 2) {
        const bool two = r + 1 < R;
        p.load(counts + r * G, two ? counts + (r + 1) * G : nullptr, G);
        double* oa = out + r * K;
        double* ob = oa + K;
        size_t k = 0;
        for (; k + 16 <= K; k += 16) {
            __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (size_t i = 0; i < p.n; ++i) {
                const double* t = table + p.g[i] * K + k;
                const __m256d t0 = _mm256_loadu_pd(t), t1 = _mm256_loadu_pd(t + 4), t2 = _mm256_loadu_pd(t + 8),
                              t3 = _mm256_loadu_pd(t + 12);
                const __m256d x = _mm256_set1_pd(p.a[i]), y = _mm256_set1_pd(p.b[i]);
                a0 = _mm256_add_pd(a0, _mm256_mul_pd(x, t0));
                a1 = _mm256_add_pd(a1, _mm256_mul_pd(x, t1));
                a2 = _mm256_add_pd(a2, _mm256_mul_pd(x, t2));
                a3 = _mm256_add_pd(a3, _mm256_mul_pd(x, t3));
                b0 = _mm256_add_pd(b0, _mm256_mul_pd(y, t0));
                b1 = _mm256_add_pd(b1, _mm256_mul_pd(y, t1));
                b2 = _mm256_add_pd(b2, _mm256_mul_pd(y, t2));
                b3 = _mm256_add_pd(b3, _mm256_mul_pd(y, t3));
            }
            _mm256_storeu_pd(oa + k, a0);
            _mm256_storeu_pd(oa + k + 4, a1);
            _mm256_storeu_pd(oa + k + 8, a2);
            _mm256_storeu_pd(oa + k + 12, a3);
            if (!two) continue;
            _mm256_storeu_pd(ob + k, b0);
            _mm256_storeu_pd(ob + k + 4, b1);
            _mm256_storeu_pd(ob + k + 8, b2);
            _mm256_storeu_pd(ob + k + 12, b3);
        }
        for (; k < K; ++k) {
            double x = 0.0, y = 0.0;
            for (size_t i = 0; i < p.n; ++i) {
                x += p.a[i] * table[p.g[i] * K + k];
                y += p.b[i] * table[p.g[i] * K + k];
            }
            oa[k] = x;
            if (two) ob[k] = y;
        }
    }
}
#endif

py::array_t<double> grid_curves(const F64Array& counts, const F64Array& table, bool simd) {
    if (counts.ndim() != 2) throw std::invalid_argument("counts must be 2-D [draws, grid]");
    if (table.ndim() != 2) throw std::invalid_argument("table must be 2-D [grid, ks]");
    const size_t R = static_cast<size_t>(counts.shape(0)), G = static_cast<size_t>(counts.shape(1));
    const size_t K = static_cast<size_t>(table.shape(1));
    same_length(G, static_cast<size_t>(table.shape(0)), "counts columns", "table rows");
    py::array_t<double> out({static_cast<py::ssize_t>(R), static_cast<py::ssize_t>(K)});
    const double* c = counts.data();
    const double* t = table.data();
    double* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
#ifdef PASSK_GRID_AVX2
        if (simd && __builtin_cpu_supports("avx2")) curves_avx2(c, t, o, R, G, K);
        else curves_generic(c, t, o, R, G, K);
#else
        (void)simd;
        curves_generic(c, t, o, R, G, K);
#endif
    }
    return out;
}

// The correction's passes over the draws' curves (posterior_grid.curves), each a single pass in place of
// numpy's two to three with temporaries (~1 ms less at MATH500's size), in numpy's order of operations:
// a column's sums run over the draws in order, as numpy's reduction over axis 0 of a C-ordered array
// does, so the numbers are numpy's.
py::tuple grid_moments(const F64Array& raw, int64_t spread_columns) {
    if (raw.ndim() != 2) throw std::invalid_argument("raw must be 2-D [draws, ks]");
    const size_t R = static_cast<size_t>(raw.shape(0)), K = static_cast<size_t>(raw.shape(1));
    if (R == 0) throw std::invalid_argument("raw has no draws");
    if (spread_columns < 0 || static_cast<size_t>(spread_columns) > K)
        throw std::invalid_argument("spread_columns must be in [0, " + std::to_string(K) + "], got " + std::to_string(spread_columns));
    const size_t L = static_cast<size_t>(spread_columns);
    py::array_t<double> mean_out(static_cast<py::ssize_t>(K)), sd_out(static_cast<py::ssize_t>(L));
    const double* x = raw.data();
    double* mean = mean_out.mutable_data();
    double* sd = sd_out.mutable_data();
    {
        py::gil_scoped_release nogil;
        std::fill(mean, mean + K, 0.0);
        for (size_t r = 0; r < R; ++r)
            for (size_t k = 0; k < K; ++k) mean[k] += x[r * K + k];
        const double n = static_cast<double>(R);
        for (size_t k = 0; k < K; ++k) mean[k] /= n;
        std::fill(sd, sd + L, 0.0);
        for (size_t r = 0; r < R; ++r)
            for (size_t k = 0; k < L; ++k) {
                const double d = x[r * K + k] - mean[k];
                sd[k] += d * d;
            }
        for (size_t k = 0; k < L; ++k) sd[k] = std::sqrt(sd[k] / n);
    }
    return py::make_tuple(mean_out, sd_out);
}

// raw = clip(raw * scale + offset, 0, 1), column by column, in place.
void grid_affine_clip(py::array_t<double, py::array::c_style> raw, const F64Array& scale, const F64Array& offset) {
    if (raw.ndim() != 2) throw std::invalid_argument("raw must be 2-D [draws, ks]");
    const size_t R = static_cast<size_t>(raw.shape(0)), K = static_cast<size_t>(raw.shape(1));
    same_length(K, length_1d(scale, "scale"), "raw columns", "scale");
    same_length(K, length_1d(offset, "offset"), "raw columns", "offset");
    double* x = raw.mutable_data();
    const double* a = scale.data();
    const double* b = offset.data();
    py::gil_scoped_release nogil;
    for (size_t r = 0; r < R; ++r)
        for (size_t k = 0; k < K; ++k) {
            const double v = x[r * K + k] * a[k] + b[k];
            x[r * K + k] = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
        }
}

}  // namespace

void register_intervals(py::module_& m) {
    m.def("grid_posterior", &grid_posterior, py::arg("lik"), py::arg("pair_count"), py::arg("alpha"), py::arg("draws"),
          py::arg("burn"), py::arg("em_iters"), py::arg("per_weight"), py::arg("seed"),
          "Gibbs draws of how many problems sit at each grid rate: lik[d, g] = L(pair d | rate g) (rows scaled), "
          "pair_count[d] problems per pair, Dirichlet(alpha) on the grid weights, started from em_iters EM steps. "
          "Returns (counts [draws, G], the EM weights [G]). Deterministic in seed.");
    m.def("grid_curves", &grid_curves, py::arg("counts"), py::arg("table"), py::arg("simd") = true,
          "counts [draws, G] @ table [G, K], one thread, summing each draw's non-zero counts only "
          "(simd=False: the portable loop, which machines without AVX2 run anyway; both round alike).");
    m.def("grid_moments", &grid_moments, py::arg("raw"), py::arg("spread_columns"),
          "Per-column mean of raw [draws, K] and the standard deviation (ddof 0) of its first spread_columns "
          "columns, with numpy's numbers.");
    m.def("grid_affine_clip", &grid_affine_clip, py::arg("raw").noconvert(), py::arg("scale"), py::arg("offset"),
          "In place: raw[:, k] = clip(raw[:, k] * scale[k] + offset[k], 0, 1).");
}

}  // namespace passk
