// Paired bootstrap weights: every resample draws P problems with replacement, and the same draws count
// towards every model's distinct (n, c) pairs. Drawing costs ~2 ns per problem, against ~60 ns per
// category for numpy's sequential-binomial multinomial (measured: 10,000 resamples of MATH500's 273
// joint tuples took 160 ms with numpy.random.Generator.multinomial); stats.py switches to the
// multinomial over joint tuples when problems far outnumber the tuples.
#include <cstring>

#include "chains.hpp"  // parallel_blocks
#include "common.hpp"
#include "rng.hpp"

namespace passk {
namespace {

// For resamples first..first+R-1: P problems drawn uniformly with replacement; each draw adds 1 to
// every model's count for that problem's (n, c) pair. outs[m] is model m's [R, widths_m] buffer
// (overwritten), with pair_index[m, p] < widths_m. Callers reuse the buffers block after block: a
// fresh 17 MB array costs more in page faults than the draws themselves (measured in this VM).
void bootstrap_counts(const I64Array& pair_index, const py::list& outs, uint64_t seed, int64_t first) {
    if (pair_index.ndim() != 2) throw std::invalid_argument("pair_index must be 2-D [models, problems]");
    const size_t M = static_cast<size_t>(pair_index.shape(0)), P = static_cast<size_t>(pair_index.shape(1));
    if (P == 0) throw std::invalid_argument("pair_index has no problems to resample");
    same_length(M, outs.size(), "pair_index rows", "outs");
    if (first < 0) throw std::invalid_argument("first must be non-negative");
    std::vector<py::array_t<double>> buffers;
    std::vector<double*> rows(M);
    std::vector<size_t> width(M);
    size_t R = 0;
    for (size_t m = 0; m < M; ++m) {
        auto arr = py::cast<py::array>(outs[m]);
        if (!py::isinstance<py::array_t<double>>(arr) || arr.ndim() != 2 || !(arr.flags() & py::array::c_style) ||
            !arr.writeable())
            throw std::invalid_argument("outs[" + std::to_string(m) + "] must be a writeable C-contiguous 2-D float64 array");
        buffers.push_back(py::reinterpret_borrow<py::array_t<double>>(arr));
        if (m == 0) R = static_cast<size_t>(arr.shape(0));
        if (static_cast<size_t>(arr.shape(0)) != R) throw std::invalid_argument("outs differ in their number of rows");
        width[m] = static_cast<size_t>(arr.shape(1));
        rows[m] = buffers.back().mutable_data();
    }
    const int64_t* idx = pair_index.data();
    for (size_t m = 0; m < M; ++m)
        for (size_t p = 0; p < P; ++p)
            if (idx[m * P + p] < 0 || static_cast<size_t>(idx[m * P + p]) >= width[m])
                throw std::invalid_argument("pair_index[" + std::to_string(m) + ", " + std::to_string(p) + "] outside outs[" +
                                            std::to_string(m) + "]'s width");
    py::gil_scoped_release nogil;
    // Problem-major copy of the pairs each draw touches, so a draw reads one contiguous run.
    std::vector<int64_t> pairs(P * M);
    for (size_t p = 0; p < P; ++p)
        for (size_t m = 0; m < M; ++m) pairs[p * M + m] = idx[m * P + p];
    for (size_t m = 0; m < M; ++m) std::memset(rows[m], 0, R * width[m] * sizeof(double));
    // One thread on purpose: the caller's BLAS product runs right after each block, and OpenBLAS's
    // spinning workers fight a second counting thread for the 2 cores (measured: noisier and no
    // faster). The draws cost ~2 ns each, ~10 ms for 10,000 MATH500 resamples.
    parallel_blocks(R, 1u, [&](unsigned, size_t b, size_t e) {
        std::vector<double*> row(M);
        for (size_t r = b; r < e; ++r) {
            SplitMix rng{splitmix64(seed ^ splitmix64(static_cast<uint64_t>(first) + r))};
            for (size_t m = 0; m < M; ++m) row[m] = rows[m] + r * width[m];
            for (size_t i = 0; i < P; ++i) {
                const int64_t* drawn = pairs.data() + rng.bounded(P) * M;
                for (size_t m = 0; m < M; ++m) row[m][drawn[m]] += 1.0;
            }
        }
    });
}

}  // namespace

void register_bootstrap(py::module_& m) {
    m.def("bootstrap_counts", &bootstrap_counts, py::arg("pair_index"), py::arg("outs"), py::arg("seed"),
          py::arg("first") = 0,
          "Fills outs[m][r, d]: how often model m's pair d is drawn in resample first + r when P problems "
          "are drawn with replacement. Deterministic in (seed, resample index).");
}

}  // namespace passk
