// evmalloc: the pool engine shared by ObjectPool and BufferPool.
//
// A SlotPool hands out fixed-size, fixed-alignment slots. Free slots form a LIFO list threaded
// through the slots themselves (the slot released last is handed out first, still warm in
// cache); the link sits in a free slot's first bytes, or, in slots of a multiple of 4 KiB, on
// a cache line that varies from slot to slot, so that the links do not all share one L1 set. Memory comes from an upstream std::pmr::memory_resource in chunks that grow
// geometrically: each chunk holds twice the slots of the one before. A new chunk is carved
// lazily, one slot per request, so growing never touches memory nobody asked for yet.
// acquire() throws std::bad_alloc when the pool must grow and upstream fails; acquire_or_null()
// returns nullptr instead.
//
//   chunk:  [ slot 0 | slot 1 | ... | slot n-1 | ChunkHeader | debug bitmap (debug builds) ]
//
// The fast path (acquire/release) is inline and only pops or pushes the free list; carving and
// growth live in one out-of-line slow path. Every chunk goes back upstream in the destructor.
//
// SlotPoolResource is the std::pmr face built on the engine: requests whose size and alignment
// fit a slot come from the pool, every other request goes to upstream, and deallocation applies
// the same (size, alignment) rule, so it never guesses by pointer. It is a FallibleResource:
// try_allocate() is the same rule with nullptr for a failure (upstream.hpp).
//
// Debug builds (enable_asserts) keep one "in use" bit per slot: a double release, or a release
// of a pointer the pool never handed out, is reported through the assertion handler and
// aborts; slots still in use when the pool is destroyed are reported (a leak) and the pool's
// memory goes back all the same. Under AddressSanitizer free and not-yet-carved slots are
// poisoned.
//
// Not thread-safe: one pool per thread, or Synchronized<> for what must be shared.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <new>
#include <utility>

#include "allocation.hpp"
#include "config.hpp"
#include "intrusive_list.hpp"
#include "sanitizer.hpp"
#include "upstream.hpp"

namespace evmalloc
{
namespace detail
{
/// Sits right after the slots of each chunk. Two words, no padding.
struct ChunkHeader
{
    ChunkHeader* next;       ///< the chunk allocated before this one, or nullptr
    std::size_t slot_count;  ///< slots in this chunk
};
static_assert(sizeof(ChunkHeader) == sizeof(void*) + sizeof(std::size_t));
}  // namespace detail

/// Slots of `Size` bytes aligned to `Align`, rounded up so that a free slot can hold the
/// free-list link: slot_size >= sizeof(void*), slot_alignment >= alignof(void*).
template <std::size_t Size, std::size_t Align>
class SlotPool
{
    static_assert(std::has_single_bit(Align), "slot alignment must be a power of two");

public:
    static constexpr std::size_t slot_alignment = Align > alignof(void*) ? Align : alignof(void*);
    static constexpr std::size_t slot_size =
        align_up(Size > sizeof(void*) ? Size : sizeof(void*), slot_alignment);
    /// Slots in the first chunk when no initial capacity is asked for: about 4 KiB, at least 8.
    static constexpr std::size_t default_first_chunk =
        (4096 - sizeof(detail::ChunkHeader)) / slot_size > 8
            ? (4096 - sizeof(detail::ChunkHeader)) / slot_size
            : 8;

    /// True when a free slot's link moves with the slot (see link_of): slots of a multiple of
    /// 4 KiB. Smaller slots keep it at offset 0.
    static constexpr bool spread_links = slot_size % 4096 == 0;

    /// Takes `initial_capacity` slots from upstream now (none when 0); the first chunk
    /// allocated later holds `default_first_chunk` slots.
    /// \requires upstream is not null and outlives the pool.
    /// \throws std::bad_alloc when upstream fails the initial chunk.
    explicit SlotPool(Upstream upstream, std::size_t initial_capacity = 0)
      : upstream_{upstream},
        next_chunk_slots_{initial_capacity != 0 ? initial_capacity : default_first_chunk}
    {
        EVMALLOC_ASSERT(upstream.resource() != nullptr);
        if (initial_capacity != 0 && !grow())
            detail::throw_bad_alloc(detail::upstream_failed);
    }

    SlotPool(const SlotPool&) = delete;
    SlotPool& operator=(const SlotPool&) = delete;

