// Test support for the admission policy: a plain reference implementation of the analysis
// cache's bookkeeping (TinyLFU admission, LRU of unpinned entries by their last release, the
// direct-mapped history, counts that halve per epoch) in std::map, and a driver that runs one
// operation sequence on a real AnalysisCache and on the model side by side, comparing every
// outcome and counter. Used by tests/admission_test.cpp and fuzz/admission.cpp.
#pragma once

#include "cache_check.hpp"

#include <evmalloc/admission.hpp>
#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/stack_frame.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace evmalloc::test
{
/// The model's jumpdest frame (no op table) and its codes' fingerprint: the first 8 bytes.
struct ModelTraits
{
    using Word = evmalloc::Word;
    using Op = void;
    using Metadata = void;
};
struct FirstBytesHash
{
    std::uint64_t operator()(std::span<const std::uint8_t> code) const noexcept
    {
        std::uint64_t h = 0;
        std::memcpy(&h, code.data(), std::min<std::size_t>(code.size(), 8));
        return h;
    }
};

/// The plain model of one AnalysisCache's bookkeeping.
class AdmissionModel
{
public:
    enum class Outcome
    {
        hit,
        miss,
        not_admitted
    };

    AdmissionModel(Admission policy, std::size_t max_bytes) : policy_{policy}, max_{max_bytes} {}

    /// A call of `key` whose entry would take `bytes`; the frame is pinned until release(key)
    /// when the outcome is hit or miss.
    Outcome call(std::uint32_t key, std::size_t bytes)
    {
        if (auto it = cached_.find(key); it != cached_.end())
        {
            ++it->second.pins;
            ++hits_;
            return Outcome::hit;
        }
        bool admit = policy_ == Admission::always || total_ + bytes <= max_;
        if (!admit)
        {
            const unsigned candidate = history_count(key) + 1U;
            const Item* v = victim();
            admit = candidate > 1U && (v == nullptr || candidate > aged(v->count, v->stamp));
        }
        if (!admit)
        {
            ++not_admitted_;
            if (policy_ != Admission::always)
            {
                const unsigned n = history_count(key);
                remember(key, n + (n < 15U ? 1U : 0U));
            }
            tick();
            return Outcome::not_admitted;
        }
        cached_[key] = Item{key, bytes, history_take(key), epoch(), 1, ++seq_};
        total_ += bytes;
        ++misses_;
        evict_over();
        return Outcome::miss;
    }

    /// The frame of a hit or miss on `key` went.
    void release(std::uint32_t key)
    {
        Item& e = cached_.at(key);
        const unsigned n = aged(e.count, e.stamp);
        e.count = n + (n < 15U ? 1U : 0U);
        e.stamp = epoch();
        tick();
        e.seq = ++seq_;
        if (--e.pins == 0)
            evict_over();
    }

    void clear()
    {
        while (const Item* v = victim())
            evict(v->key);
    }

    [[nodiscard]] std::size_t entries() const { return cached_.size(); }
    [[nodiscard]] std::size_t bytes() const { return total_; }
    [[nodiscard]] std::size_t hits() const { return hits_; }
    [[nodiscard]] std::size_t misses() const { return misses_; }
    [[nodiscard]] std::size_t evictions() const { return evictions_; }
    [[nodiscard]] std::size_t not_admitted() const { return not_admitted_; }
    [[nodiscard]] std::size_t pinned() const
    {
        std::size_t n = 0;
        for (const auto& [k, e] : cached_)
            n += e.pins != 0 ? 1 : 0;
        return n;
    }

private:
    struct Item
    {
        std::uint32_t key;
        std::size_t bytes;
        unsigned count, stamp, pins;
        std::uint64_t seq;  // when its last frame went (or it was inserted)
    };
    struct Slot
    {
        std::uint32_t key;
        unsigned count, stamp;
    };

    [[nodiscard]] unsigned epoch() const { return static_cast<unsigned>((ticks_ / 8192) % 256); }
    [[nodiscard]] unsigned aged(unsigned count, unsigned stamp) const
    {
        const unsigned passed = (epoch() + 256 - stamp) % 256;
        return passed >= 8 ? 0 : count >> passed;
    }
    void tick() { ++ticks_; }

    static std::uint32_t slot_of(std::uint32_t key) { return (key * 0x9e3779b1U) >> 20; }
    [[nodiscard]] unsigned history_count(std::uint32_t key) const
    {
        const auto it = history_.find(slot_of(key));
        return it == history_.end() || it->second.key != key
                   ? 0
                   : aged(it->second.count, it->second.stamp);
    }
    void remember(std::uint32_t key, unsigned n) { history_[slot_of(key)] = Slot{key, n, epoch()}; }
    unsigned history_take(std::uint32_t key)
    {
        const unsigned n = history_count(key);
        if (const auto it = history_.find(slot_of(key));
            it != history_.end() && it->second.key == key)
            history_.erase(it);
        return n;
    }

    // The unpinned entry released longest ago.
    const Item* victim() const
    {
        const Item* v = nullptr;
        for (const auto& [k, e] : cached_)
        {
            if (e.pins == 0 && (v == nullptr || e.seq < v->seq))
                v = &e;
        }
        return v;
    }
    void evict(std::uint32_t key)
    {
        const Item e = cached_.at(key);
        remember(key, aged(e.count, e.stamp));
        total_ -= e.bytes;
        cached_.erase(key);
        ++evictions_;
    }
    void evict_over()
    {
        while (total_ > max_)
        {
            const Item* v = victim();
            if (v == nullptr)
                return;
            evict(v->key);
        }
    }

    Admission policy_;
    std::size_t max_;
    std::map<std::uint32_t, Item> cached_;
    std::map<std::uint32_t, Slot> history_;
    std::size_t total_ = 0;
    std::uint64_t ticks_ = 0, seq_ = 0;
    std::size_t hits_ = 0, misses_ = 0, evictions_ = 0, not_admitted_ = 0;
};

/// Runs the operations `ops` (each byte one operation) on an AnalysisCache and on the model;
/// \returns the first difference, described, or an empty string. Operations: a call of one of
/// `codes` codes, its frame kept (up to 8 kept) or let go at once; letting a kept frame go;
/// clear(). Budgets: `max_bytes`.
inline std::string run_admission_model(std::span<const std::uint8_t> ops, Admission policy,
    std::size_t max_bytes, std::size_t codes = 24)
{
    using Cache = AnalysisCache<ModelTraits, FirstBytesHash>;
    using Frame = StackFrame<ModelTraits>;
    std::vector<std::vector<std::uint8_t>> code(codes);
    std::vector<std::uint32_t> key(codes);
    for (std::size_t i = 0; i < codes; ++i)
    {
        code[i] = random_code(64 + 97 * (i % 7), static_cast<std::uint32_t>(i + 1));
        const std::uint64_t id = 0x1000 + i;
        std::memcpy(code[i].data(), &id, sizeof(id));
        key[i] = static_cast<std::uint32_t>(
            detail::bucket_hash(FirstBytesHash{}(code[i]), evmalloc::TableId{}, false));
    }
    FramePool<ModelTraits> pool;
    Cache cache{std::pmr::new_delete_resource(),
        AnalysisCacheConfig{.max_bytes = max_bytes, .admission = policy}};
    AdmissionModel model{policy, max_bytes};
    struct Kept
    {
        std::optional<Frame> frame;
        std::size_t code;
        bool pinned;
    };
    std::vector<Kept> kept;
    const auto compare = [&](std::size_t step) -> std::string {
        const std::string at = " at step " + std::to_string(step);
        if (cache.entries() != model.entries())
            return "entries" + at;
        if (cache.bytes() != model.bytes())
            return "bytes" + at;
        if (cache.hits() != model.hits())
            return "hits" + at;
        if (cache.misses() != model.misses())
            return "misses" + at;
        if (cache.evictions() != model.evictions())
            return "evictions" + at;
        if (cache.not_admitted() != model.not_admitted())
            return "not_admitted" + at;
        if (cache.pinned() != model.pinned())
            return "pinned" + at;
        return {};
    };
    for (std::size_t step = 0; step < ops.size(); ++step)
    {
        const std::uint8_t op = ops[step];
        if (op >= 0xF8)
        {
            cache.clear();
            model.clear();
        }
        else if (op >= 0xC0 && !kept.empty())
        {
            const std::size_t j = op % kept.size();
            kept[j].frame.reset();
            if (kept[j].pinned)
                model.release(key[kept[j].code]);
            kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(j));
        }
        else
        {
            const std::size_t i = (op & 0x3F) % codes;
            const bool keep = (op & 0x40) != 0 && kept.size() < 8;
            const std::size_t hits = cache.hits(), misses = cache.misses();
            Result<Frame> f = Frame::init(code[i], pool, cache);
            if (!f)
                return "init failed" + std::to_string(step);
            const AdmissionModel::Outcome expected =
                model.call(key[i], entry_bytes<ModelTraits>(code[i].size()));
            const AdmissionModel::Outcome got = cache.hits() != hits ? AdmissionModel::Outcome::hit
                                                : cache.misses() != misses
                                                    ? AdmissionModel::Outcome::miss
                                                    : AdmissionModel::Outcome::not_admitted;
            if (got != expected)
                return "outcome of code " + std::to_string(i) + " at step " + std::to_string(step);
            if (f->analysis().code().size() != code[i].size() ||
                std::memcmp(f->analysis().code().data(), code[i].data(), code[i].size()) != 0)
                return "code at step " + std::to_string(step);
            const bool pinned = got != AdmissionModel::Outcome::not_admitted;
            if (keep)
                kept.push_back({std::move(*f), i, pinned});
            else
            {
                {
                    const Frame gone{std::move(*f)};
                }
                if (pinned)
                    model.release(key[i]);
            }
        }
        if (std::string d = compare(step); !d.empty())
            return d;
    }
    kept.clear();
    return {};
}
}  // namespace evmalloc::test
