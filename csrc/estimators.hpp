// pass@k, pass^k, their mean curves and the unbiased variance, on top of the pair histogram and the
// chain engine. All heavy loops here run without the GIL.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "chains.hpp"
#include "pairs.hpp"

namespace passk {

inline Family family_from_name(const std::string& name) {
    if (name == "pass_at_k") return Family::Q;
    if (name == "pass_hat_k") return Family::PHAT;
    throw std::invalid_argument("family must be 'pass_at_k' or 'pass_hat_k', got '" + name + "'");
}

// The requested ks, validated, as sorted distinct values plus each request's position among them.
struct KSet {
    std::vector<int64_t> sorted;
    std::vector<size_t> column;  // column[j] = index in `sorted` of the j-th requested k
};

inline KSet make_kset(const int64_t* k, size_t K) {
    KSet s;
    s.sorted.assign(k, k + K);
    for (size_t j = 0; j < K; ++j) {
        if (k[j] < 1) throw std::invalid_argument("k[" + std::to_string(j) + "] must be at least 1 (k=" + std::to_string(k[j]) + ")");
    }
    std::sort(s.sorted.begin(), s.sorted.end());
    s.sorted.erase(std::unique(s.sorted.begin(), s.sorted.end()), s.sorted.end());
    s.column.resize(K);
    for (size_t j = 0; j < K; ++j)
        s.column[j] = static_cast<size_t>(std::lower_bound(s.sorted.begin(), s.sorted.end(), k[j]) - s.sorted.begin());
    return s;
}

inline void check_k_within_n(const Pairs& pairs, int64_t kmax) {
    for (size_t i = 0; i < pairs.n.size(); ++i)
        if (pairs.n[i] < kmax)
            throw std::invalid_argument("k=" + std::to_string(kmax) + " exceeds n=" + std::to_string(pairs.n[i]) +
                                        " for some problem");
}

inline double final_value(Family f, const SDD& v) {
    if (f == Family::PHAT) return v.to_double();
    const DD one_minus = dd_sub(DD{1.0, 0.0}, v.unscaled());
    return one_minus.hi + one_minus.lo;
}

// Runs `make_emit(group_begin)` emitters over every n-group of the pairs.
template <class Emit, class MakeEmit>
void for_each_group(Family f, const Pairs& pairs, const std::vector<int64_t>& ks, MakeEmit make_emit) {
    for (const Group& g : groups_of(pairs)) {
        std::vector<int64_t> cs(pairs.c.begin() + static_cast<long>(g.begin), pairs.c.begin() + static_cast<long>(g.end));
        std::vector<Emit> emitters;
        for (unsigned t = 0; t < 8; ++t) emitters.push_back(make_emit(g.begin));
        run_group(f, Grid{g.n, &cs, &ks}, emitters);
        for (auto& e : emitters) e.finish();
    }
}

struct TableEmit {
    Family f;
    double* table;  // [pairs x ks.sorted]
    size_t width, offset;
    void operator()(size_t ci, size_t kj, const SDD& v) { table[(offset + ci) * width + kj] = final_value(f, v); }
    void finish() {}
};

// Per-pair values at the sorted distinct ks: [D x Ku], row-major.
inline std::vector<double> family_table(Family f, const Pairs& pairs, const std::vector<int64_t>& ks) {
    std::vector<double> table(pairs.n.size() * ks.size());
    for_each_group<TableEmit>(f, pairs, ks, [&](size_t begin) { return TableEmit{f, table.data(), ks.size(), begin}; });
    return table;
}

// Weighted sums of q (or p) per k, accumulated in double-double per thread and merged in thread
// order, so the result does not depend on scheduling.
struct SumEmit {
    const int64_t* weight;
    size_t offset;
    std::vector<DD>* total;
    std::vector<DD> acc;
    void operator()(size_t ci, size_t kj, const SDD& v) {
        if (acc.empty()) acc.assign(total->size(), DD{});
        acc[kj] = dd_add(acc[kj], dd_mul_d(v.unscaled(), static_cast<double>(weight[offset + ci])));
    }
    void finish() {
        for (size_t j = 0; j < acc.size(); ++j) (*total)[j] = dd_add((*total)[j], acc[j]);
    }
};

// Mean over problems at the sorted distinct ks.
inline std::vector<double> family_mean(Family f, const Pairs& pairs, const std::vector<int64_t>& ks, const int64_t* weights,
                                       double total_weight) {
    std::vector<DD> total(ks.size(), DD{});
    for_each_group<SumEmit>(f, pairs, ks, [&](size_t begin) { return SumEmit{weights, begin, &total, {}}; });
    std::vector<double> mean(ks.size());
    const DD denom{total_weight, 0.0};
    for (size_t j = 0; j < ks.size(); ++j) {
        DD m = dd_div(total[j], denom);
        if (f == Family::Q) m = dd_sub(DD{1.0, 0.0}, m);
        mean[j] = m.hi + m.lo;
    }
    return mean;
}

struct QEmit {  // raw q as a double-double, for the variance
    DD* table;
    size_t width, offset;
    void operator()(size_t ci, size_t kj, const SDD& v) { table[(offset + ci) * width + kj] = v.unscaled(); }
    void finish() {}
};

// Unbiased variance of the pass@k estimator per pair: q(k)^2 - q(2k), needs 2k <= n.
inline std::vector<double> variance_table(const Pairs& pairs, const std::vector<int64_t>& ks) {
    std::vector<int64_t> both(ks);
    for (int64_t k : ks) both.push_back(2 * k);
    std::sort(both.begin(), both.end());
    both.erase(std::unique(both.begin(), both.end()), both.end());
    check_k_within_n(pairs, both.back());
    std::vector<DD> q(pairs.n.size() * both.size());
    for_each_group<QEmit>(Family::Q, pairs, both, [&](size_t begin) { return QEmit{q.data(), both.size(), begin}; });
    std::vector<double> var(pairs.n.size() * ks.size());
    for (size_t j = 0; j < ks.size(); ++j) {
        const size_t a = static_cast<size_t>(std::lower_bound(both.begin(), both.end(), ks[j]) - both.begin());
        const size_t b = static_cast<size_t>(std::lower_bound(both.begin(), both.end(), 2 * ks[j]) - both.begin());
        for (size_t d = 0; d < pairs.n.size(); ++d) {
            const DD qa = q[d * both.size() + a];
            const DD v = dd_sub(dd_mul(qa, qa), q[d * both.size() + b]);
            var[d * ks.size() + j] = std::max(0.0, v.hi + v.lo);  // >= 0 exactly; dd rounding may give -1e-33
        }
    }
    return var;
}

}  // namespace passk