    /// Returns every chunk to upstream. Slots still in use are a caller bug (reported in debug
    /// builds); their memory goes back all the same.
    ~SlotPool()
    {
        if constexpr (enable_asserts)
        {
            if (in_use_ != 0)
                EVMALLOC_REPORT("pool destroyed with slots still in use");
        }
        detail::ChunkHeader* chunk = chunks_;
        while (chunk != nullptr)
        {
            detail::ChunkHeader* const next = chunk->next;
            const std::size_t count = chunk->slot_count;
            std::byte* const base = chunk_base(chunk);
            EVMALLOC_UNPOISON(base, count * slot_size);
            upstream_.deallocate(base, chunk_bytes(count), slot_alignment);
            chunk = next;
        }
    }

    /// One slot, uninitialised, aligned to slot_alignment.
    /// \throws std::bad_alloc when the pool must grow and upstream fails; nothing changes then.
    [[nodiscard]] void* acquire()
    {
        void* const slot = acquire_or_null();
        if (slot == nullptr) [[unlikely]]
            detail::throw_bad_alloc(detail::upstream_failed);
        return slot;
    }

    /// As acquire(), but nullptr when the pool must grow and upstream fails (nothing changes).
    [[nodiscard]] void* acquire_or_null() noexcept
    {
        void* const slot = try_acquire();
        if (slot == nullptr) [[unlikely]]
            return acquire_slow();
        return slot;
    }

    /// The slot released last, or nullptr when no released slot is waiting (then acquire()
    /// would carve or grow). Never goes upstream.
    [[nodiscard]] void* try_acquire() noexcept
    {
        void* const slot = free_.pop();
        if (slot == nullptr) [[unlikely]]
            return nullptr;
        EVMALLOC_UNPOISON(slot, slot_size);
        ++in_use_;
        if constexpr (enable_asserts)
            set_in_use(slot, true);
        return slot;
    }

    /// Gives a slot back; it is the next one handed out.
    /// \requires p came from acquire() of this pool and is not released yet (checked in debug
    /// builds: a bad release is reported and aborts).
    void release(void* p) noexcept
    {
        if constexpr (enable_asserts)
        {
            check_release(p);
            set_in_use(p, false);
        }
        free_.push(p);
        --in_use_;
        EVMALLOC_POISON(p, slot_size);
    }

    /// Debug builds: unless `p` is a slot of this pool that is in use, reports why not and
    /// aborts. Release builds: checks nothing.
    void check_release(const void* p) const noexcept
    {
        if constexpr (enable_asserts)
        {
            const Location at = locate(p);
            EVMALLOC_ASSERT_MSG(
                at.chunk != nullptr, "release of a pointer the pool never handed out");
            EVMALLOC_ASSERT_MSG(is_in_use(at), "double release: the slot is not in use");
        }
        static_cast<void>(p);
    }

    /// True when `p` is the start of a slot in one of this pool's chunks (in use or not).
    /// Walks the chunk list: for checks, not for hot paths.
    [[nodiscard]] bool owns(const void* p) const noexcept { return locate(p).chunk != nullptr; }

    /// Slots owned (in use or free).
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    /// Slots handed out and not released.
    [[nodiscard]] std::size_t in_use() const noexcept { return in_use_; }
    /// Slots owned and not handed out.
    [[nodiscard]] std::size_t available() const noexcept { return capacity_ - in_use_; }
    /// in_use() / capacity(), 0 for a pool that owns nothing.
    [[nodiscard]] double utilization() const noexcept
    {
        return evmalloc::utilization(in_use_, capacity_);
    }
    /// Bytes taken from upstream so far (chunk headers included).
    [[nodiscard]] std::size_t bytes_reserved() const noexcept { return bytes_reserved_; }
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept
    {
        return upstream_.resource();
    }
    /// The upstream as the pool holds it (with the way it fails).
    [[nodiscard]] const Upstream& upstream_handle() const noexcept { return upstream_; }

private:
    // Invariants:
    //   free_ is a list of released slots, each poisoned; the link sits at link_of(slot) (the
    //   slot's first bytes, except in slots of a multiple of 4 KiB).
    //   [fresh_, fresh_end_) is the not-yet-carved tail of the newest chunk, poisoned.
    //   capacity_ = sum of slot_count over chunks_;
    //   in_use_ = capacity_ - (free list length) - (fresh_end_ - fresh_) / slot_size.

