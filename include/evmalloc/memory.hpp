// evmalloc: EVM memory, growable, on the heap.
//
// Why Memory is not in the frame buffer: everything else in a frame is sized by the code
// (known at init), but memory is sized by what the running code does. On mainnet a call
// uses 128 B at the median, 4 KiB at p99 and up to 579 KiB; carving the worst case into
// every frame buffer would cost up to the limit per frame, and memory is the only part that
// grows while the interpreter runs. So it lives on the heap, from an upstream resource (an
// Upstream, upstream.hpp: a failure there is Errc::out_of_memory, never a throw), and the
// frame pool keeps Memory objects warm (capacity kept across calls by clear()) instead.
//
// Growth follows evmone: the first growth allocates initial_capacity (4 KiB); after that the
// capacity doubles, and when doubling is still short the need is rounded up to 4 KiB pages.
// A new capacity is never more than limit() rounded up to a page (unless the need is larger).
// Only the newly addressable tail is zeroed, never the whole capacity. Under AddressSanitizer
// the bytes past size() are poisoned, so reading memory that was never expanded is a report.
//
// Gas: expand(offset, length, gas_left) prices the expansion before anything grows and refuses
// it (Errc::out_of_gas, nothing allocated or zeroed) when gas_left does not pay for it, so an
// interpreter never holds memory it could not pay for; expansion_gas() is the same figure
// without growing. expand_charged() is expand with gas for an interpreter that counts gas in
// an int64_t: it returns the gas left (negative: refused), its common step inline.
//
// Invariant: size() % 32 == 0, size() <= capacity(), size() <= limit();
//            data() is never null: with capacity() == 0 it is a shared, aligned, empty
//            sentinel (never given to upstream), so callers need no null check.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory_resource>
#include <utility>

#include "allocation.hpp"
#include "config.hpp"
#include "result.hpp"
#include "sanitizer.hpp"
#include "upstream.hpp"

namespace evmalloc
{
class Memory
{
public:
    /// A guard against bugs, not the real bound: gas is (1e9 gas pays for about 23 MB).
    static constexpr std::size_t default_limit = std::size_t{64} * 1024 * 1024;
    /// What the first growth allocates (evmone's measured choice).
    static constexpr std::size_t initial_capacity = 4096;
    /// Growth past doubling is rounded up to this.
    static constexpr std::size_t page_size = 4096;
    /// Alignment of the buffer asked from upstream.
    static constexpr std::size_t alignment = alignof(std::max_align_t);

    /// The initial capacity; Memory grows, so can_grow is true. Independent of the code size.
    [[nodiscard]] static constexpr Allocation calculate_allocation(
        std::size_t /*code_size*/) noexcept
    {
        return {initial_capacity, alignment, true};
    }

    /// The gas of `words` words of memory: 3w + w*w/512. Saturates at UINT64_MAX for
    /// w >= 2^32 (128 GiB; no real memory gets there).
    [[nodiscard]] static constexpr std::uint64_t expansion_cost(std::uint64_t words) noexcept
    {
        if (words >= (std::uint64_t{1} << 32))
            return std::numeric_limits<std::uint64_t>::max();
        return 3 * words + words * words / 512;
    }

    /// Empty, allocates nothing (the first growth does). \requires upstream is not null and
    /// it outlives the Memory.
    explicit Memory(Upstream upstream = std::pmr::get_default_resource(),
        std::size_t limit = default_limit) noexcept
      : upstream_{upstream}, limit_{limit}, max_size_{max_size_for(limit)}
    {
        EVMALLOC_ASSERT(upstream.resource() != nullptr);
    }

    Memory(const Memory&) = delete;
    Memory& operator=(const Memory&) = delete;

    /// Takes the buffer, upstream and limit; `other` is left empty (capacity 0), same upstream.
    Memory(Memory&& other) noexcept
      : data_{std::exchange(other.data_, empty_data())},
        size_{std::exchange(other.size_, 0)},
        capacity_{std::exchange(other.capacity_, 0)},
        upstream_{other.upstream_},
        limit_{other.limit_},
        max_size_{other.max_size_}
    {}

    /// Gives this buffer back to its upstream, then takes `other`'s as the move constructor.
    Memory& operator=(Memory&& other) noexcept
    {
        if (this != &other)
        {
            release_storage();
            data_ = std::exchange(other.data_, empty_data());
            size_ = std::exchange(other.size_, 0);
            capacity_ = std::exchange(other.capacity_, 0);
            upstream_ = other.upstream_;
            limit_ = other.limit_;
            max_size_ = other.max_size_;
        }
        return *this;
    }

