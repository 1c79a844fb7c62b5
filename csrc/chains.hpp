// Exact-to-1-ulp evaluation of the pass@k family over a grid of (c, k) for one sample count n.
//
// Every value is a product of integer ratios, and neighbouring grid points differ by one ratio:
//   q(c,k) = C(n-c,k)/C(n,k)   (pass@k = 1 - q)    q(c,k+1) = q(c,k) (n-c-k)/(n-k)
//                                                   q(c+1,k) = q(c,k) (n-c-k)/(n-c)
//   p(c,k) = C(c,k)/C(n,k)     (pass^k = p)        p(c,k+1) = p(c,k) (c-k)/(n-k)
//                                                   p(c-1,k) = p(c,k) (c-k)/c
// so a whole row or column of the grid costs one ratio per step. A single point costs the cheaper of
// the two product forms: min(k, c) ratios for q, min(k, n-c) for p. run_group prices the three ways
// (sweep k per c, sweep c per k, direct per point) and takes the cheapest; the work is then
// proportional to the distinct c values times the ks, never to the number of problems.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "ddouble.hpp"

namespace passk {

enum class Family { Q, PHAT };

// Emit receives (c_index, k_index, value) and must be safe to call from the thread that owns the
// chain; EmitFactory(t) gives thread t its own emitter.
struct Grid {
    int64_t n;
    const std::vector<int64_t>* cs;  // sorted ascending, distinct, each in [0, n]
    const std::vector<int64_t>* ks;  // sorted ascending, distinct, each >= 1
};

inline bool is_zero_point(Family f, int64_t n, int64_t c, int64_t k) {
    return f == Family::Q ? (k > n - c) : (k > c);
}

inline SDD direct_value(Family f, int64_t n, int64_t c, int64_t k) {
    SDD v;
    if (is_zero_point(f, n, c, k)) {
        v.v = DD{0.0, 0.0};
        return v;
    }
    const double nd = static_cast<double>(n);
    if (f == Family::Q) {
        if (c <= k) {
            for (int64_t i = 0; i < c; ++i) v.mul_ratio(static_cast<double>(n - k - i), nd - static_cast<double>(i));
        } else {
            for (int64_t i = 0; i < k; ++i) v.mul_ratio(static_cast<double>(n - c - i), nd - static_cast<double>(i));
        }
    } else {
        if (k <= n - c) {
            for (int64_t i = 0; i < k; ++i) v.mul_ratio(static_cast<double>(c - i), nd - static_cast<double>(i));
        } else {
            for (int64_t i = 0; i < n - c; ++i) v.mul_ratio(static_cast<double>(n - k - i), nd - static_cast<double>(i));
        }
    }
    return v;
}

inline int64_t direct_cost(Family f, int64_t n, int64_t c, int64_t k) {
    if (is_zero_point(f, n, c, k)) return 1;
    return 1 + (f == Family::Q ? std::min(k, c) : std::min(k, n - c));
}

// Sweep k upward for one c: returns the steps it would take (cost) or runs it.
template <class Emit>
void sweep_k(Family f, int64_t n, int64_t c, size_t ci, const std::vector<int64_t>& ks, Emit& emit) {
    SDD v;
    int64_t k = 0;
    const double nd = static_cast<double>(n), cd = static_cast<double>(c);
    for (size_t j = 0; j < ks.size(); ++j) {
        const int64_t target = ks[j];
        while (k < target && !v.is_zero()) {
            const double kd = static_cast<double>(k);
            v.mul_ratio(f == Family::Q ? nd - cd - kd : cd - kd, nd - kd);
            ++k;
        }
        if (v.is_zero()) k = target;
        emit(ci, j, v);
    }
}

inline int64_t sweep_k_cost(Family f, int64_t n, int64_t c, int64_t kmax) {
    const int64_t zero_at = f == Family::Q ? n - c + 1 : c + 1;
    return 1 + std::min(kmax, zero_at);
}

// Sweep c for one k: upward from c = 0 for q, downward from c = n for p.
template <class Emit>
void sweep_c(Family f, int64_t n, int64_t k, size_t kj, const std::vector<int64_t>& cs, Emit& emit) {
    SDD v;
    const double nd = static_cast<double>(n), kd = static_cast<double>(k);
    if (f == Family::Q) {
        int64_t c = 0;
        for (size_t i = 0; i < cs.size(); ++i) {
            while (c < cs[i] && !v.is_zero()) {
                const double cd = static_cast<double>(c);
                v.mul_ratio(nd - cd - kd, nd - cd);
                ++c;
            }
            emit(i, kj, v);
        }
    } else {
        int64_t c = n;
        for (size_t i = cs.size(); i-- > 0;) {
            while (c > cs[i] && !v.is_zero()) {
                const double cd = static_cast<double>(c);
                v.mul_ratio(cd - kd, cd);
                --c;
            }
            emit(i, kj, v);
        }
    }
}

inline int64_t sweep_c_cost(Family f, int64_t n, int64_t k, int64_t cmin, int64_t cmax) {
    if (f == Family::Q) return 1 + std::min(cmax, n - k + 1);
    return 1 + n - std::max(cmin, k - 1);
}

inline unsigned worker_count(int64_t work) {
    // Below ~2e5 ratio steps (~2 ms) a second thread costs more to start than it saves.
    if (work < 200000) return 1;
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    return std::min(hw, 8u);
}

// Runs `task(t, begin, end)` over [0, count) split into `threads` contiguous blocks.
template <class Task>
void parallel_blocks(size_t count, unsigned threads, Task task) {
    if (threads <= 1 || count < 2) {
        task(0u, size_t{0}, count);
        return;
    }
    threads = static_cast<unsigned>(std::min<size_t>(threads, count));
    std::vector<std::thread> pool;
    const size_t step = (count + threads - 1) / threads;
    for (unsigned t = 1; t < threads; ++t) {
        const size_t b = t * step, e = std::min(count, b + step);
        if (b < e) pool.emplace_back(task, t, b, e);
    }
    task(0u, size_t{0}, std::min(count, step));
    for (auto& th : pool) th.join();
}

enum class Strategy { SweepK, SweepC, Direct };

// Returns the number of threads used; emitters[t] is used by thread t.
template <class Emit>
void run_group(Family f, const Grid& g, std::vector<Emit>& emitters) {
    const auto& cs = *g.cs;
    const auto& ks = *g.ks;
    if (cs.empty() || ks.empty()) return;
    const int64_t n = g.n, kmax = ks.back(), cmin = cs.front(), cmax = cs.back();

    int64_t cost_sweep_c = 0;
    for (int64_t k : ks) cost_sweep_c += sweep_c_cost(f, n, k, cmin, cmax);
    // Per c: the better of one k-sweep and direct products at each k.
    std::vector<uint8_t> use_direct(cs.size(), 0);
    int64_t cost_rows = 0;
    for (size_t i = 0; i < cs.size(); ++i) {
        const int64_t sk = sweep_k_cost(f, n, cs[i], kmax);
        int64_t sd = 0;
        for (int64_t k : ks) {
            sd += direct_cost(f, n, cs[i], k);
            if (sd >= sk) break;
        }
        use_direct[i] = sd < sk;
        cost_rows += std::min(sd, sk);
    }

    const unsigned max_threads = static_cast<unsigned>(emitters.size());
    if (cost_sweep_c < cost_rows) {
        const unsigned threads = std::min(max_threads, worker_count(cost_sweep_c));
        parallel_blocks(ks.size(), threads, [&](unsigned t, size_t b, size_t e) {
            for (size_t j = b; j < e; ++j) sweep_c(f, n, ks[j], j, cs, emitters[t]);
        });
        return;
    }
    const unsigned threads = std::min(max_threads, worker_count(cost_rows));
    // Rows are cheap for large c under Q (they hit zero early): interleave by stride so both threads
    // get a similar mix, keeping the split deterministic.
    parallel_blocks(threads, threads, [&](unsigned t, size_t, size_t) {
        for (size_t i = t; i < cs.size(); i += threads) {
            if (use_direct[i]) {
                for (size_t j = 0; j < ks.size(); ++j) emitters[t](i, j, direct_value(f, n, cs[i], ks[j]));
            } else {
                sweep_k(f, n, cs[i], i, ks, emitters[t]);
            }
        }
    });
}

}  // namespace passk