    /// Where a free slot keeps the free-list link. Slots of a multiple of 4 KiB lie a multiple
    /// of 4 KiB apart, so the same offset in each falls in the same L1 set (a set is chosen
    /// by address bits 6..11): a batch of 64 such slots would keep all 64 links in one set,
    /// more lines than it has ways. Their link sits instead on cache line (address / slot_size)
    /// % 64 of the slot, which differs between neighbouring slots: the links of 64 consecutive
    /// slots fall in 64 different sets. (Measured: 1 KiB slots, four per 4 KiB, gain nothing
    /// from it.)
    static void* link_of(void* slot) noexcept
    {
        if constexpr (spread_links)
        {
            const auto line = reinterpret_cast<std::uintptr_t>(slot) / slot_size % 64;
            return static_cast<std::byte*>(slot) + line * 64;
        }
        else
            return slot;
    }

    static constexpr std::size_t bitmap_words(std::size_t count) noexcept
    {
        return enable_asserts ? (count + 63) / 64 : 0;
    }
    static constexpr std::size_t max_slots =
        (SIZE_MAX - sizeof(detail::ChunkHeader)) / (slot_size + sizeof(std::uint64_t)) - 64;

    /// Bytes of a chunk of `count` slots. \requires count <= max_slots
    static constexpr std::size_t chunk_bytes(std::size_t count) noexcept
    {
        return count * slot_size + sizeof(detail::ChunkHeader) +
               bitmap_words(count) * sizeof(std::uint64_t);
    }
    static std::byte* chunk_base(detail::ChunkHeader* chunk) noexcept
    {
        return reinterpret_cast<std::byte*>(chunk) - chunk->slot_count * slot_size;
    }
    static std::uint64_t* chunk_bitmap(detail::ChunkHeader* chunk) noexcept
    {
        return reinterpret_cast<std::uint64_t*>(chunk + 1);
    }

    struct Location
    {
        detail::ChunkHeader* chunk;  ///< nullptr: not a slot of this pool
        std::size_t index;
    };

    Location locate(const void* p) const noexcept
    {
        detail::ChunkHeader* const chunk = detail::find_chunk(
            chunks_, p, [](detail::ChunkHeader* c) noexcept { return c->next; },
            [](detail::ChunkHeader* c) noexcept {
                return std::pair{reinterpret_cast<std::uintptr_t>(chunk_base(c)),
                    reinterpret_cast<std::uintptr_t>(c)};
            });
        if (chunk == nullptr)
            return {nullptr, 0};
        const std::size_t offset = reinterpret_cast<std::uintptr_t>(p) -
                                   reinterpret_cast<std::uintptr_t>(chunk_base(chunk));
        if (offset % slot_size != 0)
            return {nullptr, 0};
        return {chunk, offset / slot_size};
    }

    static bool is_in_use(Location at) noexcept
    {
        return ((chunk_bitmap(at.chunk)[at.index / 64] >> (at.index % 64)) & 1U) != 0;
    }

    void set_in_use(const void* p, bool value) noexcept
    {
        const Location at = locate(p);
        EVMALLOC_ASSERT(at.chunk != nullptr);
        if (at.chunk == nullptr)
            return;
        std::uint64_t& word = chunk_bitmap(at.chunk)[at.index / 64];
        const std::uint64_t bit = std::uint64_t{1} << (at.index % 64);
        word = value ? (word | bit) : (word & ~bit);
    }

    /// The free list is empty: carve the next slot of the newest chunk, growing first if it
    /// is used up. nullptr (nothing changed) when growing fails.
    [[gnu::noinline]] void* acquire_slow() noexcept
    {
        if (fresh_ == fresh_end_ && !grow()) [[unlikely]]
            return nullptr;
        void* const slot = fresh_;
        fresh_ += slot_size;
        EVMALLOC_UNPOISON(slot, slot_size);
        ++in_use_;
        if constexpr (enable_asserts)
            set_in_use(slot, true);
        return slot;
    }

    /// Takes a chunk of next_chunk_slots_ slots from upstream. \returns false, with every
    /// member as it was, when upstream fails (or the size would overflow).
    bool grow() noexcept
    {
        const std::size_t count = next_chunk_slots_;
        if (count > max_slots) [[unlikely]]
            return false;
        const std::size_t bytes = chunk_bytes(count);
        auto* const base = static_cast<std::byte*>(upstream_.try_allocate(bytes, slot_alignment));
        if (base == nullptr) [[unlikely]]
            return false;

        auto* const chunk = ::new (base + count * slot_size) detail::ChunkHeader{chunks_, count};
        if constexpr (enable_asserts)
            std::memset(chunk_bitmap(chunk), 0, bitmap_words(count) * sizeof(std::uint64_t));
        EVMALLOC_POISON(base, count * slot_size);

        chunks_ = chunk;
        fresh_ = base;
        fresh_end_ = base + count * slot_size;
        capacity_ += count;
        bytes_reserved_ += bytes;
        next_chunk_slots_ = count <= max_slots / 2 ? count * 2 : max_slots;
        return true;
    }

