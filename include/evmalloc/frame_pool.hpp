// evmalloc: the pool that hands out frame buffers and Memory objects.
//
// One LIFO free list of frame buffers per tier (a buffer just released is the next one handed
// out: still warm in cache) and one LIFO free list of Memory objects, which keep their
// capacity between calls. Everything is taken from the upstream resource lazily, the first
// time a list is empty, and reused after that: in steady state a call costs no upstream
// allocation at all. The free lists are intrusive (the link lives in the free buffer or the
// free Memory slot), so releasing never allocates.
//
// Retention:
// - Frame buffers and Memory objects released by frames stay in the pool until trim(), so a
//   program that recurses to the same depth again and again allocates only once. trim() gives
//   back every free buffer beyond `retain_per_tier` in each tier, and every free Memory
//   beyond `retain_per_tier`: call it where a burst is over (at the end of a transaction).
//   After a 1025-deep burst and trim(), a pool holds at most retain_per_tier buffers per tier.
// - A Memory that grew past `memory_retain_limit` (64 KiB by default: four times mainnet's
//   p99.9 of 16 KiB per call, while the max is 579 KiB) gives its storage back when its frame
//   is released; smaller ones keep their capacity, cleared to size 0.
//
// Under AddressSanitizer, retained buffers are poisoned (and a cleared Memory keeps its
// storage poisoned itself). In debug builds, destroying a pool while frames are still alive is reported.
//
// Invariant: active() <= config().max_frames; retained(t) is the length of tier t's free
// list; bytes_retained() is the sum of the free buffers' sizes and the free Memory slots'
// sizes and capacities.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>

#include "config.hpp"
#include "frame_layout.hpp"
#include "memory.hpp"
#include "result.hpp"
#include "sanitizer.hpp"
#include "upstream.hpp"
#include "tier.hpp"
#include "traits.hpp"

namespace evmalloc
{
struct FramePoolConfig
{
    /// Frames alive at once at most: depths 0..1024.
    std::size_t max_frames = 1025;
    /// Free frame buffers per tier (and free Memory objects) that trim() keeps.
    std::size_t retain_per_tier = 16;
    /// A released Memory whose capacity exceeds this gives its storage back upstream.
    std::size_t memory_retain_limit = 64 * 1024;
    /// The limit() of every Memory the pool creates.
    std::size_t memory_limit = Memory::default_limit;
};

template <class Traits = DefaultTraits>
class FramePool
{
public:
    /// A Memory object owned by the pool; `memory` is what a frame uses.
    struct MemorySlot
    {
        Memory memory;
        MemorySlot* next;  ///< the free list's link; meaningless while the slot is handed out
    };

    /// What acquire() hands out: one frame buffer of the tier and one Memory slot.
    struct Lease
    {
        std::byte* buffer;
        MemorySlot* memory;
    };

    /// Frame buffers are taken from `upstream` with this alignment.
    static constexpr std::size_t buffer_alignment = frame_buffer_alignment;

    /// \requires `upstream` outlives the pool.
    explicit FramePool(std::pmr::memory_resource* upstream = std::pmr::new_delete_resource(),
        FramePoolConfig config = {}) noexcept
      : upstream_{upstream}, config_{config}
    {
        EVMALLOC_ASSERT(upstream != nullptr);
    }

    FramePool(const FramePool&) = delete;
    FramePool& operator=(const FramePool&) = delete;

    /// Gives every retained buffer and Memory back upstream.
    /// \requires every frame from this pool has been released (checked in debug builds).
    ~FramePool()
    {
        if constexpr (enable_asserts)
        {
            if (active_ != 0)
                EVMALLOC_REPORT("FramePool destroyed while frames are still alive");
        }
        for (const Tier t : all_tiers)
            free_buffers(t, 0);
        free_memories(0);
    }

