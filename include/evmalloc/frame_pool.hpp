// evmalloc: the pool that hands out frame buffers and Memory objects.
//
// Buffers come in seven kinds, each with its own LIFO free list (a buffer just released is the
// next one handed out: still warm in cache): one per tier (frame_buffer_size(tier) bytes), and
// stack-only buffers (stack_buffer_size() bytes) for frames whose code part is a shared
// analysis entry. Code above the largest tier (up to FramePoolConfig::max_code_size) gets an
// exactly sized buffer from upstream that goes back at release, never retained. Free Memory
// objects wait on two more LIFO lists (with storage, without); they keep their capacity between
// calls. Everything is taken
// from the upstream resource lazily, the first time a list is empty, and reused after that: in
// steady state a call costs no upstream allocation at all. The free lists are intrusive (the
// link lives in the free buffer or the free Memory slot), so releasing never allocates. An
// upstream failure is Errc::out_of_memory (upstream.hpp), with nothing changed.
//
// Retention, bounded without any hook from the caller:
// - Buffers: released ones stay in the pool, so a program that recurses to the same depth again
//   and again allocates only once. trim() gives back every free buffer beyond retain_per_tier
//   of each kind. With auto_trim (the default) the pool trims itself when its last live frame
//   is released (a top-level call ended): an EVMC VM, which is told of no transaction's end,
//   stays bounded too. After a 1025-deep burst, a pool holds at most retain_per_tier buffers
//   per kind.
// - Memory: a budget, not a per-object cliff, that keeps the larger memories. Free Memory
//   objects that kept their storage wait on one LIFO list, those without storage on another;
//   a frame gets one with storage first (the one released last), else one without, else a new
//   one. A released Memory keeps its capacity while the capacity of all free ones stays within
//   memory_retain_bytes. When it would pass the budget, the free ones on top of the list that
//   are smaller than it give their storage back if that makes room; otherwise it gives back
//   its own. So the next frame always gets at least the capacity of the Memory released last
//   (when that fits the budget at all): after a deep burst whose inner frames filled the budget
//   on the way out, the top-level call's 1 MiB stays and the next top-level call reuses it. A
//   contract that uses 1 MiB per call reuses the same pages on every call, and a burst holds at
//   most the budget. trim() keeps at most retain_per_tier free Memory objects: those with
//   storage first (the most recently released), then those without.
//
// Under AddressSanitizer, retained buffers are poisoned (and a cleared Memory keeps its storage
// poisoned itself); a buffer goes back upstream unpoisoned. In debug builds, destroying a pool
// while frames are alive is reported.
//
// Invariant: active() <= config().max_frames; retained(t) is the length of tier t's free list;
// memory_bytes_retained() is the sum of the free Memory objects' capacities and stays <=
// memory_retain_bytes; bytes_retained() is the free buffers' sizes plus the free Memory slots'
// sizes and capacities.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>

#include "analysis.hpp"
#include "config.hpp"
#include "frame_layout.hpp"
#include "intrusive_list.hpp"
#include "memory.hpp"
#include "result.hpp"
#include "sanitizer.hpp"
#include "tier.hpp"
#include "traits.hpp"
#include "upstream.hpp"

namespace evmalloc
{
/// Every field takes any value; one is clamped when a pool is built (config() then reports what
/// the pool applies): max_code_size above Analysis::max_analysable_size (2^32 - 2, the index
/// range of an analysis) becomes that, so SIZE_MAX reads "any code". The edges are plain:
/// max_frames 0 refuses every frame (call_depth_exceeded), retain_per_tier 0 keeps no buffer
/// and no Memory past a trim, memory_retain_bytes 0 keeps no Memory's storage, memory_limit 0
/// lets no Memory grow (memory_limit_exceeded), and a memory_limit of any size is what each
/// Memory enforces (gas bounds memory long before).
struct FramePoolConfig
{
    /// Frames alive at once at most: depths 0..1024.
    std::size_t max_frames = 1025;
    /// Free buffers of each kind (per tier, and stack-only) and free Memory objects that
    /// trim() keeps.
    std::size_t retain_per_tier = 16;
    /// Code up to this size runs: above the largest tier (131072) through an exactly sized
    /// buffer that is not retained; above it, init() says Errc::code_too_large. An EVMC VM that
    /// must run any code sets it as high as Analysis::max_analysable_size (2^32 - 2); anything
    /// higher is clamped to that.
    std::size_t max_code_size = evmalloc::max_code_size;
    /// The total capacity that free Memory objects may keep (32 MiB): a released Memory that
    /// would pass it takes the place of smaller free ones, or gives its storage back.
    std::size_t memory_retain_bytes = std::size_t{32} << 20;
    /// The limit() of every Memory the pool creates.
    std::size_t memory_limit = Memory::default_limit;
    /// Trim when the last live frame is released (a top-level call ended).
    bool auto_trim = true;
};

template <class Traits = DefaultTraits>
class FramePool
{
public:
    /// A Memory object owned by the pool; `memory` is what a frame uses.
    struct MemorySlot
    {
        Memory memory;
        void* next;  ///< the free list's link; meaningless while the slot is handed out
    };

