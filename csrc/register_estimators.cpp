// pass@k / pass^k per problem, their mean curves and the estimator's variance.
#include <algorithm>

#include "common.hpp"
#include "estimators.hpp"

namespace passk {
namespace {

py::array_t<double> pass_matrix(const I64Array& n, const I64Array& c, const I64Array& k, const std::string& family) {
    const size_t P = length_1d(n, "n"), K = length_1d(k, "k");
    same_length(P, length_1d(c, "c"), "n", "c");
    const Family f = family_from_name(family);
    py::array_t<double> out({static_cast<py::ssize_t>(P), static_cast<py::ssize_t>(K)});
    double* dst = out.mutable_data();
    const int64_t *pn = n.data(), *pc = c.data(), *pk = k.data();
    {
        py::gil_scoped_release nogil;
        const KSet ks = make_kset(pk, K);
        const Pairs pairs = distinct_pairs(pn, pc, P, true);
        if (P > 0 && K > 0) {
            check_k_within_n(pairs, ks.sorted.back());
            const std::vector<double> table = family_table(f, pairs, ks.sorted);
            const size_t width = ks.sorted.size();
            parallel_blocks(P, P * K > (size_t{1} << 21) ? 2u : 1u, [&](unsigned, size_t b, size_t e) {
                for (size_t p = b; p < e; ++p) {
                    const double* row = table.data() + static_cast<size_t>(pairs.inverse[p]) * width;
                    for (size_t j = 0; j < K; ++j) dst[p * K + j] = row[ks.column[j]];
                }
            });
        }
    }
    return out;
}

py::array_t<double> pass_curve(const I64Array& n, const I64Array& c, const I64Array& k, const std::string& family) {
    const size_t P = length_1d(n, "n"), K = length_1d(k, "k");
    same_length(P, length_1d(c, "c"), "n", "c");
    if (P == 0) throw std::invalid_argument("n is empty: a mean over no problems is undefined");
    const Family f = family_from_name(family);
    py::array_t<double> out(static_cast<py::ssize_t>(K));
    double* dst = out.mutable_data();
    const int64_t *pn = n.data(), *pc = c.data(), *pk = k.data();
    {
        py::gil_scoped_release nogil;
        const KSet ks = make_kset(pk, K);
        const Pairs pairs = distinct_pairs(pn, pc, P, false);
        if (K > 0) {
            check_k_within_n(pairs, ks.sorted.back());
            const std::vector<double> mean = family_mean(f, pairs, ks.sorted, pairs.count.data(), static_cast<double>(P));
            for (size_t j = 0; j < K; ++j) dst[j] = mean[ks.column[j]];
        }
    }
    return out;
}

py::tuple pass_variance(const I64Array& n, const I64Array& c, const I64Array& k) {
    const size_t P = length_1d(n, "n"), K = length_1d(k, "k");
    same_length(P, length_1d(c, "c"), "n", "c");
    py::array_t<double> var({static_cast<py::ssize_t>(P), static_cast<py::ssize_t>(K)});
    py::array_t<double> total(static_cast<py::ssize_t>(K));
    double *dv = var.mutable_data(), *dt = total.mutable_data();
    const int64_t *pn = n.data(), *pc = c.data(), *pk = k.data();
    {
        py::gil_scoped_release nogil;
        const KSet ks = make_kset(pk, K);
        const Pairs pairs = distinct_pairs(pn, pc, P, true);
        std::fill(dt, dt + K, 0.0);
        if (P > 0 && K > 0) {
            const std::vector<double> table = variance_table(pairs, ks.sorted);
            const size_t width = ks.sorted.size();
            for (size_t p = 0; p < P; ++p)
                for (size_t j = 0; j < K; ++j)
                    dv[p * K + j] = table[static_cast<size_t>(pairs.inverse[p]) * width + ks.column[j]];
            for (size_t j = 0; j < K; ++j) {
                DD s{};
                for (size_t d = 0; d < pairs.n.size(); ++d)
                    s = dd_add(s, dd_mul_d(DD{table[d * width + ks.column[j]], 0.0}, static_cast<double>(pairs.count[d])));
                dt[j] = s.hi + s.lo;
            }
        }
    }
    return py::make_tuple(var, total);
}

py::tuple distinct(const I64Array& n, const I64Array& c) {
    const size_t P = length_1d(n, "n");
    same_length(P, length_1d(c, "c"), "n", "c");
    Pairs pairs;
    {
        py::gil_scoped_release nogil;
        pairs = distinct_pairs(n.data(), c.data(), P, true);
    }
    return py::make_tuple(to_numpy(std::move(pairs.n)), to_numpy(std::move(pairs.c)), to_numpy(std::move(pairs.count)),
                          to_numpy(std::move(pairs.inverse)));
}

void check_counts(const I64Array& n, const I64Array& c) {
    const size_t P = length_1d(n, "n");
    same_length(P, length_1d(c, "c"), "n", "c");
    const int64_t *pn = n.data(), *pc = c.data();
    py::gil_scoped_release nogil;
    for (size_t i = 0; i < P; ++i) check_pair(pn, pc, i);
}

}  // namespace

void register_estimators(py::module_& m) {
    m.def("pass_matrix", &pass_matrix, py::arg("n"), py::arg("c"), py::arg("k"), py::arg("family"),
          "Per-problem pass@k ('pass_at_k') or pass^k ('pass_hat_k'), shape (P, K), within 1 ulp.");
    m.def("pass_curve", &pass_curve, py::arg("n"), py::arg("c"), py::arg("k"), py::arg("family"),
          "Mean over problems of the family at each k, shape (K,).");
    m.def("pass_variance", &pass_variance, py::arg("n"), py::arg("c"), py::arg("k"),
          "Unbiased per-problem variance of the pass@k estimator (P, K) and its sum over problems (K,).");
    m.def("check_counts", &check_counts, py::arg("n"), py::arg("c"),
          "Raises ValueError naming the first problem with n < 1, c < 0 or c > n.");
    m.def("distinct_pairs", &distinct, py::arg("n"), py::arg("c"),
          "Validated (n, c) histogram: (pair_n, pair_c, count, inverse) sorted by (n, c).");
}

}  // namespace passk
