// evmalloc: the transaction arena, a monotonic resource over chunks from upstream.
//
// Transaction-scoped data (logs, return data, the journal) lives exactly as long as the
// transaction, so it is bump-allocated here and freed all at once by reset() between
// transactions. The first chunk is taken at construction and kept across resets, so a
// transaction that fits it costs no upstream call at all; when a transaction needs more,
// further chunks come from upstream, each twice the size of the one before (at least large
// enough for the request), and reset() gives them back.
//
// A chunk starts with its ChunkHeader; the bytes after it are handed out front to back.
// Deallocation does nothing. Under ASan the unused part of every chunk is poisoned. A
// FallibleResource (upstream.hpp): try_allocate() returns nullptr where allocate_bytes() and
// the std::pmr face throw std::bad_alloc (the upstream failed, or the request is too large).
//
// Invariant: chunk_begin_ <= cursor_ <= chunk_end_ inside the newest chunk (head_);
// [cursor_, chunk_end_) is poisoned; used_before_ is what older chunks handed out.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <new>
#include <utility>

#include "allocation.hpp"
#include "config.hpp"
#include "intrusive_list.hpp"
#include "monotonic_arena.hpp"
#include "sanitizer.hpp"
#include "upstream.hpp"

namespace evmalloc
{
class TransactionArena : public FallibleResource
{
public:
    /// Placed at the start of every chunk taken from upstream.
    struct ChunkHeader
    {
        ChunkHeader* previous;  ///< the chunk taken before this one, nullptr for the oldest
        std::size_t size;       ///< bytes of the whole chunk, header included
    };

    /// The alignment chunks are requested with (a cache line).
    static constexpr std::size_t chunk_alignment = 64;
    /// The smallest chunk taken when growing (and the first one if none is kept).
    static constexpr std::size_t min_chunk_size = 4096;

    /// Takes a first chunk of `first_chunk_size` bytes now (none when 0); reset() keeps it.
    /// \throws std::bad_alloc when upstream cannot provide the first chunk.
    explicit TransactionArena(
        std::size_t first_chunk_size, Upstream upstream = std::pmr::new_delete_resource())
      : upstream_{upstream}
    {
        if (first_chunk_size > 0)
        {
            if (!add_chunk(std::max(first_chunk_size, sizeof(ChunkHeader) + 1)))
                detail::throw_bad_alloc(detail::upstream_failed);
            first_ = head_;
        }
        next_size_ = initial_growth();
    }

    TransactionArena(const TransactionArena&) = delete;
    TransactionArena& operator=(const TransactionArena&) = delete;

    /// Every chunk goes back to upstream.
    ~TransactionArena() override { release_chunks(nullptr); }

    /// The typed fast path: `bytes` aligned to `alignment`.
    /// \requires alignment is a power of two.
    /// \throws std::bad_alloc when upstream cannot provide a new chunk (the arena is unchanged).
    [[nodiscard]] void* allocate_bytes(std::size_t bytes, std::size_t alignment)
    {
        void* const p = try_allocate(bytes, alignment);
        if (p == nullptr) [[unlikely]]
            detail::throw_bad_alloc(detail::upstream_failed);
        return p;
    }

    /// As allocate_bytes(), but nullptr (the arena unchanged) where it would throw.
    [[nodiscard]] void* try_allocate(std::size_t bytes, std::size_t alignment) noexcept
    {
        EVMALLOC_ASSERT(std::has_single_bit(alignment));
        // With no chunk yet, cursor_ and chunk_end_ are nullptr and every request (a zero-byte
        // one too: it would return nullptr) takes the new-chunk path.
        void* const p = detail::bump(cursor_, chunk_end_, bytes, alignment);
        if (p == nullptr) [[unlikely]]
            return allocate_in_new_chunk(bytes, alignment);
        EVMALLOC_UNPOISON(p, bytes);
        return p;
    }

    /// Frees everything at once: chunks other than the first go back upstream, the first is
    /// kept for the next transaction. No destructors run.
    void reset() noexcept
    {
        release_chunks(first_);
        head_ = first_;
        used_before_ = 0;
        next_size_ = initial_growth();
        if (first_ != nullptr)
        {
            enter(first_);
            EVMALLOC_POISON(cursor_, static_cast<std::size_t>(chunk_end_ - cursor_));
        }
        else
            cursor_ = chunk_begin_ = chunk_end_ = nullptr;
    }

    /// Bytes handed out since the last reset (alignment padding and chunk tails left unused
    /// when a request moved on to a new chunk included).
    [[nodiscard]] std::size_t used() const noexcept
    {
        return used_before_ + static_cast<std::size_t>(cursor_ - chunk_begin_);
    }
    /// Bytes held from upstream, chunk headers included.
    [[nodiscard]] std::size_t reserved() const noexcept { return reserved_; }
    /// Chunks held from upstream.
    [[nodiscard]] std::size_t chunk_count() const noexcept { return chunks_; }
    /// Bytes of the chunk reset() keeps (0 when none is kept).
    [[nodiscard]] std::size_t retained_size() const noexcept
    {
        return first_ != nullptr ? first_->size : 0;
    }
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept
    {
        return upstream_.resource();
    }