    /// What the acquire functions hand out: one buffer and one Memory slot.
    struct Lease
    {
        std::byte* buffer;
        MemorySlot* memory;
        std::size_t bytes;  ///< the buffer's size
        std::uint8_t kind;  ///< a tier index, stack_kind or oversize_kind
    };

    /// Lease::kind of a stack-only buffer and of a buffer above the largest tier.
    static constexpr std::uint8_t stack_kind = tier_count;
    static constexpr std::uint8_t oversize_kind = tier_count + 1;

    /// Buffers are taken from `upstream` with this alignment.
    static constexpr std::size_t buffer_alignment = frame_buffer_alignment;

    /// A pool under `config`, its max_code_size clamped to Analysis::max_analysable_size.
    /// \requires `upstream` is not null and outlives the pool.
    explicit FramePool(
        Upstream upstream = std::pmr::new_delete_resource(), FramePoolConfig config = {}) noexcept
      : upstream_{upstream}, config_{clamped(config)}
    {
        EVMALLOC_ASSERT(upstream.resource() != nullptr);
    }

    /// `config` as a pool applies it: max_code_size at most Analysis::max_analysable_size.
    [[nodiscard]] static constexpr FramePoolConfig clamped(FramePoolConfig config) noexcept
    {
        if (config.max_code_size > Analysis::max_analysable_size)
            config.max_code_size = Analysis::max_analysable_size;
        return config;
    }

    FramePool(const FramePool&) = delete;
    FramePool& operator=(const FramePool&) = delete;

    /// Gives every retained buffer and Memory back upstream.
    /// \requires every frame from this pool has been released (reported in debug builds).
    ~FramePool()
    {
        if constexpr (enable_asserts)
        {
            if (active_ != 0)
                EVMALLOC_REPORT("FramePool destroyed while frames are still alive");
        }
        for (std::size_t k = 0; k < list_count; ++k)
            free_buffers(k, 0);
        free_memories(0);
    }

    /// One buffer of `tier` and one cleared Memory: from the free lists, else from upstream.
    /// \returns Errc::call_depth_exceeded when max_frames are already alive;
    ///          Errc::out_of_memory when upstream fails. On error nothing changes.
    [[nodiscard]] Result<Lease> acquire(Tier tier) noexcept
    {
        const auto kind = static_cast<std::uint8_t>(tier_index(tier));
        return acquire_kind(kind, list_bytes(kind));
    }

    /// One stack-only buffer (stack_buffer_size() bytes) and one cleared Memory; as acquire().
    [[nodiscard]] Result<Lease> acquire_stack() noexcept
    {
        return acquire_kind(stack_kind, list_bytes(stack_kind));
    }

    /// A buffer carved for code of exactly `code_size` bytes (frame_buffer_bytes(code_size)),
    /// for code above the largest tier; it goes back upstream at release. As acquire(), and
    /// \returns Errc::code_too_large when code_size > config().max_code_size.
    [[nodiscard]] Result<Lease> acquire_oversize(std::size_t code_size) noexcept
    {
        if (code_size > config_.max_code_size) [[unlikely]]
            return Errc::code_too_large;
        return acquire_kind(oversize_kind, frame_buffer_bytes<Traits>(code_size));
    }

    /// Takes back what an acquire function handed out: the buffer goes on top of its kind's
    /// list (an oversize one goes upstream, unpoisoned), the Memory is cleared and keeps its
    /// capacity within the memory budget (see the top of this header). With auto_trim,
    /// releasing the last live frame trims the pool.
    /// \requires `lease` came from this pool and is released once.
    void release(const Lease& lease) noexcept
    {
        EVMALLOC_ASSERT(active_ != 0 && lease.buffer != nullptr && lease.memory != nullptr);
        --active_;
        if (lease.kind == oversize_kind)
        {
            EVMALLOC_UNPOISON(lease.buffer, lease.bytes);
            upstream_.deallocate(lease.buffer, lease.bytes, buffer_alignment);
        }
        else
            push_buffer(lease.kind, lease.buffer);
        push_memory(lease.memory);
        if (active_ == 0 && config_.auto_trim)
            trim();
    }

    /// release(lease), for a lease of acquire(tier). \requires lease.kind is tier's index.
    void release(Tier tier, const Lease& lease) noexcept
    {
        EVMALLOC_ASSERT(lease.kind == tier_index(tier));
        release(lease);
    }