    /// Where the free list keeps a free slot's link: link_of.
    struct SlotLink
    {
        static void* link(void* slot) noexcept { return link_of(slot); }
    };

    detail::IntrusiveFreeList<SlotLink> free_;
    std::byte* fresh_ = nullptr;
    std::byte* fresh_end_ = nullptr;
    std::size_t in_use_ = 0;
    std::size_t capacity_ = 0;
    detail::ChunkHeader* chunks_ = nullptr;
    Upstream upstream_;
    std::size_t next_chunk_slots_;
    std::size_t bytes_reserved_ = 0;
};

/// The std::pmr face shared by ObjectPool and BufferPool: a SlotPool plus the rule
/// "fits a slot (size <= slot_size and alignment <= slot_alignment) → pool, else → upstream",
/// applied identically on allocate and deallocate.
template <std::size_t Size, std::size_t Align>
class SlotPoolResource : public FallibleResource
{
public:
    using Engine = SlotPool<Size, Align>;
    static constexpr std::size_t slot_size = Engine::slot_size;
    static constexpr std::size_t slot_alignment = Engine::slot_alignment;

    /// True when a pmr request of this size and alignment is served by the pool.
    [[nodiscard]] static constexpr bool fits(std::size_t bytes, std::size_t alignment) noexcept
    {
        return bytes <= slot_size && alignment <= slot_alignment;
    }

    SlotPoolResource(const SlotPoolResource&) = delete;
    SlotPoolResource& operator=(const SlotPoolResource&) = delete;
    ~SlotPoolResource() override = default;

    /// A released slot (the one released last) without growing: nullptr when none is waiting.
    /// For callers that must not throw, or that take their own slow path when it is nullptr.
    [[nodiscard]] void* try_acquire() noexcept { return slots_.try_acquire(); }
    /// A slot, growing the pool when no released one is waiting; nullptr when upstream fails
    /// (nothing changes then).
    [[nodiscard]] void* acquire_or_null() noexcept { return slots_.acquire_or_null(); }

    [[nodiscard]] std::size_t capacity() const noexcept { return slots_.capacity(); }
    [[nodiscard]] std::size_t in_use() const noexcept { return slots_.in_use(); }
    [[nodiscard]] std::size_t available() const noexcept { return slots_.available(); }
    [[nodiscard]] double utilization() const noexcept { return slots_.utilization(); }
    [[nodiscard]] std::size_t bytes_reserved() const noexcept { return slots_.bytes_reserved(); }
    /// Where chunks, and requests that do not fit a slot, come from.
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept { return slots_.upstream(); }
    /// True when `p` is a slot of this pool. Walks the chunk list: for checks only.
    [[nodiscard]] bool owns(const void* p) const noexcept { return slots_.owns(p); }

protected:
    SlotPoolResource(Upstream upstream, std::size_t initial_capacity)
      : slots_{upstream, initial_capacity}
    {}

    /// nullptr when the pool must grow, or the forwarded request fails, upstream.
    void* do_try_allocate(std::size_t bytes, std::size_t alignment) noexcept final
    {
        if (fits(bytes, alignment)) [[likely]]
            return slots_.acquire_or_null();
        return slots_.upstream_handle().try_allocate(bytes, alignment);
    }

    /// \throws std::bad_alloc when the pool must grow, or the forwarded request fails, upstream.
    void* do_allocate(std::size_t bytes, std::size_t alignment) final
    {
        if (void* p = SlotPoolResource::do_try_allocate(bytes, alignment)) [[likely]]
            return p;
        detail::throw_bad_alloc(detail::upstream_failed);
    }

    /// \requires (bytes, alignment) are those p was allocated with.
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) final
    {
        if (fits(bytes, alignment)) [[likely]]
            slots_.release(p);
        else
            slots_.upstream()->deallocate(p, bytes, alignment);
    }

    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept final
    {
        return this == &other;
    }

    Engine slots_;
};
}  // namespace evmalloc