    /// True when `p` lies inside a chunk's usable bytes (their end included).
    [[nodiscard]] bool owns(const void* p) const noexcept
    {
        const auto usable = [](const ChunkHeader* c) noexcept {
            const auto start = reinterpret_cast<std::uintptr_t>(c);
            return std::pair{start + sizeof(ChunkHeader), start + c->size + 1};  // the end counts
        };
        return detail::find_chunk(
                   static_cast<const ChunkHeader*>(head_), p,
                   [](const ChunkHeader* c) noexcept { return c->previous; }, usable) != nullptr;
    }

protected:
    void* do_try_allocate(std::size_t bytes, std::size_t alignment) noexcept final
    {
        return try_allocate(bytes, alignment);
    }

    void* do_allocate(std::size_t bytes, std::size_t alignment) final
    {
        return allocate_bytes(bytes, alignment);
    }

    /// Monotonic: memory comes back only with reset().
    void do_deallocate(void* p, std::size_t, std::size_t) final
    {
        EVMALLOC_ASSERT_MSG(p == nullptr || owns(p),
            "TransactionArena: deallocation of a pointer it did not hand out");
    }

    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept final
    {
        return this == &other;
    }

private:
    std::size_t initial_growth() const noexcept
    {
        const std::size_t first = retained_size();
        if (first > std::numeric_limits<std::size_t>::max() / 2)
            return first;
        return std::max(min_chunk_size, first * 2);
    }

    void enter(ChunkHeader* c) noexcept
    {
        chunk_begin_ = reinterpret_cast<std::byte*>(c + 1);
        chunk_end_ = reinterpret_cast<std::byte*>(c) + c->size;
        cursor_ = chunk_begin_;
    }

    /// Takes a chunk of `size` bytes from upstream and makes it the current one.
    /// \returns false, nothing changed, when upstream fails.
    bool add_chunk(std::size_t size) noexcept
    {
        void* const raw = upstream_.try_allocate(size, chunk_alignment);
        if (raw == nullptr) [[unlikely]]
            return false;
        auto* c = ::new (raw) ChunkHeader{head_, size};
        if (head_ != nullptr)
            used_before_ += static_cast<std::size_t>(cursor_ - chunk_begin_);
        head_ = c;
        reserved_ += size;
        ++chunks_;
        enter(c);
        EVMALLOC_POISON(chunk_begin_, static_cast<std::size_t>(chunk_end_ - chunk_begin_));
        return true;
    }

    /// A new chunk that holds the request, and the request from it; nullptr (nothing changed)
    /// when the request is too large or upstream fails.
    [[gnu::noinline]] void* allocate_in_new_chunk(std::size_t bytes, std::size_t alignment) noexcept
    {
        constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
        const std::size_t overhead = sizeof(ChunkHeader) + alignment;
        if (bytes > max - overhead - min_chunk_size) [[unlikely]]
            return nullptr;
        const std::size_t needed = align_up(bytes + overhead, min_chunk_size);
        const std::size_t size = std::max(next_size_, needed);
        if (!add_chunk(size)) [[unlikely]]
            return nullptr;
        if (next_size_ <= max / 2)
            next_size_ *= 2;
        void* const p = detail::bump(cursor_, chunk_end_, bytes, alignment);  // fits: sized for it
        EVMALLOC_UNPOISON(p, bytes);
        return p;
    }

    /// Gives every chunk newer than `keep` back to upstream (all of them when keep is nullptr).
    void release_chunks(ChunkHeader* keep) noexcept
    {
        ChunkHeader* c = head_;
        while (c != keep && c != nullptr)
        {
            ChunkHeader* const previous = c->previous;
            const std::size_t size = c->size;
            EVMALLOC_UNPOISON(c, size);
            reserved_ -= size;
            --chunks_;
            upstream_.deallocate(c, size, chunk_alignment);
            c = previous;
        }
        if (keep == nullptr)
            head_ = nullptr;
    }

    Upstream upstream_;
    ChunkHeader* head_ = nullptr;   ///< the newest chunk
    ChunkHeader* first_ = nullptr;  ///< the chunk reset() keeps, if any
    std::byte* chunk_begin_ = nullptr;
    std::byte* cursor_ = nullptr;
    std::byte* chunk_end_ = nullptr;
    std::size_t used_before_ = 0;
    std::size_t reserved_ = 0;
    std::size_t chunks_ = 0;
    std::size_t next_size_ = min_chunk_size;
};
}  // namespace evmalloc
