// Exact unbiased maj@k from answer classes: a DP over classes, not over k-subsets.
//
// A problem has classes of sizes s_1..s_m (one of them, r, correct) and `a` abstaining samples, n in all.
// Drawing k of the n samples, maj@k is the chance that r is the most frequent class among the draws,
// a tie at the top among T+1 classes counting 1/(T+1). Counting draws where r gets t samples:
//   C(s_r, t) * [z^(k-t)] (1+z)^free * sum_T H_T(z) / (T+1)
// where classes with s_j < t cannot reach t (they and the abstainers are `free`), and H_T is the
// generating polynomial of the draws from the other classes with every x_j <= t and exactly T of them
// at t. The DP multiplies in one class at a time, so the cost per t is (classes >= t) x degree x t x ties,
// with degree <= min(k, t x classes): for n = 256 and 20 classes about 10^5 multiply-adds per problem.
// All terms are positive, so the float result carries only rounding (~1e-14 relative), no cancellation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace passk {

// C(s, 0..upto) by the multiplicative recurrence (each entry within ~upto ulp of the integer).
template <class R>
void binomial_row(int64_t s, int64_t upto, std::vector<R>& row) {
    const int64_t top = std::min(s, upto);
    row.assign(static_cast<size_t>(upto + 1), R(0));
    R v = 1;
    for (int64_t x = 0; x <= top; ++x) {
        row[static_cast<size_t>(x)] = v;
        v = v * R(s - x) / R(x + 1);
    }
}

template <class R>
struct MajWork {
    std::vector<R> h, hn, acc, g, row, free_row, cr, total;
    std::vector<int64_t> others;
};

// dst[e] += sum_{0<x<t} src[e-x] row[x] over src[d0..deg], e <= cap (the caller assigns the x = 0 tap). Four taps per pass over dst: one
// shifted multiply-add per tap re-read and re-stored dst t times, and those stores, not the
// arithmetic, bounded the DP (4x fewer stores: see the README's Benchmarks table for the timing).
template <class R>
[[gnu::always_inline]] inline void convolve_row(const R* __restrict src, R* __restrict dst, const R* row, int64_t d0,
                                                int64_t deg, int64_t cap, int64_t t) {
    int64_t x0 = 1;
    for (; x0 + 4 <= t; x0 += 4) {
        const R c0 = row[x0], c1 = row[x0 + 1], c2 = row[x0 + 2], c3 = row[x0 + 3];
        // Every tap's source index in [d0, deg] and e <= cap: e in [d0 + x0 + 3, min(cap, deg + x0)].
        const int64_t lo = d0 + x0 + 3, hi = std::min(cap, deg + x0);
        for (int64_t x = x0; x < x0 + 4; ++x) {  // edges, tap by tap
            const R cx = row[x];
            const int64_t e_end = std::min(cap, deg + x);
            for (int64_t e = d0 + x; e <= e_end && e < lo; ++e) dst[e] += src[e - x] * cx;
            for (int64_t e = std::max({d0 + x, hi + 1, lo}); e <= e_end; ++e) dst[e] += src[e - x] * cx;
        }
        for (int64_t e = lo; e <= hi; ++e)
            dst[e] += ((src[e - x0] * c0 + src[e - x0 - 1] * c1) + (src[e - x0 - 2] * c2 + src[e - x0 - 3] * c3));
    }
    for (int64_t x = x0; x < t; ++x) {
        const R cx = row[x];
        const int64_t dend = std::min(deg, cap - x);
        R* __restrict shifted = dst + x;
        for (int64_t d = d0; d <= dend; ++d) shifted[d] += src[d] * cx;
    }
}

