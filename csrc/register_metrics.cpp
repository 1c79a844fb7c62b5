// maj@k, G-pass@k / mG-pass@k, Bayes@N posterior pass@k and cover@tau (issue 16).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "chains.hpp"
#include "common.hpp"
#include "hypergeom.hpp"
#include "majority.hpp"
#include "pairs.hpp"
#include "posterior.hpp"

namespace passk {
namespace {

// Up to n = 1000 every C(n, k) fits a double (C(1000, 500) ~ 2.7e299); beyond, 80-bit long double
// (range 1e4932) holds C(n, k) up to n = 16000.
constexpr int64_t kMajDoubleMaxN = 1000;
constexpr int64_t kMajMaxN = 16000;

py::array_t<double> maj_matrix(const I64Array& sizes, const I64Array& offsets, const I64Array& correct,
                               const I64Array& abstain, const I64Array& ks) {
    const size_t P = length_1d(correct, "correct"), K = length_1d(ks, "k");
    same_length(P, length_1d(abstain, "abstain"), "correct", "abstain");
    if (length_1d(offsets, "offsets") != P + 1) throw std::invalid_argument("offsets must have one entry per problem plus one");
    const size_t S = length_1d(sizes, "sizes");
    const int64_t *ps = sizes.data(), *po = offsets.data(), *pr = correct.data(), *pa = abstain.data(), *pk = ks.data();
    for (size_t j = 0; j < K; ++j)
        if (pk[j] < 1 || (j > 0 && pk[j] <= pk[j - 1])) throw std::invalid_argument("k must be sorted, distinct and >= 1");
    for (size_t p = 0; p < P; ++p) {
        if (po[p] < 0 || po[p + 1] < po[p] || static_cast<size_t>(po[p + 1]) > S)
            throw std::invalid_argument("offsets[" + std::to_string(p) + "] out of range");
        const int64_t m = po[p + 1] - po[p];
        if (pr[p] < -1 || pr[p] >= m)
            throw std::invalid_argument("correct[" + std::to_string(p) + "] = " + std::to_string(pr[p]) +
                                        " is not a class index of problem " + std::to_string(p) + " (it has " +
                                        std::to_string(m) + " classes; -1 means none)");
        int64_t n = pa[p];
        if (pa[p] < 0) throw std::invalid_argument("abstain[" + std::to_string(p) + "] must be non-negative (" + std::to_string(pa[p]) + ")");
        for (int64_t i = po[p]; i < po[p + 1]; ++i) {
            if (ps[i] < 0)
                throw std::invalid_argument("class_sizes[" + std::to_string(p) + "][" + std::to_string(i - po[p]) +
                                            "] must be non-negative (" + std::to_string(ps[i]) + ")");
            n += ps[i];
        }
        if (n > kMajMaxN)
            throw std::invalid_argument("maj@k supports up to " + std::to_string(kMajMaxN) + " samples per problem; problem " +
                                        std::to_string(p) + " has n=" + std::to_string(n));
        if (K > 0 && n < pk[K - 1])
            throw std::invalid_argument("k=" + std::to_string(pk[K - 1]) + " exceeds n=" + std::to_string(n) + " of problem " +
                                        std::to_string(p));
    }
    py::array_t<double> out({static_cast<py::ssize_t>(P), static_cast<py::ssize_t>(K)});
    double* dst = out.mutable_data();
    if (P == 0 || K == 0) return out;
    {
        py::gil_scoped_release nogil;
        const int64_t work = static_cast<int64_t>(S) * pk[K - 1] * 4;
        // Problems handed out 32 at a time from a shared counter, not in fixed halves: a problem's cost
        // grows with its correct class (t runs to its size), and a thread sharing its core with another
        // process would otherwise leave the other idle at the end.
        const unsigned threads = static_cast<unsigned>(std::min<size_t>(worker_count(work), (P + 31) / 32));
        std::atomic<size_t> next{0};
        parallel_blocks(threads, threads, [&](unsigned, size_t, size_t) {
            MajWork<double> wd;
            MajWork<long double> wl;
            for (size_t b = next.fetch_add(32); b < P; b = next.fetch_add(32)) {
                for (size_t p = b; p < std::min(P, b + 32); ++p) {
                    const size_t m = static_cast<size_t>(po[p + 1] - po[p]);
                    int64_t n = pa[p];
                    for (size_t i = 0; i < m; ++i) n += ps[po[p] + static_cast<int64_t>(i)];
                    if (n <= kMajDoubleMaxN)
                        maj_problem<double>(ps + po[p], m, pr[p], pa[p], pk, K, dst + p * K, wd);
                    else
                        maj_problem<long double>(ps + po[p], m, pr[p], pa[p], pk, K, dst + p * K, wl);
                }
            }
        });
    }
    return out;
}

// dst row p = the K values at src + inverse[p] * stride. A fixed small K copies inline: a memmove
// call per 4-value row was ~9% of a 2,000-problem Bayes@N call.
template <size_t KK>
void copy_rows_fixed(double* dst, const double* src, size_t stride, const int64_t* inverse, size_t P) {
    for (size_t p = 0; p < P; ++p) {
        const double* s = src + static_cast<size_t>(inverse[p]) * stride;
        for (size_t j = 0; j < KK; ++j) dst[p * KK + j] = s[j];
    }
}

void copy_rows(double* dst, const double* src, size_t stride, size_t K, const int64_t* inverse, size_t P) {
    switch (K) {
        case 1: return copy_rows_fixed<1>(dst, src, stride, inverse, P);
        case 2: return copy_rows_fixed<2>(dst, src, stride, inverse, P);
        case 3: return copy_rows_fixed<3>(dst, src, stride, inverse, P);
        case 4: return copy_rows_fixed<4>(dst, src, stride, inverse, P);
        case 5: return copy_rows_fixed<5>(dst, src, stride, inverse, P);
        case 6: return copy_rows_fixed<6>(dst, src, stride, inverse, P);
        case 7: return copy_rows_fixed<7>(dst, src, stride, inverse, P);
        case 8: return copy_rows_fixed<8>(dst, src, stride, inverse, P);
        default:
            for (size_t p = 0; p < P; ++p) std::copy_n(src + static_cast<size_t>(inverse[p]) * stride, K, dst + p * K);
    }
}

// Per-problem values for columns j of (k[j], m[j]) from per-pair work, spread back by the pair inverse.
template <class PairFn>
py::array_t<double> per_pair_matrix(const I64Array& n, const I64Array& c, size_t K, PairFn fn) {
    const size_t P = length_1d(n, "n");
    same_length(P, length_1d(c, "c"), "n", "c");
    py::array_t<double> out({static_cast<py::ssize_t>(P), static_cast<py::ssize_t>(K)});
    double* dst = out.mutable_data();
    const int64_t *pn = n.data(), *pc = c.data();
    {
        py::gil_scoped_release nogil;
        const Pairs pairs = distinct_pairs(pn, pc, P, true);
        std::vector<double> table(pairs.n.size() * K);
        parallel_blocks(pairs.n.size(), pairs.n.size() > 64 ? worker_count(static_cast<int64_t>(pairs.n.size() * K * 64)) : 1u,
                        [&](unsigned, size_t b, size_t e) {
                            for (size_t d = b; d < e; ++d) fn(pairs.n[d], pairs.c[d], table.data() + d * K);
                        });
        copy_rows(dst, table.data(), K, K, pairs.inverse.data(), P);
    }
    return out;
}

void check_k_le_n(const I64Array& n, const I64Array& k) {
    const size_t P = length_1d(n, "n"), K = length_1d(k, "k");
    int64_t kmax = 0;
    for (size_t j = 0; j < K; ++j) {
        if (k.data()[j] < 1) throw std::invalid_argument("k[" + std::to_string(j) + "] must be at least 1");
        kmax = std::max(kmax, k.data()[j]);
    }
    for (size_t p = 0; p < P; ++p)
        if (n.data()[p] < kmax)
            throw std::invalid_argument("k=" + std::to_string(kmax) + " exceeds n=" + std::to_string(n.data()[p]) +
                                        " of problem " + std::to_string(p));
}

py::array_t<double> gpass_matrix(const I64Array& n, const I64Array& c, const I64Array& k, const I64Array& m) {
    const size_t K = length_1d(k, "k");
    same_length(K, length_1d(m, "m"), "k", "m");
    check_k_le_n(n, k);
    const int64_t *pk = k.data(), *pm = m.data();
    return per_pair_matrix(n, c, K, [=](int64_t nn, int64_t cc, double* row) {
        std::vector<DD> w, tails;
        int64_t last = -1;
        for (size_t j = 0; j < K; ++j) {
            if (pk[j] != last) hypergeom_tails(nn, cc, pk[j], w, tails), last = pk[j];
            const int64_t mj = std::clamp<int64_t>(pm[j], 0, pk[j] + 1);
            row[j] = tail_probability(tails, mj);
        }
    });
}

py::array_t<double> mgpass_matrix(const I64Array& n, const I64Array& c, const I64Array& k) {
    const size_t K = length_1d(k, "k");
    check_k_le_n(n, k);
    const int64_t* pk = k.data();
    return per_pair_matrix(n, c, K, [=](int64_t nn, int64_t cc, double* row) {
        std::vector<DD> w, tails;
        for (size_t j = 0; j < K; ++j) {
            hypergeom_tails(nn, cc, pk[j], w, tails);
            row[j] = mg_pass_value(pk[j], tails);
        }
    });
}

// Pseudo-counts above 1e15 (beyond any sample count) gave NaN: Dekker splitting of the prefix factors
// overflows past ~1e300 (a = b = 1e300), and the Beta quantiles were already only ~1e-8 there.
constexpr double kMaxPrior = 1e15;

void check_prior(double a, double b) {
    if (!(a > 0.0) || !(b > 0.0) || !std::isfinite(a) || !std::isfinite(b))
        throw std::invalid_argument("prior must be two finite positive numbers (alpha, beta), got (" + std::to_string(a) +
                                    ", " + std::to_string(b) + ")");
    if (a > kMaxPrior || b > kMaxPrior)
        throw std::invalid_argument("prior must be at most 1e15 each (alpha, beta), got (" + std::to_string(a) + ", " +
                                    std::to_string(b) + ")");
}

// Row of a pair's table: the K posterior means 1 - E[(1-p)^k], then the K variances
// E[(1-p)^2k] - E[(1-p)^k]^2 (in double-double: a narrow posterior cancels in float64).
// moment(col, j) is E[(1-p)^j]; col is j's column: i for k_i, K + i for 2 k_i.
template <class Moment>
void fill_moment_row(double* row, size_t K, const int64_t* pk, Moment moment) {
    for (size_t i = 0; i < K; ++i) {
        const DD q = moment(i, pk[i]), q2 = moment(K + i, 2 * pk[i]);
        const DD mean = dd_sub(DD{1.0, 0.0}, q);
        const DD var = dd_sub(q2, dd_mul(q, q));
        // Clamped: with a prior near 0 (a = 1e-300) q rounds ~1e-32 above 1 and the mean below 0.
        row[i] = std::clamp(mean.hi + mean.lo, 0.0, 1.0);
        row[K + i] = std::max(0.0, var.hi + var.lo);
    }
}

// Posterior mean and variance of 1-(1-p)^k per distinct (n, c) pair: table row d holds the K means,
// then the K variances. The posterior depends on (n, c, k, prior) only, so real data's few distinct
// pairs (65 for 2,000 problems at n = 64) carry all the work.
struct PairMoments {
    Pairs pairs;
    std::vector<double> table;
};

PairMoments pair_moments(const I64Array& n, const I64Array& c, const I64Array& k, double a, double b) {
    const size_t K = length_1d(k, "k"), P = length_1d(n, "n");
    same_length(P, length_1d(c, "c"), "n", "c");
    check_prior(a, b);
    int64_t kmax = 0;
    const int64_t *pk = k.data(), *pn = n.data(), *pc = c.data();
    for (size_t j = 0; j < K; ++j) {
        if (pk[j] < 1)  // the message of passkcore._inputs.ks_array, which bayes_pass_at_k leaves to this check
            throw std::invalid_argument("k[" + std::to_string(j) + "] must be at least 1 (k=" + std::to_string(pk[j]) + ")");
        kmax = std::max(kmax, pk[j]);
    }
    PairMoments out;
    py::gil_scoped_release nogil;
    out.pairs = distinct_pairs(pn, pc, P, true);
    const Pairs& pairs = out.pairs;
    // E[(1-p)^j] under Beta(a + c, b + n - c) is prod_{t=n-c}^{n-c+j-1} (b+t) / prod_{t=n}^{n+j-1} (a+b+t):
    // with Pb, Pab the prefix products of (b + t) and (a + b + t) (built once up to max n + 2k), it is
    // Pb[f + j] * (1 / Pb[f]) * (Pab[n] / Pab[n + j]), f = n - c. The last factor depends on (n, j)
    // only and 1 / Pb[f] on the pair only, so the divisions are one per pair plus 2K per distinct n
    // (73 for 2,000 problems at n = 64 with 4 k's, against 520 when each moment divided), and each
    // moment is two double-double products. Very large n falls back to per-pair chains.
    int64_t nmax = 0;
    for (const int64_t v : pairs.n) nmax = std::max(nmax, v);
    const bool use_prefix = nmax + 2 * kmax <= (int64_t{1} << 20);
    const size_t D = pairs.n.size();
    out.table.assign(D * 2 * K, 0.0);
    if (!use_prefix) {
        parallel_blocks(D, D > 64 ? worker_count(static_cast<int64_t>(D * K * 64)) : 1u, [&](unsigned, size_t lo, size_t hi) {
            std::vector<DD> mom;
            for (size_t d = lo; d < hi; ++d) {
                beta_power_moments(a + static_cast<double>(pairs.c[d]), b + static_cast<double>(pairs.n[d] - pairs.c[d]),
                                   2 * kmax, mom);
                fill_moment_row(out.table.data() + d * 2 * K, K, pk,
                                [&](size_t, int64_t j) { return mom[static_cast<size_t>(j)]; });
            }
        });
        return out;
    }
    std::vector<XD> pre_b, pre_ab;
    double abs_, abe;
    two_sum(a, b, abs_, abe);
    shifted_prefixes(DD{b, 0.0}, DD{abs_, abe}, nmax + 2 * kmax, pre_b, pre_ab);
    const std::vector<Group> groups = groups_of(pairs);
    // den[g * 2K + j] = Pab[n] / Pab[n + k_j], den[g * 2K + K + j] = Pab[n] / Pab[n + 2 k_j].
    std::vector<XD> den(groups.size() * 2 * K);
    std::vector<size_t> group_of(D);
    for (size_t g = 0; g < groups.size(); ++g) {
        const size_t dn = static_cast<size_t>(groups[g].n);
        for (size_t j = 0; j < 2 * K; ++j) {
            const size_t jj = static_cast<size_t>(j < K ? pk[j] : 2 * pk[j - K]);
            den[g * 2 * K + j] = xd_mul(pre_ab[dn], xd_inverse(pre_ab[dn + jj]));
        }
        for (size_t d = groups[g].begin; d < groups[g].end; ++d) group_of[d] = g;
    }
    parallel_blocks(D, D > 64 ? worker_count(static_cast<int64_t>(D * K * 16)) : 1u, [&](unsigned, size_t lo, size_t hi) {
        for (size_t d = lo; d < hi; ++d) {
            const size_t f = static_cast<size_t>(pairs.n[d] - pairs.c[d]);
            const XD inv_f = xd_inverse(pre_b[f]);
            const XD* row_den = den.data() + group_of[d] * 2 * K;
            fill_moment_row(out.table.data() + d * 2 * K, K, pk, [&](size_t col, int64_t j) {
                return xd_value3(inv_f, pre_b[f + static_cast<size_t>(j)], row_den[col]);
            });
        }
    });
    return out;
}

py::array_t<double> scatter_pairs(const PairMoments& pm, size_t K, size_t col) {
    const size_t P = pm.pairs.inverse.size();
    py::array_t<double> out({static_cast<py::ssize_t>(P), static_cast<py::ssize_t>(K)});
    double* dst = out.mutable_data();
    py::gil_scoped_release nogil;
    copy_rows(dst, pm.table.data() + col, 2 * K, K, pm.pairs.inverse.data(), P);
    return out;
}

py::tuple bayes_moments(const I64Array& n, const I64Array& c, const I64Array& k, double a, double b) {
    const size_t K = length_1d(k, "k");
    const PairMoments pm = pair_moments(n, c, k, a, b);
    return py::make_tuple(scatter_pairs(pm, K, 0), scatter_pairs(pm, K, K));
}

// Per-problem posterior means (P, K), and over problems (each (K,)): the mean of the means, its
// spread std = sqrt(sum of the posterior variances) / P (summed per distinct pair weighted by its
// problem count: no (P, K) variance array) and the interval mean -+ z std clipped to [0, 1]. The
// summary is done here, not in numpy: five numpy calls on (K,) arrays were ~6 us of a ~60 us call.
py::tuple bayes_summary(const I64Array& n, const I64Array& c, const I64Array& k, double a, double b, double z) {
    const size_t K = length_1d(k, "k");
    if (!(z >= 0.0) || !std::isfinite(z)) throw std::invalid_argument("z must be finite and non-negative, got " + std::to_string(z));
    const PairMoments pm = pair_moments(n, c, k, a, b);
    py::array_t<double> overall(static_cast<py::ssize_t>(K)), low(static_cast<py::ssize_t>(K)),
        high(static_cast<py::ssize_t>(K)), spread(static_cast<py::ssize_t>(K));
    double *po = overall.mutable_data(), *pl = low.mutable_data(), *ph = high.mutable_data(), *ps = spread.mutable_data();
    const double P = static_cast<double>(pm.pairs.inverse.size());
    // Pairs outer, columns inner: the 2K sums are independent chains the CPU overlaps (one running
    // sum at a time waited ~20 cycles per double-double add).
    std::vector<DD> acc(2 * K);
    for (size_t d = 0; d < pm.pairs.n.size(); ++d) {
        const double w = static_cast<double>(pm.pairs.count[d]);
        const double* row = pm.table.data() + d * 2 * K;
        for (size_t j = 0; j < 2 * K; ++j) acc[j] = dd_add(acc[j], dd_mul_d(DD{row[j], 0.0}, w));
    }
    for (size_t j = 0; j < K; ++j) {
        po[j] = P > 0 ? (acc[j].hi + acc[j].lo) / P : std::nan("");
        ps[j] = std::sqrt(acc[K + j].hi + acc[K + j].lo) / P;
        pl[j] = std::clamp(po[j] - z * ps[j], 0.0, 1.0);
        ph[j] = std::clamp(po[j] + z * ps[j], 0.0, 1.0);
    }
    return py::make_tuple(scatter_pairs(pm, K, 0), overall, low, high, spread);
}

py::tuple bayes_interval(const I64Array& n, const I64Array& c, const I64Array& k, double a, double b, double ci) {
    const size_t K = length_1d(k, "k");
    check_prior(a, b);
    if (!(ci > 0.0 && ci < 1.0)) throw std::invalid_argument("ci must be in (0, 1), got " + std::to_string(ci));
    const int64_t* pk = k.data();
    const double tail = (1.0 - ci) / 2.0;
    py::array_t<double> both = per_pair_matrix(n, c, 2 * K, [=](int64_t nn, int64_t cc, double* row) {
        const double al = a + static_cast<double>(cc), be = b + static_cast<double>(nn - cc);
        const double plo = beta_quantile(al, be, tail), phi = beta_quantile(al, be, 1.0 - tail);
        for (size_t j = 0; j < K; ++j) {  // 1 - (1-p)^k, increasing in p
            const double kk = static_cast<double>(pk[j]);
            row[j] = -std::expm1(kk * std::log1p(-plo));
            row[K + j] = -std::expm1(kk * std::log1p(-phi));
        }
    });
    const size_t P = static_cast<size_t>(both.shape(0));
    py::array_t<double> low({static_cast<py::ssize_t>(P), static_cast<py::ssize_t>(K)});
    py::array_t<double> high({static_cast<py::ssize_t>(P), static_cast<py::ssize_t>(K)});
    const double* src = both.data();
    double *dl = low.mutable_data(), *dh = high.mutable_data();
    for (size_t p = 0; p < P; ++p) {
        std::copy_n(src + p * 2 * K, K, dl + p * K);
        std::copy_n(src + p * 2 * K + K, K, dh + p * K);
    }
    return py::make_tuple(low, high);
}

double beta_ppf(double a, double b, double q) {
    check_prior(a, b);
    return beta_quantile(a, b, q);
}

// How many problems have success rate c/n >= tau, per tau: sorted rates and one binary search each.
py::array_t<int64_t> cover_counts(const I64Array& n, const I64Array& c, const F64Array& tau) {
    const size_t P = length_1d(n, "n"), T = length_1d(tau, "tau");
    same_length(P, length_1d(c, "c"), "n", "c");
    py::array_t<int64_t> out(static_cast<py::ssize_t>(T));
    int64_t* dst = out.mutable_data();
    const int64_t *pn = n.data(), *pc = c.data();
    const double* pt = tau.data();
    {
        py::gil_scoped_release nogil;
        std::vector<double> rate(P);
        for (size_t p = 0; p < P; ++p) {
            check_pair(pn, pc, p);
            rate[p] = static_cast<double>(pc[p]) / static_cast<double>(pn[p]);
        }
        std::sort(rate.begin(), rate.end());
        for (size_t j = 0; j < T; ++j)
            dst[j] = static_cast<int64_t>(rate.end() - std::lower_bound(rate.begin(), rate.end(), pt[j]));
    }
    return out;
}

}  // namespace

void register_metrics(py::module_& m) {
    m.def("maj_matrix", &maj_matrix, py::arg("sizes"), py::arg("offsets"), py::arg("correct"), py::arg("abstain"),
          py::arg("k"), "Exact maj@k per problem (P, K) from flattened class sizes; k sorted and distinct.");
    m.def("gpass_matrix", &gpass_matrix, py::arg("n"), py::arg("c"), py::arg("k"), py::arg("m"),
          "Hypergeometric P(at least m[j] of k[j] draws correct) per problem, shape (P, K).");
    m.def("mgpass_matrix", &mgpass_matrix, py::arg("n"), py::arg("c"), py::arg("k"),
          "mG-pass@k per problem, shape (P, K).");
    m.def("bayes_moments", &bayes_moments, py::arg("n"), py::arg("c"), py::arg("k"), py::arg("alpha"), py::arg("beta"),
          "Posterior mean and variance of 1-(1-p)^k under Beta(alpha+c, beta+n-c), each (P, K).");
    m.def("bayes_summary", &bayes_summary, py::arg("n"), py::arg("c"), py::arg("k"), py::arg("alpha"), py::arg("beta"),
          py::arg("z"),
          "Posterior mean of 1-(1-p)^k per problem (P, K); over problems (each (K,)) the mean, the interval "
          "mean -+ z std clipped to [0, 1], and std = sqrt(summed posterior variance) / P.");
    m.def("bayes_interval", &bayes_interval, py::arg("n"), py::arg("c"), py::arg("k"), py::arg("alpha"), py::arg("beta"),
          py::arg("ci"), "Equal-tailed posterior interval of 1-(1-p)^k per problem: (low, high), each (P, K).");
    m.def("beta_ppf", &beta_ppf, py::arg("a"), py::arg("b"), py::arg("q"), "Quantile of Beta(a, b).");
    m.def("cover_counts", &cover_counts, py::arg("n"), py::arg("c"), py::arg("tau"),
          "Number of problems with c/n >= tau, per tau.");
}

}  // namespace passk
