// evmalloc: which missed code gets a shared analysis entry (AnalysisCacheConfig::admission).
//
// Plain LRU (every client's code cache) lets a sweep of code seen once evict the code that is
// called again. The default policy here is TinyLFU's (Einziger, Friedman, Manes, "TinyLFU: A
// Highly Efficient Cache Admission Policy", ACM ToS 2017; Caffeine's W-TinyLFU): a missed code
// is admitted when there is room, and when admitting it would evict, only if it was seen before
// (TinyLFU's doorkeeper: a code seen once never displaces anything) and more often, lately, than
// the entry it would evict (the least recently used unpinned one). Ties keep the resident. A code not admitted runs on the per-frame path: no entry is built,
// nothing is evicted (S3-FIFO's and 2Q's probationary queues would still build an entry for it,
// which is the cost a sweep call must not pay; TinyLFU decides before anything is built).
//
// Frequencies. A cached entry keeps its own count; codes not cached are counted in a small
// direct-mapped history (AdmissionHistory, 4096 slots of 8 bytes, one 32 KiB upstream block), the
// doorkeeper's and sketch's role in TinyLFU, exact per slot: a code whose slot another code
// took counts as unseen. A count saturates at 15 (TinyLFU's 4-bit counters) and halves every
// `window` recorded calls (TinyLFU's reset, applied lazily by epoch), so popularity ages out.
// Recorded: a call that ran on an entry (when its frame unpins), a call not admitted, an
// admission (the history's count moves into the entry) and an eviction (back into history).
#pragma once

#include <cstddef>
#include <cstdint>

namespace evmalloc
{
/// The policy that decides whether a missed code gets an entry (AnalysisCacheConfig::admission).
enum class Admission : std::uint8_t
{
    always,    ///< every miss is inserted (0.2.0's LRU)
    tiny_lfu,  ///< TinyLFU: admitted when there is room, or when seen more than the victim
};

namespace detail
{
/// A count that halves once per epoch passed since `stamp` (the epoch it was written in).
constexpr std::uint8_t aged_count(
    std::uint8_t count, std::uint8_t stamp, std::uint8_t epoch) noexcept
{
    const unsigned passed = static_cast<std::uint8_t>(epoch - stamp);
    return passed >= 8 ? std::uint8_t{0} : static_cast<std::uint8_t>(count >> passed);
}

/// The admission policy's clock and its history of codes that have no entry.
/// \invariant a slot's count is <= max_count.
class AdmissionHistory
{
public:
    static constexpr std::size_t slot_count = 4096;
    static constexpr std::uint8_t max_count = 15;
    /// Recorded calls per epoch (a count halves once per epoch).
    static constexpr std::uint32_t window = 8192;

    struct Slot
    {
        std::uint32_t key;
        std::uint8_t count;  ///< 0: empty
        std::uint8_t stamp;
    };
    static constexpr std::size_t storage_bytes = slot_count * sizeof(Slot);

    /// \requires `slots` points to storage_bytes of storage (8-aligned) that outlives this, or
    /// is nullptr (then nothing is remembered: every code not cached counts as unseen).
    void attach(void* slots) noexcept
    {
        slots_ = static_cast<Slot*>(slots);
        if (slots_ != nullptr)
        {
            for (std::size_t i = 0; i < slot_count; ++i)
                slots_[i] = Slot{0, 0, 0};
        }
    }
    [[nodiscard]] void* storage() const noexcept { return slots_; }
    [[nodiscard]] std::uint8_t epoch() const noexcept { return epoch_; }

    /// How often `key` was seen lately, while it had no entry (0 if its slot holds another).
    [[nodiscard]] std::uint8_t count(std::uint32_t key) const noexcept
    {
        const Slot* s = slot(key);
        return s == nullptr || s->key != key ? std::uint8_t{0}
                                             : aged_count(s->count, s->stamp, epoch_);
    }

    /// A call of `key`, which has no entry, ran (not admitted). Ticks the clock.
    void record(std::uint32_t key) noexcept
    {
        const std::uint8_t n = count(key);
        remember(key, static_cast<std::uint8_t>(n + (n < max_count ? 1 : 0)));
        tick();
    }

    /// `key` left the cache with `n` recent sightings: kept here (replacing its slot's code).
    void remember(std::uint32_t key, std::uint8_t n) noexcept
    {
        if (Slot* s = slot(key); s != nullptr)
            *s = Slot{key, n, epoch_};
    }

    /// `key` got an entry: its history moves there. \returns its count.
    std::uint8_t take(std::uint32_t key) noexcept
    {
        const std::uint8_t n = count(key);
        if (Slot* s = slot(key); s != nullptr && s->key == key)
            *s = Slot{0, 0, 0};
        return n;
    }

    /// One recorded call: every window calls, all counts halve (the epoch advances).
    void tick() noexcept
    {
        if (++calls_ == window)
        {
            calls_ = 0;
            ++epoch_;
        }
    }

private:
    [[nodiscard]] Slot* slot(std::uint32_t key) const noexcept
    {
        if (slots_ == nullptr)
            return nullptr;
        return &slots_[(key * 0x9e3779b1U) >> (32 - 12)];  // 2^12 == slot_count
    }

    Slot* slots_ = nullptr;
    std::uint32_t calls_ = 0;
    std::uint8_t epoch_ = 0;
};
static_assert(AdmissionHistory::slot_count == std::size_t{1} << 12);

/// TinyLFU's decision for a candidate seen `candidate` times lately (this call included) that
/// would evict an entry seen `victim` times (`has_victim` false: nothing can be evicted): seen
/// before (the doorkeeper: a code seen once never displaces anything), and more often than the
/// victim.
constexpr bool admit_over(std::uint8_t candidate, bool has_victim, std::uint8_t victim) noexcept
{
    return candidate > 1 && (!has_victim || candidate > victim);
}
}  // namespace detail
}  // namespace evmalloc
