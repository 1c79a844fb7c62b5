// Coverage bitsets: one bit per problem per model (or per sample per problem), and their set algebra.
//
// The M x M "solved by row, not by column" matrix is |a & ~b| for every ordered pair. For 10^7
// problems x 16 models each bitset is 156,250 words (1.2 MB), so the 16 rows do not fit in L2
// together; the loop walks blocks of 4096 words (32 KB per row) and does all 256 pairs per block.
#pragma once

#include <cstdint>
#include <vector>

#include "chains.hpp"  // parallel_blocks

namespace passk {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PASSK_HAS_POPCNT_DISPATCH 1
__attribute__((target("popcnt"))) inline int64_t popcount_andnot_hw(const uint64_t* a, const uint64_t* b, size_t n) {
    int64_t s = 0;
    for (size_t i = 0; i < n; ++i) s += __builtin_popcountll(a[i] & ~b[i]);
    return s;
}
__attribute__((target("popcnt"))) inline int64_t popcount_hw(const uint64_t* a, size_t n) {
    int64_t s = 0;
    for (size_t i = 0; i < n; ++i) s += __builtin_popcountll(a[i]);
    return s;
}
#endif

inline int64_t popcount_andnot_sw(const uint64_t* a, const uint64_t* b, size_t n) {
    int64_t s = 0;
    for (size_t i = 0; i < n; ++i) s += __builtin_popcountll(a[i] & ~b[i]);
    return s;
}
inline int64_t popcount_sw(const uint64_t* a, size_t n) {
    int64_t s = 0;
    for (size_t i = 0; i < n; ++i) s += __builtin_popcountll(a[i]);
    return s;
}

// The portable build targets baseline x86-64, which lacks POPCNT; pick the instruction at run time.
inline bool has_hw_popcount() {
#ifdef PASSK_HAS_POPCNT_DISPATCH
    static const bool ok = __builtin_cpu_supports("popcnt");
    return ok;
#else
    return false;
#endif
}

inline int64_t popcount_andnot(const uint64_t* a, const uint64_t* b, size_t n) {
#ifdef PASSK_HAS_POPCNT_DISPATCH
    if (has_hw_popcount()) return popcount_andnot_hw(a, b, n);
#endif
    return popcount_andnot_sw(a, b, n);
}

inline int64_t popcount(const uint64_t* a, size_t n) {
#ifdef PASSK_HAS_POPCNT_DISPATCH
    if (has_hw_popcount()) return popcount_hw(a, n);
#endif
    return popcount_sw(a, n);
}

// out[i * M + j] = |rows[i] & ~rows[j]|; rows is [M x W] row-major.
inline std::vector<int64_t> andnot_matrix(const uint64_t* rows, size_t M, size_t W) {
    constexpr size_t kBlock = 4096;
    const size_t blocks = (W + kBlock - 1) / kBlock;
    const unsigned threads = (M * M * W > (size_t{1} << 22)) ? 2u : 1u;
    std::vector<std::vector<int64_t>> partial(threads, std::vector<int64_t>(M * M, 0));
    parallel_blocks(blocks, threads, [&](unsigned t, size_t b0, size_t b1) {
        auto& acc = partial[t];
        for (size_t blk = b0; blk < b1; ++blk) {
            const size_t off = blk * kBlock, len = std::min(kBlock, W - off);
            for (size_t i = 0; i < M; ++i)
                for (size_t j = 0; j < M; ++j)
                    if (i != j) acc[i * M + j] += popcount_andnot(rows + i * W + off, rows + j * W + off, len);
        }
    });
    std::vector<int64_t> out(M * M, 0);
    for (const auto& p : partial)
        for (size_t i = 0; i < out.size(); ++i) out[i] += p[i];
    for (size_t i = 0; i < M; ++i) out[i * M + i] = 0;
    return out;
}

}  // namespace passk