// One problem: acc[d] = weighted count of d-draws that r wins, for d = 0..kmax; out[j] = maj@ks[j].
template <class R>
[[gnu::always_inline]] inline void maj_problem_body(const int64_t* sizes, size_t m, int64_t r, int64_t abstain, const int64_t* ks, size_t K,
                 double* out, MajWork<R>& w) {
    int64_t n = abstain;
    for (size_t j = 0; j < m; ++j) n += sizes[j];
    const int64_t kmax = ks[K - 1];
    const size_t width = static_cast<size_t>(kmax + 1);
    std::fill(out, out + K, 0.0);
    if (r < 0 || sizes[r] == 0) return;
    const int64_t sr = sizes[r];
    w.others.clear();
    for (size_t j = 0; j < m; ++j)
        if (static_cast<int64_t>(j) != r && sizes[j] > 0) w.others.push_back(sizes[j]);
    std::sort(w.others.begin(), w.others.end(), [](int64_t x, int64_t y) { return x > y; });
    w.acc.assign(width, R(0));
    binomial_row<R>(sr, kmax, w.cr);
    int64_t small_total = 0;  // sizes of the classes below t (they join the free samples)
    size_t mt = w.others.size();
    for (int64_t t = 1; t <= std::min(sr, kmax); ++t) {
        while (mt > 0 && w.others[mt - 1] < t) small_total += w.others[--mt];
        const int64_t cap = kmax - t;  // draws left for the other classes and the free samples
        const size_t tmax = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(mt), cap / t));
        // Level stride: the highest degree reachable, not cap; at t = 8 with 10 classes left 81 doubles
        // instead of 248, so the live tables stay in L1.
        const size_t cw = static_cast<size_t>(std::min<int64_t>(cap, static_cast<int64_t>(mt) * t) + 1);
        // Only the live block (tie levels reached, degrees up to deg) is ever cleared or read: clearing
        // whole (ties x k) tables per class cost 10x the arithmetic at n = 256.
        if (w.h.size() < (tmax + 1) * cw) w.h.resize((tmax + 1) * cw), w.hn.resize((tmax + 1) * cw);
        w.h[0] = 1;
        int64_t deg = 0;
        size_t levels = 0;  // highest tie level reached so far
        for (size_t j = 0; j < mt; ++j) {
            binomial_row<R>(w.others[j], t, w.row);
            const int64_t ndeg = std::min(cap, deg + t);
            const size_t nlevels = std::min(levels + 1, tmax);
            // Levels top down: each level's x = 0 tap assigns its row (no separate clearing pass), and
            // the tie step of level T then adds into level T + 1, assigned just before. Only a new top
            // level needs clearing.
            if (nlevels > levels && static_cast<int64_t>(nlevels) * t <= ndeg) {
                R* top = w.hn.data() + nlevels * cw;
                std::fill(top + static_cast<int64_t>(nlevels) * t, top + ndeg + 1, R(0));
            }
            for (size_t T = levels + 1; T-- > 0;) {
                const R* __restrict src = w.h.data() + T * cw;
                R* __restrict dst = w.hn.data() + T * cw;
                const int64_t d0 = static_cast<int64_t>(T) * t;
                const R c0 = w.row[0];
                for (int64_t d = d0; d <= deg; ++d) dst[d] = src[d] * c0;
                std::fill(dst + deg + 1, dst + ndeg + 1, R(0));
                convolve_row(src, dst, w.row.data(), d0, deg, cap, t);
                if (T + 1 <= tmax) {
                    const R ct = w.row[static_cast<size_t>(t)];
                    R* __restrict up = w.hn.data() + (T + 1) * cw + t;
                    const int64_t dend = std::min(deg, cap - t);
                    for (int64_t d = d0; d <= dend; ++d) up[d] += src[d] * ct;
                }
            }
            std::swap(w.h, w.hn);
            deg = ndeg;
            levels = nlevels;
        }
        w.g.assign(static_cast<size_t>(deg + 1), R(0));
        for (size_t T = 0; T <= levels; ++T) {
            const R share = R(1) / R(T + 1);
            const R* src = w.h.data() + T * cw;
            for (int64_t d = static_cast<int64_t>(T) * t; d <= deg; ++d) w.g[static_cast<size_t>(d)] += src[d] * share;
        }
        binomial_row<R>(small_total + abstain, cap, w.free_row);
        const int64_t free_top = std::min(small_total + abstain, cap);
        const R ctr = w.cr[static_cast<size_t>(t)];
        for (int64_t d = 0; d <= deg; ++d) {
            const R v = w.g[static_cast<size_t>(d)] * ctr;
            if (v == R(0)) continue;
            R* dst = w.acc.data() + t + d;
            const int64_t iend = std::min(free_top, cap - d);
            for (int64_t i = 0; i <= iend; ++i) dst[i] += v * w.free_row[static_cast<size_t>(i)];
        }
    }
    binomial_row<R>(n, kmax, w.total);
    for (size_t j = 0; j < K; ++j) {
        const size_t k = static_cast<size_t>(ks[j]);
        out[j] = static_cast<double>(w.acc[k] / w.total[k]);
    }
}

// The build targets baseline x86-64 (SSE2: 2 doubles a vector). The DP's inner loops are plain
// multiply-adds over contiguous degrees, so an AVX2 copy (4 a vector), picked at run time, does the
// same operations element by element (no FMA: -ffp-contract=off), giving bit-identical results.
// Measured on 10,000 problems of n = 256 in 20 classes, every k: see the README's Benchmarks table.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
[[gnu::target("avx2")]] inline void maj_problem_avx2(const int64_t* sizes, size_t m, int64_t r, int64_t abstain,
                                                      const int64_t* ks, size_t K, double* out, MajWork<double>& w) {
    maj_problem_body<double>(sizes, m, r, abstain, ks, K, out, w);
}
inline bool maj_has_avx2() {
    static const bool yes = __builtin_cpu_supports("avx2");
    return yes;
}
#endif

template <class R>
void maj_problem(const int64_t* sizes, size_t m, int64_t r, int64_t abstain, const int64_t* ks, size_t K, double* out,
                 MajWork<R>& w) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if constexpr (std::is_same_v<R, double>) {
        if (maj_has_avx2()) return maj_problem_avx2(sizes, m, r, abstain, ks, K, out, w);
    }
#endif
    maj_problem_body<R>(sizes, m, r, abstain, ks, K, out, w);
}

}  // namespace passk