    /// Gives back every free buffer beyond retain_per_tier of each kind (the most recently
    /// released ones stay), and every free Memory beyond retain_per_tier (those with storage
    /// stay first, the most recently released of them first). Cheap when within bounds.
    void trim() noexcept
    {
        for (std::size_t k = 0; k < list_count; ++k)
            free_buffers(k, config_.retain_per_tier);
        free_memories(config_.retain_per_tier);
    }

    /// Frames alive now.
    [[nodiscard]] std::size_t active() const noexcept { return active_; }
    /// The most frames alive at once so far.
    [[nodiscard]] std::size_t peak_active() const noexcept { return peak_active_; }
    /// Buffers taken from upstream so far (every kind; given-back ones included).
    [[nodiscard]] std::size_t buffers_allocated() const noexcept { return buffers_allocated_; }
    /// Free buffers of `tier` held for reuse.
    [[nodiscard]] std::size_t retained(Tier tier) const noexcept
    {
        return lists_[tier_index(tier)].count;
    }
    /// Free stack-only buffers held for reuse.
    [[nodiscard]] std::size_t retained_stacks() const noexcept { return lists_[stack_kind].count; }
    /// Free Memory objects held for reuse.
    [[nodiscard]] std::size_t retained_memories() const noexcept { return retained_memories_; }
    /// The capacity of the free Memory objects (<= config().memory_retain_bytes).
    [[nodiscard]] std::size_t memory_bytes_retained() const noexcept
    {
        return memory_bytes_retained_;
    }
    /// Bytes held for reuse: free buffers, plus the free Memory slots and their storage.
    [[nodiscard]] std::size_t bytes_retained() const noexcept
    {
        std::size_t bytes = memory_bytes_retained_ + retained_memories_ * sizeof(MemorySlot);
        for (std::size_t k = 0; k < list_count; ++k)
            bytes += lists_[k].count * list_bytes(k);
        return bytes;
    }

    /// The share of the buffers this pool holds that are in use: active() / (active() + free
    /// buffers of every kind); 0 when it holds none.
    [[nodiscard]] double utilization() const noexcept
    {
        std::size_t held = active_;
        for (const FreeList& list : lists_)
            held += list.count;
        return evmalloc::utilization(active_, held);
    }

    [[nodiscard]] const FramePoolConfig& config() const noexcept { return config_; }
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept
    {
        return upstream_.resource();
    }

private:
    static constexpr std::size_t list_count = tier_count + 1;  // the tiers, then stack-only

    struct FreeList
    {
        detail::IntrusiveFreeList<> blocks;
        std::size_t count = 0;
    };

    // A free Memory slot keeps its link in `next`, not over the Memory.
    struct LinkAtNext
    {
        static void* link(void* slot) noexcept { return &static_cast<MemorySlot*>(slot)->next; }
    };

    static constexpr std::size_t list_bytes(std::size_t kind) noexcept
    {
        return kind == stack_kind ? stack_buffer_size<Traits>()
                                  : frame_buffer_size<Traits>(static_cast<Tier>(kind));
    }

    Result<Lease> acquire_kind(std::uint8_t kind, std::size_t bytes) noexcept
    {
        if (active_ >= config_.max_frames) [[unlikely]]
            return Errc::call_depth_exceeded;

        std::byte* buffer = kind == oversize_kind ? nullptr : pop_buffer(kind);
        const bool fresh_buffer = buffer == nullptr;
        if (fresh_buffer) [[unlikely]]
        {
            buffer = static_cast<std::byte*>(upstream_.try_allocate(bytes, buffer_alignment));
            if (buffer == nullptr)
                return Errc::out_of_memory;
        }

        MemorySlot* slot = pop_memory();
        if (slot == nullptr) [[unlikely]]
        {
            slot = allocate_memory();
            if (slot == nullptr)
            {
                if (fresh_buffer)
                    upstream_.deallocate(buffer, bytes, buffer_alignment);
                else
                    push_buffer(kind, buffer);
                return Errc::out_of_memory;
            }
        }

        buffers_allocated_ += fresh_buffer ? 1 : 0;
        ++active_;
        if (active_ > peak_active_)
            peak_active_ = active_;
        return Lease{buffer, slot, bytes, kind};
    }

    MemorySlot* allocate_memory() noexcept
    {
        void* const p = upstream_.try_allocate(sizeof(MemorySlot), alignof(MemorySlot));
        if (p == nullptr)
            return nullptr;
        return ::new (p) MemorySlot{Memory{upstream_, config_.memory_limit}, nullptr};
    }

    std::byte* pop_buffer(std::size_t kind) noexcept
    {
        FreeList& list = lists_[kind];
        auto* const buffer = static_cast<std::byte*>(list.blocks.pop());
        if (buffer == nullptr)
            return nullptr;
        --list.count;
        EVMALLOC_UNPOISON(buffer, list_bytes(kind));
        return buffer;
    }

