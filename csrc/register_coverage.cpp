// Coverage bitsets: popcounts, the pairwise "solved by a, not by b" matrix, per-sample outcome bitsets.
#include <cstring>

#include "common.hpp"
#include "coverage.hpp"

namespace passk {
namespace {

using U64Array = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>;
using U8Array = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

py::array_t<int64_t> andnot(const U64Array& rows) {
    if (rows.ndim() != 2) throw std::invalid_argument("bitsets must be 2-D [models, words]");
    const size_t M = static_cast<size_t>(rows.shape(0)), W = static_cast<size_t>(rows.shape(1));
    py::array_t<int64_t> out({static_cast<py::ssize_t>(M), static_cast<py::ssize_t>(M)});
    int64_t* dst = out.mutable_data();
    const uint64_t* src = rows.data();
    {
        py::gil_scoped_release nogil;
        const std::vector<int64_t> m = andnot_matrix(src, M, W);
        std::memcpy(dst, m.data(), m.size() * sizeof(int64_t));
    }
    return out;
}

py::array_t<int64_t> row_popcount(const U64Array& rows) {
    if (rows.ndim() != 2) throw std::invalid_argument("bitsets must be 2-D [rows, words]");
    const size_t M = static_cast<size_t>(rows.shape(0)), W = static_cast<size_t>(rows.shape(1));
    py::array_t<int64_t> out(static_cast<py::ssize_t>(M));
    int64_t* dst = out.mutable_data();
    const uint64_t* src = rows.data();
    py::gil_scoped_release nogil;
    for (size_t i = 0; i < M; ++i) dst[i] = popcount(src + i * W, W);
    return out;
}

// Ragged per-sample outcomes (problem p owns flat[offsets[p]:offsets[p+1]]) packed into one bitset
// per problem: word_offsets[p] is where problem p's ceil(n_p / 64) words start.
py::tuple pack_segments(const U8Array& flat, const I64Array& offsets) {
    const size_t N = length_1d(flat, "outcomes"), P1 = length_1d(offsets, "offsets");
    if (P1 == 0) throw std::invalid_argument("offsets must hold at least one entry");
    const int64_t* off = offsets.data();
    if (off[0] != 0 || static_cast<size_t>(off[P1 - 1]) != N)
        throw std::invalid_argument("offsets must start at 0 and end at len(outcomes)");
    py::array_t<int64_t> word_off(static_cast<py::ssize_t>(P1));
    int64_t* wo = word_off.mutable_data();
    wo[0] = 0;
    for (size_t p = 0; p + 1 < P1; ++p) {
        if (off[p + 1] < off[p]) throw std::invalid_argument("offsets[" + std::to_string(p + 1) + "] decreases");
        wo[p + 1] = wo[p] + (off[p + 1] - off[p] + 63) / 64;
    }
    py::array_t<uint64_t> words(static_cast<py::ssize_t>(wo[P1 - 1]));
    uint64_t* w = words.mutable_data();
    const uint8_t* src = flat.data();
    {
        py::gil_scoped_release nogil;
        std::memset(w, 0, static_cast<size_t>(wo[P1 - 1]) * sizeof(uint64_t));
        for (size_t p = 0; p + 1 < P1; ++p) {
            uint64_t* dst = w + wo[p];
            for (int64_t i = off[p]; i < off[p + 1]; ++i)
                if (src[i]) {
                    const int64_t bit = i - off[p];
                    dst[bit >> 6] |= uint64_t{1} << (bit & 63);
                }
        }
    }
    return py::make_tuple(words, word_off);
}

py::array_t<int64_t> segment_popcount(const U64Array& words, const I64Array& word_offsets) {
    const size_t W = length_1d(words, "words"), P1 = length_1d(word_offsets, "word_offsets");
    if (P1 == 0 || word_offsets.data()[0] != 0 || static_cast<size_t>(word_offsets.data()[P1 - 1]) != W)
        throw std::invalid_argument("word_offsets must start at 0 and end at len(words)");
    py::array_t<int64_t> out(static_cast<py::ssize_t>(P1 - 1));
    int64_t* dst = out.mutable_data();
    const uint64_t* src = words.data();
    const int64_t* wo = word_offsets.data();
    py::gil_scoped_release nogil;
    for (size_t p = 0; p + 1 < P1; ++p) dst[p] = popcount(src + wo[p], static_cast<size_t>(wo[p + 1] - wo[p]));
    return out;
}

}  // namespace

void register_coverage(py::module_& m) {
    m.def("andnot_matrix", &andnot, py::arg("bitsets"),
          "out[i, j] = popcount(bitsets[i] & ~bitsets[j]): solved by row i, not by column j.");
    m.def("row_popcount", &row_popcount, py::arg("bitsets"), "Set bits per row (hardware POPCNT where present).");
    m.def("pack_segments", &pack_segments, py::arg("outcomes"), py::arg("offsets"),
          "Ragged 0/1 outcomes -> (words, word_offsets): one bitset per problem.");
    m.def("segment_popcount", &segment_popcount, py::arg("words"), py::arg("word_offsets"),
          "Set bits per problem bitset: the correct count c of each problem.");
    m.def("has_hw_popcount", &has_hw_popcount, "Whether the POPCNT instruction is used.");
}

}  // namespace passk
