// Validation of per-problem (n, c) counts and their reduction to distinct pairs.
//
// The mean of any pass@k-family statistic over P problems depends only on how often each distinct
// (n, c) pair occurs: one pass over the counts builds that histogram, and everything after it costs
// work proportional to the distinct pairs (at most n + 1 for a uniform n), not to P.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace passk {

// Sample counts must stay exact in a double's 53-bit mantissa and fit the 32-bit halves of a pair key.
constexpr int64_t kMaxSamples = (int64_t{1} << 31) - 1;

struct Pairs {
    std::vector<int64_t> n;       // per distinct pair, sorted by (n, c)
    std::vector<int64_t> c;
    std::vector<int64_t> count;   // problems with that pair
    std::vector<int64_t> inverse; // per problem: its pair's index
};

struct Group {  // the distinct pairs that share one n: pairs [begin, end)
    int64_t n;
    size_t begin, end;
};

inline std::vector<Group> groups_of(const Pairs& pairs) {
    std::vector<Group> groups;
    for (size_t i = 0; i < pairs.n.size(); ++i) {
        if (groups.empty() || groups.back().n != pairs.n[i]) groups.push_back({pairs.n[i], i, i});
        groups.back().end = i + 1;
    }
    return groups;
}

[[noreturn]] inline void bad_count(const char* field, size_t i, int64_t n, int64_t c, const char* why) {
    throw std::invalid_argument(std::string(field) + "[" + std::to_string(i) + "] " + why + " (n=" +
                                std::to_string(n) + ", c=" + std::to_string(c) + ")");
}

inline void check_pair(const int64_t* n, const int64_t* c, size_t i) {
    if (n[i] < 1) bad_count("n", i, n[i], c[i], "must be at least 1");
    if (n[i] > kMaxSamples) bad_count("n", i, n[i], c[i], "exceeds 2^31 - 1 samples");
    if (c[i] < 0) bad_count("c", i, n[i], c[i], "must be non-negative");
    if (c[i] > n[i]) bad_count("c", i, n[i], c[i], "exceeds n");
}

// Open addressing on 64-bit keys (n << 32 | c): one probe for almost every problem, which keeps the
// histogram pass within a few times np.bincount even when n varies per problem.
class KeyTable {
   public:
    explicit KeyTable(size_t expected) { rehash(std::max<size_t>(64, expected * 2)); }
    // Returns the slot's value index, inserting `next` if the key is new.
    int64_t find_or_insert(uint64_t key, int64_t next, bool& inserted) {
        if ((size_ + 1) * 2 > keys_.size()) rehash(keys_.size() * 2);
        size_t h = slot(key);
        while (used_[h]) {
            if (keys_[h] == key) {
                inserted = false;
                return vals_[h];
            }
            h = (h + 1) & mask_;
        }
        used_[h] = 1;
        keys_[h] = key;
        vals_[h] = next;
        ++size_;
        inserted = true;
        return next;
    }

   private:
    size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 17) & mask_; }
    void rehash(size_t cap) {
        size_t p = 1;
        while (p < cap) p <<= 1;
        std::vector<uint64_t> ok = std::move(keys_);
        std::vector<int64_t> ov = std::move(vals_);
        std::vector<uint8_t> ou = std::move(used_);
        keys_.assign(p, 0);
        vals_.assign(p, 0);
        used_.assign(p, 0);
        mask_ = p - 1;
        size_ = 0;
        for (size_t i = 0; i < ou.size(); ++i) {
            if (!ou[i]) continue;
            size_t h = slot(ok[i]);
            while (used_[h]) h = (h + 1) & mask_;
            used_[h] = 1;
            keys_[h] = ok[i];
            vals_[h] = ov[i];
            ++size_;
        }
    }
    std::vector<uint64_t> keys_;
    std::vector<int64_t> vals_;
    std::vector<uint8_t> used_;
    size_t mask_ = 0, size_ = 0;
};

// Validates every problem and groups them; with want_inverse=false the per-problem map is skipped.
inline Pairs distinct_pairs(const int64_t* n, const int64_t* c, size_t P, bool want_inverse) {
    Pairs out;
    if (P == 0) return out;
    // One branch-free pass (it vectorises) finds whether any count is bad and the range of n; only
    // then does check_pair walk the counts to name the first bad one. check_pair's four branches per
    // problem were ~1/5 of a 2,000-problem Bayes@N call.
    int64_t nmin = n[0], nmax = n[0];
    bool bad = false;
    for (size_t i = 0; i < P; ++i) {
        bad |= (n[i] < 1) | (n[i] > kMaxSamples) | (c[i] < 0) | (c[i] > n[i]);
        nmin = std::min(nmin, n[i]);
        nmax = std::max(nmax, n[i]);
    }
    if (bad)
        for (size_t i = 0; i < P; ++i) check_pair(n, c, i);
    if (want_inverse) out.inverse.resize(P);
    // Uniform n (the usual case): a dense histogram over c, like np.bincount.
    if (nmin == nmax && static_cast<size_t>(nmax) <= std::max<size_t>(size_t{1} << 22, 4 * P)) {
        std::vector<int64_t> hist(static_cast<size_t>(nmax) + 1, 0);
        for (size_t i = 0; i < P; ++i) ++hist[static_cast<size_t>(c[i])];
        std::vector<int64_t> id(hist.size(), -1);
        for (size_t v = 0; v < hist.size(); ++v) {
            if (!hist[v]) continue;
            id[v] = static_cast<int64_t>(out.n.size());
            out.n.push_back(nmax);
            out.c.push_back(static_cast<int64_t>(v));
            out.count.push_back(hist[v]);
        }
        if (want_inverse)
            for (size_t i = 0; i < P; ++i) out.inverse[i] = id[static_cast<size_t>(c[i])];
        return out;
    }
    KeyTable table(1024);
    std::vector<uint64_t> keys;
    std::vector<int64_t> counts;
    std::vector<int64_t> first_id(want_inverse ? P : 0);
    for (size_t i = 0; i < P; ++i) {
        const uint64_t key = (static_cast<uint64_t>(n[i]) << 32) | static_cast<uint64_t>(c[i]);
        bool inserted = false;
        const int64_t id = table.find_or_insert(key, static_cast<int64_t>(keys.size()), inserted);
        if (inserted) {
            keys.push_back(key);
            counts.push_back(0);
        }
        ++counts[static_cast<size_t>(id)];
        if (want_inverse) first_id[i] = id;
    }
    std::vector<int64_t> order(keys.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    std::sort(order.begin(), order.end(),
              [&](int64_t a, int64_t b) { return keys[static_cast<size_t>(a)] < keys[static_cast<size_t>(b)]; });
    std::vector<int64_t> rank(keys.size());
    for (size_t r = 0; r < order.size(); ++r) {
        const size_t id = static_cast<size_t>(order[r]);
        rank[id] = static_cast<int64_t>(r);
        out.n.push_back(static_cast<int64_t>(keys[id] >> 32));
        out.c.push_back(static_cast<int64_t>(keys[id] & 0xffffffffull));
        out.count.push_back(counts[id]);
    }
    if (want_inverse)
        for (size_t i = 0; i < P; ++i) out.inverse[i] = rank[static_cast<size_t>(first_id[i])];
    return out;
}

}  // namespace passk