    void push_buffer(std::size_t kind, std::byte* buffer) noexcept
    {
        FreeList& list = lists_[kind];
        EVMALLOC_POISON(buffer, list_bytes(kind));
        list.blocks.push(buffer);
        ++list.count;
    }

    // A free Memory: one with storage (the one released last) if any, else one without.
    MemorySlot* pop_memory() noexcept
    {
        auto* slot = static_cast<MemorySlot*>(warm_memories_.pop());
        if (slot != nullptr) [[likely]]
        {
            --warm_count_;
            memory_bytes_retained_ -= slot->memory.capacity();
        }
        else
        {
            slot = static_cast<MemorySlot*>(bare_memories_.pop());
            if (slot == nullptr)
                return nullptr;
        }
        --retained_memories_;
        return slot;
    }

    // Clears a released Memory and keeps it: with its storage when that fits the budget (or
    // make_room() makes it fit), else without.
    void push_memory(MemorySlot* slot) noexcept
    {
        Memory& m = slot->memory;
        m.clear();
        const std::size_t capacity = m.capacity();
        if (capacity != 0 && (capacity <= config_.memory_retain_bytes - memory_bytes_retained_ ||
                                 make_room(capacity)))
        {
            warm_memories_.push(slot);
            ++warm_count_;
            memory_bytes_retained_ += capacity;
        }
        else
        {
            m.release_storage();
            bare_memories_.push(slot);
        }
        ++retained_memories_;
    }

    // Room in the budget for a Memory of `capacity` bytes, taken from the free ones on top of
    // the list while they are smaller: when dropping their storage makes room, they drop it
    // (they stay, without storage) and the answer is true; otherwise nothing changes. Walks
    // only the Memory objects it would take.
    [[gnu::noinline]] bool make_room(std::size_t capacity) noexcept
    {
        if (capacity > config_.memory_retain_bytes)
            return false;
        std::size_t room = config_.memory_retain_bytes - memory_bytes_retained_;
        std::size_t taken = 0;
        for (void* p = warm_memories_.head(); room < capacity; p = warm_memories_.next(p), ++taken)
        {
            if (p == nullptr || static_cast<MemorySlot*>(p)->memory.capacity() >= capacity)
                return false;
            room += static_cast<MemorySlot*>(p)->memory.capacity();
        }
        for (; taken != 0; --taken)
        {
            auto* const slot = static_cast<MemorySlot*>(warm_memories_.pop());
            --warm_count_;
            memory_bytes_retained_ -= slot->memory.capacity();
            slot->memory.release_storage();
            bare_memories_.push(slot);
        }
        return true;
    }

    // Gives back the free buffers of `kind` beyond the first `keep` (the most recently released
    // ones stay: they are the warm ones).
    void free_buffers(std::size_t kind, std::size_t keep) noexcept
    {
        FreeList& list = lists_[kind];
        if (list.count <= keep)
            return;
        const std::size_t bytes = list_bytes(kind);
        list.count -= list.blocks.trim(keep, [&](void* buffer) noexcept {
            EVMALLOC_UNPOISON(buffer, bytes);
            upstream_.deallocate(buffer, bytes, buffer_alignment);
        });
        EVMALLOC_ASSERT(list.count == keep);
    }

    // Gives back the free Memory objects (and their storage) beyond `keep`: those without
    // storage go first, then those with storage released longest ago.
    void free_memories(std::size_t keep) noexcept
    {
        if (retained_memories_ <= keep)
            return;
        const auto dispose = [&](void* p) noexcept {
            auto* const slot = static_cast<MemorySlot*>(p);
            memory_bytes_retained_ -= slot->memory.capacity();
            slot->~MemorySlot();
            upstream_.deallocate(slot, sizeof(MemorySlot), alignof(MemorySlot));
        };
        const std::size_t keep_warm = keep < warm_count_ ? keep : warm_count_;
        retained_memories_ -= bare_memories_.trim(keep - keep_warm, dispose);
        const std::size_t dropped = warm_memories_.trim(keep_warm, dispose);
        warm_count_ -= dropped;
        retained_memories_ -= dropped;
    }

    Upstream upstream_;
    FramePoolConfig config_;
    std::array<FreeList, list_count> lists_{};
    detail::IntrusiveFreeList<LinkAtNext> warm_memories_;  // free, with storage
    detail::IntrusiveFreeList<LinkAtNext> bare_memories_;  // free, without storage
    std::size_t warm_count_ = 0;
    std::size_t retained_memories_ = 0;      // on both lists
    std::size_t memory_bytes_retained_ = 0;  // the capacity of warm_memories_
    std::size_t active_ = 0;
    std::size_t peak_active_ = 0;
    std::size_t buffers_allocated_ = 0;
};
}  // namespace evmalloc