    /// One buffer of `tier` and one cleared Memory: from the free lists, else from upstream.
    /// \returns Errc::call_depth_exceeded when max_frames are already alive;
    ///          Errc::out_of_memory when upstream throws. On error nothing changes.
    [[nodiscard]] Result<Lease> acquire(Tier tier) noexcept
    {
        if (active_ >= config_.max_frames) [[unlikely]]
            return Errc::call_depth_exceeded;

        const std::size_t i = tier_index(tier);
        std::byte* buffer = pop_buffer(i);
        bool fresh_buffer = false;
        if (buffer == nullptr) [[unlikely]]
        {
            buffer = allocate_buffer(tier);
            if (buffer == nullptr)
                return Errc::out_of_memory;
            fresh_buffer = true;
        }

        MemorySlot* slot = pop_memory();
        if (slot == nullptr) [[unlikely]]
        {
            slot = allocate_memory();
            if (slot == nullptr)
            {
                if (fresh_buffer)
                    upstream_->deallocate(buffer, frame_buffer_size<Traits>(tier), buffer_alignment);
                else
                    push_buffer(i, buffer);
                return Errc::out_of_memory;
            }
        }

        buffers_allocated_ += fresh_buffer ? 1 : 0;
        ++active_;
        if (active_ > peak_active_)
            peak_active_ = active_;
        return Lease{buffer, slot};
    }

    /// Takes back what acquire(tier) handed out. The buffer goes on top of its tier's list,
    /// the Memory is cleared (its storage given back when larger than memory_retain_limit).
    /// \requires `lease` came from acquire(tier) on this pool and is released once.
    void release(Tier tier, Lease lease) noexcept
    {
        if constexpr (enable_asserts)
        {
            if (active_ == 0 || lease.buffer == nullptr || lease.memory == nullptr)
            {
                EVMALLOC_REPORT("FramePool::release without a matching acquire");
                return;
            }
        }
        --active_;
        push_buffer(tier_index(tier), lease.buffer);
        push_memory(lease.memory);
    }

    /// Gives back every free buffer beyond retain_per_tier in each tier, and every free
    /// Memory beyond retain_per_tier; the most recently released ones stay.
    void trim() noexcept
    {
        for (const Tier t : all_tiers)
            free_buffers(t, config_.retain_per_tier);
        free_memories(config_.retain_per_tier);
    }

    /// Frames alive now.
    [[nodiscard]] std::size_t active() const noexcept { return active_; }
    /// The most frames alive at once so far.
    [[nodiscard]] std::size_t peak_active() const noexcept { return peak_active_; }
    /// Frame buffers taken from upstream so far (all tiers; given-back ones included).
    [[nodiscard]] std::size_t buffers_allocated() const noexcept { return buffers_allocated_; }
    /// Free buffers of `tier` held for reuse.
    [[nodiscard]] std::size_t retained(Tier tier) const noexcept { return retained_[tier_index(tier)]; }
    /// Free Memory objects held for reuse.
    [[nodiscard]] std::size_t retained_memories() const noexcept { return retained_memories_; }
    /// Bytes held for reuse: free frame buffers, plus the free Memory slots and their storage.
    [[nodiscard]] std::size_t bytes_retained() const noexcept { return bytes_retained_; }

    /// The share of the frame buffers this pool holds that are in use:
    /// active() / (active() + retained buffers of all tiers); 0 when it holds none.
    [[nodiscard]] double utilization() const noexcept
    {
        std::size_t held = active_;
        for (const std::size_t r : retained_)
            held += r;
        return held == 0 ? 0.0 : static_cast<double>(active_) / static_cast<double>(held);
    }

    [[nodiscard]] const FramePoolConfig& config() const noexcept { return config_; }
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept { return upstream_; }

private:
    // The link a free buffer carries in its first bytes.
    struct FreeBuffer
    {
        std::byte* next;
    };

    std::byte* allocate_buffer(Tier tier) noexcept
    {
        return static_cast<std::byte*>(
            detail::try_allocate_from(upstream_, frame_buffer_size<Traits>(tier), buffer_alignment));
    }

    MemorySlot* allocate_memory() noexcept
    {
        void* const p = detail::try_allocate_from(upstream_, sizeof(MemorySlot), alignof(MemorySlot));
        if (p == nullptr)
            return nullptr;
        return ::new (p) MemorySlot{Memory{upstream_, config_.memory_limit}, nullptr};
    }