    ~Memory() { release_storage(); }

    /// Makes [offset, offset + length) addressable: size() becomes at least offset + length
    /// rounded up to 32. Nothing changes for length == 0, whatever the offset.
    /// \returns the gas of this expansion, expansion_cost(new words) - expansion_cost(old
    /// words) (0 when nothing grew; saturating at 2^63 - 1); Errc::memory_limit_exceeded when offset + length
    /// overflows or the new size passes limit(); Errc::out_of_memory when upstream fails.
    /// On error size, capacity and contents are as they were.
    [[nodiscard]] Result<std::uint64_t> expand(std::uint64_t offset, std::uint64_t length) noexcept
    {
        return expand_impl<false>(offset, length, 0);
    }

    /// As expand(offset, length), but the gas is priced before anything grows: when it is more
    /// than gas_left (any growth, for a negative gas_left) the result is Errc::out_of_gas and
    /// nothing was allocated, zeroed or changed. Errc::memory_limit_exceeded is checked first;
    /// length == 0 costs 0 and succeeds whatever the offset and gas_left.
    /// \returns the gas of this expansion (<= gas_left), or an Errc as above; on error size,
    /// capacity and contents are as they were.
    [[nodiscard]] Result<std::uint64_t> expand(
        std::uint64_t offset, std::uint64_t length, std::int64_t gas_left) noexcept
    {
        return expand_impl<true>(offset, length, gas_left);
    }

    /// expand(offset, length, gas_left) for an interpreter that keeps its gas in an int64_t
    /// (evmone's baseline, from its out-of-line grow_memory): the same checks and growth, the
    /// outcome as one number, and the common step (one more word within the capacity) inline:
    /// a growth step costs one call, not two, and no Result on the way back.
    /// \returns gas_left minus the gas of this expansion when it succeeded (gas_left itself
    ///          when nothing grows); a negative number when expand(offset, length, gas_left)
    ///          would return an Errc, and nothing changed. So for gas_left >= 0 (an
    ///          interpreter's), negative means failed.
    [[nodiscard]] std::int64_t expand_charged(
        std::uint64_t offset, std::uint64_t length, std::int64_t gas_left) noexcept
    {
        const std::uint64_t end = offset + length;
        if (length == 0 || (end >= offset && end <= size_)) [[likely]]
            return gas_left;
        const std::uint64_t new_words = (end + 31) / 32;
        const auto needed = static_cast<std::size_t>(new_words * 32);
        if (end < offset || end > max_size_ || needed > capacity_) [[unlikely]]
        {
            const std::uint64_t gas = grow<true>(offset, end, gas_left);
            if (gas >= grow_failed) [[unlikely]]
                return -1;
            return gas_left - static_cast<std::int64_t>(gas);  // gas <= gas_left
        }
        // Within the capacity: no allocation, so no call on the common step (one more word).
        const bool one_word = needed - size_ == 32;
        const std::uint64_t gas =
            one_word ? word_step_gas(new_words) : gas_between(size_ / 32, new_words);
        if (!affords(gas, gas_left)) [[unlikely]]
            return -1;
        if (one_word) [[likely]]
            add_word();
        else
            zero_to(needed);
        return gas_left - static_cast<std::int64_t>(gas);
    }

    /// What expand(offset, length) would charge now, without growing anything.
    /// \returns the gas (0 for length == 0 or within size()); Errc::memory_limit_exceeded
    /// where expand would say so. (Errc::out_of_memory cannot be foreseen.)
    [[nodiscard]] Result<std::uint64_t> expansion_gas(
        std::uint64_t offset, std::uint64_t length) const noexcept
    {
        const std::uint64_t end = offset + length;
        if (length == 0 || (end >= offset && end <= size_))
            return std::uint64_t{0};
        if (end < offset || end > max_size_)
            return Errc::memory_limit_exceeded;
        const std::uint64_t new_words = (end + 31) / 32;
        if (new_words * 32 <= size_)
            return std::uint64_t{0};
        return gas_between(size_ / 32, new_words);
    }

    /// Size 0; the capacity (and its bytes) stay for the next call.
    void clear() noexcept
    {
        EVMALLOC_POISON(data_, size_);
        size_ = 0;
    }

