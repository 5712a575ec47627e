// evmalloc: singly linked lists threaded through the memory they list.
//
// Two shapes recur in the pools and arenas, and are written here once:
//   IntrusiveFreeList  a LIFO list of free blocks whose link lives inside each free block, so
//                      that pushing and popping never allocate: push, pop, and trim to keep
//                      the most recently pushed few.
//   find_chunk         the walk over a list of chunks that answers "which chunk holds this
//                      address?" (the owns() checks; for debug checks, not hot paths).
// Both are implementation pieces (namespace detail), not part of the public interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sanitizer.hpp"

namespace evmalloc::detail
{
/// Where a free block keeps its link: its first pointer-sized bytes.
struct LinkAtStart
{
    static void* link(void* block) noexcept { return block; }
};

/// A LIFO list of free blocks (the block pushed last is popped first: still warm in cache).
/// Each block on the list stores the address of the next one at LinkOf::link(block), a
/// pointer-sized field written and read with memcpy, so a block needs no particular type.
/// While a block is on the list its link bytes are poisoned (under AddressSanitizer; nothing
/// otherwise): push() poisons them, pop() and trim() unpoison them to read the link. What the
/// caller poisons beyond the link is its own business.
/// Invariant: head() is nullptr or a block pushed and not yet popped; the chain of links from
/// it ends in nullptr.
template <class LinkOf = LinkAtStart>
class IntrusiveFreeList
{
public:
    IntrusiveFreeList() noexcept = default;
    IntrusiveFreeList(const IntrusiveFreeList&) = delete;
    IntrusiveFreeList& operator=(const IntrusiveFreeList&) = delete;

    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
    /// The block pop() would return, or nullptr.
    [[nodiscard]] void* head() const noexcept { return head_; }

    /// Puts `block` on top. \requires block is not on the list, and its link bytes
    /// (sizeof(void*) at LinkOf::link(block)) are writable.
    void push(void* block) noexcept
    {
        write_link(block, head_);
        head_ = block;
    }

    /// Takes the top block off, its link bytes unpoisoned; nullptr when the list is empty.
    [[nodiscard]] void* pop() noexcept
    {
        void* const block = head_;
        if (block == nullptr) [[unlikely]]
            return nullptr;
        head_ = take_link(block);
        return block;
    }

    /// The block below `block` on the list (pushed before it), or nullptr: for a walk that
    /// leaves the list as it is. \requires block is on the list.
    [[nodiscard]] static void* next(void* block) noexcept { return peek_link(block); }

    /// Keeps the `keep` blocks pushed last and takes every other block off the list, calling
    /// dispose(block) on each, top to bottom (the block already off the list, its link bytes
    /// unpoisoned). \returns the number of blocks disposed of.
    template <class Dispose>
    std::size_t trim(std::size_t keep, Dispose&& dispose) noexcept
    {
        void* last_kept = nullptr;
        void* block = head_;
        for (std::size_t n = 0; n < keep && block != nullptr; ++n)
        {
            last_kept = block;
            block = peek_link(block);
        }
        if (last_kept == nullptr)
            head_ = nullptr;
        else
            write_link(last_kept, nullptr);
        std::size_t disposed = 0;
        while (block != nullptr)
        {
            void* const next = take_link(block);
            dispose(block);
            block = next;
            ++disposed;
        }
        return disposed;
    }

private:
    /// Stores `next` as block's link, and poisons the link bytes.
    static void write_link(void* block, void* next) noexcept
    {
        void* const link = LinkOf::link(block);
        EVMALLOC_UNPOISON(link, sizeof(void*));
        std::memcpy(link, &next, sizeof(void*));
        EVMALLOC_POISON(link, sizeof(void*));
    }
    /// Block's link, its bytes left unpoisoned (the block is leaving the list).
    static void* take_link(void* block) noexcept
    {
        void* const link = LinkOf::link(block);
        EVMALLOC_UNPOISON(link, sizeof(void*));
        void* next;
        std::memcpy(&next, link, sizeof(void*));
        return next;
    }
    /// Block's link, its bytes poisoned again (the block stays on the list).
    static void* peek_link(void* block) noexcept
    {
        void* const next = take_link(block);
        EVMALLOC_POISON(LinkOf::link(block), sizeof(void*));
        return next;
    }

    void* head_ = nullptr;
};

/// True when address `a` lies in [first, last).
[[nodiscard]] constexpr bool in_range(
    std::uintptr_t a, std::uintptr_t first, std::uintptr_t last) noexcept
{
    return a >= first && a < last;
}

/// The first chunk, walking from `head` through next(chunk), whose address range holds `p`;
/// nullptr when none does. range(chunk) returns the chunk's range as integer addresses
/// {first, last}, last excluded (a caller that counts the end as inside passes end + 1).
template <class Chunk, class Next, class Range>
[[nodiscard]] Chunk* find_chunk(Chunk* head, const void* p, Next next, Range range) noexcept
{
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    for (Chunk* c = head; c != nullptr; c = next(c))
    {
        const auto [first, last] = range(c);
        if (in_range(a, first, last))
            return c;
    }
    return nullptr;
}
}  // namespace evmalloc::detail