    std::byte* pop_buffer(std::size_t i) noexcept
    {
        std::byte* const buffer = heads_[i];
        if (buffer == nullptr)
            return nullptr;
        const std::size_t size = frame_buffer_size<Traits>(static_cast<Tier>(i));
        heads_[i] = link(buffer);
        EVMALLOC_UNPOISON(buffer, size);
        --retained_[i];
        bytes_retained_ -= size;
        return buffer;
    }

    void push_buffer(std::size_t i, std::byte* buffer) noexcept
    {
        const std::size_t size = frame_buffer_size<Traits>(static_cast<Tier>(i));
        ::new (static_cast<void*>(buffer)) FreeBuffer{heads_[i]};
        heads_[i] = buffer;
        ++retained_[i];
        bytes_retained_ += size;
        EVMALLOC_POISON(buffer, size);
    }

    MemorySlot* pop_memory() noexcept
    {
        MemorySlot* const slot = free_memory_;
        if (slot == nullptr)
            return nullptr;
        free_memory_ = slot->next;
        --retained_memories_;
        bytes_retained_ -= sizeof(MemorySlot) + slot->memory.capacity();
        return slot;
    }

    void push_memory(MemorySlot* slot) noexcept
    {
        Memory& m = slot->memory;
        m.clear();
        if (m.capacity() > config_.memory_retain_limit)
            m.release_storage();
        slot->next = free_memory_;
        free_memory_ = slot;
        ++retained_memories_;
        bytes_retained_ += sizeof(MemorySlot) + m.capacity();
    }

    // The link of a free buffer, read through its poison.
    static std::byte*& link(std::byte* buffer) noexcept
    {
        EVMALLOC_UNPOISON(buffer, sizeof(FreeBuffer));
        return std::launder(reinterpret_cast<FreeBuffer*>(buffer))->next;
    }

    // Gives back the free buffers of `tier` beyond the first `keep` (the most recently
    // released ones stay: they are the warm ones).
    void free_buffers(Tier tier, std::size_t keep) noexcept
    {
        const std::size_t i = tier_index(tier);
        if (retained_[i] <= keep)
            return;
        const std::size_t size = frame_buffer_size<Traits>(tier);
        std::byte* last_kept = nullptr;
        std::byte* buffer = heads_[i];
        for (std::size_t n = 0; n < keep; ++n)
        {
            last_kept = buffer;
            buffer = link(buffer);
            EVMALLOC_POISON(last_kept, sizeof(FreeBuffer));
        }
        if (last_kept == nullptr)
            heads_[i] = nullptr;
        else
        {
            link(last_kept) = nullptr;
            EVMALLOC_POISON(last_kept, sizeof(FreeBuffer));
        }
        while (buffer != nullptr)
        {
            std::byte* const next = link(buffer);
            EVMALLOC_UNPOISON(buffer, size);
            upstream_->deallocate(buffer, size, buffer_alignment);
            buffer = next;
            --retained_[i];
            bytes_retained_ -= size;
        }
        EVMALLOC_ASSERT(retained_[i] == keep);
    }

    // Gives back the free Memory objects (and their storage) beyond the first `keep`.
    void free_memories(std::size_t keep) noexcept
    {
        MemorySlot** cut = &free_memory_;
        for (std::size_t n = 0; n < keep && *cut != nullptr; ++n)
            cut = &(*cut)->next;
        MemorySlot* slot = *cut;
        *cut = nullptr;
        while (slot != nullptr)
        {
            MemorySlot* const next = slot->next;
            --retained_memories_;
            bytes_retained_ -= sizeof(MemorySlot) + slot->memory.capacity();
            slot->~MemorySlot();
            upstream_->deallocate(slot, sizeof(MemorySlot), alignof(MemorySlot));
            slot = next;
        }
    }

    std::pmr::memory_resource* upstream_;
    FramePoolConfig config_;
    std::array<std::byte*, tier_count> heads_{};
    std::array<std::size_t, tier_count> retained_{};
    MemorySlot* free_memory_ = nullptr;
    std::size_t retained_memories_ = 0;
    std::size_t bytes_retained_ = 0;
    std::size_t active_ = 0;
    std::size_t peak_active_ = 0;
    std::size_t buffers_allocated_ = 0;
};
}  // namespace evmalloc