    /// Size 0 and the buffer goes back upstream (capacity 0). The next growth allocates again.
    void release_storage() noexcept
    {
        if (capacity_ != 0)
        {
            EVMALLOC_UNPOISON(data_, capacity_);
            upstream_.deallocate(data_, capacity_, alignment);
        }
        data_ = empty_data();
        size_ = 0;
        capacity_ = 0;
    }

    /// Addressable bytes: a multiple of 32.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// Bytes held from upstream.
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
    /// Never null (see the invariant); aligned to `alignment`.
    [[nodiscard]] std::uint8_t* data() noexcept { return data_; }
    [[nodiscard]] const std::uint8_t* data() const noexcept { return data_; }
    /// The byte at `index`. \requires index < size().
    [[nodiscard]] std::uint8_t& operator[](std::size_t index) noexcept
    {
        EVMALLOC_ASSERT(index < size_);
        return data_[index];
    }
    [[nodiscard]] const std::uint8_t& operator[](std::size_t index) const noexcept
    {
        EVMALLOC_ASSERT(index < size_);
        return data_[index];
    }
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept
    {
        return upstream_.resource();
    }

private:
    // grow() returns the gas, or grow_failed + the Errc. (A scalar, not a Result: GCC returns
    // a Result from an out-of-line call through a stack slot that it reloads wider than it
    // wrote, a store-forwarding stall on every growth.) Gas stays below grow_failed: it
    // saturates there, which takes 2^32 words (128 GiB) of memory.
    static constexpr std::uint64_t grow_failed = std::uint64_t{1} << 63;
    static constexpr std::uint64_t fail(Errc e) noexcept
    {
        return grow_failed + static_cast<std::uint64_t>(e);
    }

    // Both expand forms, written once. Metered checks gas_left before growing; unmetered
    // (the two-argument form) ignores it, which is the same as an unlimited gas_left (the gas
    // saturates at INT64_MAX) without the comparison on every growth step: with it a one-word
    // step took 37 instructions in grow() instead of 33, plus one at the call (callgrind,
    // g++ 12 -O3). The within-size fast path is the same for both.
    template <bool Metered>
    Result<std::uint64_t> expand_impl(
        std::uint64_t offset, std::uint64_t length, std::int64_t gas_left) noexcept
    {
        const std::uint64_t end = offset + length;
        if (length == 0 || (end >= offset && end <= size_)) [[likely]]
            return std::uint64_t{0};
        const std::uint64_t gas = grow<Metered>(offset, end, gas_left);
        if (gas >= grow_failed) [[unlikely]]
            return static_cast<Errc>(gas - grow_failed);
        return gas;
    }

    /// The slow path: end > size() or offset + length overflowed. Checks the limit, then the
    /// gas, before anything changes. Kept a leaf function for the common step (one more word,
    /// within capacity); everything else goes to resize().
    template <bool Metered>
    [[gnu::noinline]] std::uint64_t grow(
        std::uint64_t offset, std::uint64_t end, std::int64_t gas_left) noexcept
    {
        if (end < offset || end > max_size_) [[unlikely]]  // wrapped, or past the limit
            return fail(Errc::memory_limit_exceeded);
        const std::uint64_t new_words = (end + 31) / 32;
        const auto needed = static_cast<std::size_t>(new_words * 32);  // <= max_size_
        if (needed <= size_)  // end landed in the last word: nothing grows
            return 0;
        if (needed - size_ != 32 || needed > capacity_) [[unlikely]]
            return resize<Metered>(new_words, gas_left);
        const std::uint64_t gas = word_step_gas(new_words);
        if (Metered && !affords(gas, gas_left)) [[unlikely]]
            return fail(Errc::out_of_gas);
        add_word();
        return gas;
    }

    /// The gas of growing from w - 1 words to w: 3 + w*w/512 - (w-1)*(w-1)/512, without the
    /// squares (which overflow from w = 2^32): the difference of the squares is 2w - 1.
    static constexpr std::uint64_t word_step_gas(std::uint64_t w) noexcept
    {
        const std::uint64_t r = (w - 1) % 512;
        return 3 + (2 * w - 1 + r * r % 512) / 512;
    }

    /// size() grows by one zeroed word. \requires size() + 32 <= capacity().
    void add_word() noexcept
    {
        std::uint8_t* const tail = data_ + size_;
        EVMALLOC_UNPOISON(tail, 32);
        std::memset(tail, 0, 32);
        size_ += 32;
    }

    /// size() grows to `needed`, the new bytes zeroed. \requires size() <= needed <= capacity().
    void zero_to(std::size_t needed) noexcept
    {
        std::uint8_t* const tail = data_ + size_;
        const std::size_t tail_size = needed - size_;
        size_ = needed;
        EVMALLOC_UNPOISON(tail, tail_size);
        std::memset(tail, 0, tail_size);
    }

    /// Grows to new_words words if gas_left pays for it: reallocates if needed, zeroes the
    /// new tail.
    template <bool Metered>
    [[gnu::noinline]] std::uint64_t resize(std::uint64_t new_words, std::int64_t gas_left) noexcept
    {
        const auto needed = static_cast<std::size_t>(new_words * 32);
        const std::uint64_t gas = gas_between(size_ / 32, new_words);
        if (Metered && !affords(gas, gas_left)) [[unlikely]]
            return fail(Errc::out_of_gas);
        if (needed > capacity_ && !reallocate(needed)) [[unlikely]]
            return fail(Errc::out_of_memory);
        zero_to(needed);
        return gas;
    }

    /// Whether gas_left pays for gas (< grow_failed, so it fits an int64_t); never when negative.
    static constexpr bool affords(std::uint64_t gas, std::int64_t gas_left) noexcept
    {
        return static_cast<std::int64_t>(gas) <= gas_left;
    }

    /// expansion_cost(new_words) - expansion_cost(old_words), below grow_failed.
    static constexpr std::uint64_t gas_between(
        std::uint64_t old_words, std::uint64_t new_words) noexcept
    {
        if (new_words < (std::uint64_t{1} << 32)) [[likely]]  // w * w does not overflow
            return 3 * (new_words - old_words) +
                   (new_words * new_words / 512 - old_words * old_words / 512);
        return std::min(expansion_cost(new_words) - expansion_cost(old_words), grow_failed - 1);
    }

    /// Moves the contents to a buffer of at least `needed` bytes (the growth policy above).
    /// \returns false, with nothing changed, when upstream fails.
    [[gnu::noinline]] bool reallocate(std::size_t needed) noexcept
    {
        std::size_t new_capacity = capacity_ > std::numeric_limits<std::size_t>::max() / 2
                                       ? std::numeric_limits<std::size_t>::max()
                                       : 2 * capacity_;
        if (new_capacity < initial_capacity)
            new_capacity = initial_capacity;
        const std::size_t cap_limit = round_to_page(limit_);
        if (new_capacity > cap_limit)
            new_capacity = cap_limit;
        if (new_capacity < needed)
            new_capacity = round_to_page(needed);

        void* const fresh = upstream_.try_allocate(new_capacity, alignment);
        if (fresh == nullptr)
            return false;
        auto* const bytes = static_cast<std::uint8_t*>(fresh);
        if (size_ != 0)
            std::memcpy(bytes, data_, size_);
        if (capacity_ != 0)
        {
            EVMALLOC_UNPOISON(data_, capacity_);
            upstream_.deallocate(data_, capacity_, alignment);
        }
        data_ = bytes;
        capacity_ = new_capacity;
        EVMALLOC_POISON(data_ + size_, capacity_ - size_);
        return true;
    }

    /// The largest size() `limit` allows: limit rounded down to 32 (and below 2^64 - 31, so
    /// rounding an end up to 32 never wraps).
    static constexpr std::size_t max_size_for(std::size_t limit) noexcept
    {
        constexpr std::size_t top = std::numeric_limits<std::size_t>::max() - 31;
        return (limit < top ? limit : top) / 32 * 32;
    }

    /// n rounded up to a multiple of page_size (n itself where that would overflow).
    static constexpr std::size_t round_to_page(std::size_t n) noexcept
    {
        return n > std::numeric_limits<std::size_t>::max() - (page_size - 1)
                   ? n
                   : (n + page_size - 1) / page_size * page_size;
    }

    /// What data() points at while there is no storage: one aligned word no one may touch
    /// (size() is 0 then, so no byte of it is addressable). Shared, never deallocated.
    static std::uint8_t* empty_data() noexcept
    {
        alignas(alignment) static std::uint8_t sentinel[32]{};
        return sentinel;
    }

    std::uint8_t* data_ = empty_data();
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
    Upstream upstream_;
    std::size_t limit_;
    std::size_t max_size_;  // max_size_for(limit_)
};
}  // namespace evmalloc
