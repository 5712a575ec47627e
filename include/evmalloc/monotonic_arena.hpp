// evmalloc: a bump allocator over one caller-provided buffer.
//
// Allocation moves a cursor forward, honouring alignment; deallocation does nothing; reset()
// takes everything back at once. It never goes upstream: a request that does not fit is
// nullptr from try_allocate() (it is a FallibleResource, upstream.hpp) and std::bad_alloc
// through the std::pmr face. Under ASan the
// unused tail is poisoned, so touching memory the arena has not handed out is a report.
//
// Invariant: begin_ <= cursor_ <= end_; [cursor_, end_) is poisoned.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <span>

#include "config.hpp"
#include "intrusive_list.hpp"
#include "sanitizer.hpp"
#include "upstream.hpp"

namespace evmalloc
{
namespace detail
{
/// The bump step: `bytes` at `alignment` from `cursor`, which moves past them; nullptr (and
/// `cursor` unchanged) when they do not fit before `end`. \requires alignment is a power of two.
[[nodiscard]] inline void* bump(
    std::byte*& cursor, std::byte* end, std::size_t bytes, std::size_t alignment) noexcept
{
    const auto pad =
        static_cast<std::size_t>(-reinterpret_cast<std::uintptr_t>(cursor) & (alignment - 1));
    const auto left = static_cast<std::size_t>(end - cursor);
    if (pad > left || bytes > left - pad) [[unlikely]]
        return nullptr;
    std::byte* const p = cursor + pad;
    cursor = p + bytes;
    return p;
}
}  // namespace detail

class MonotonicArena : public FallibleResource
{
public:
    /// \requires `buffer` outlives the arena and every allocation from it.
    explicit MonotonicArena(std::span<std::byte> buffer) noexcept
      : begin_{buffer.data()}, cursor_{buffer.data()}, end_{buffer.data() + buffer.size()}
    {
        EVMALLOC_POISON(begin_, capacity());
    }

    MonotonicArena(const MonotonicArena&) = delete;
    MonotonicArena& operator=(const MonotonicArena&) = delete;

    /// Gives the whole buffer back to the caller unpoisoned.
    ~MonotonicArena() override { EVMALLOC_UNPOISON(begin_, capacity()); }

    /// The typed fast path: `bytes` aligned to `alignment`, or nullptr when it does not fit.
    /// \requires alignment is a power of two.
    [[nodiscard]] void* try_allocate(std::size_t bytes, std::size_t alignment) noexcept
    {
        EVMALLOC_ASSERT(std::has_single_bit(alignment));
        void* const p = detail::bump(cursor_, end_, bytes, alignment);
        if (p != nullptr) [[likely]]
            EVMALLOC_UNPOISON(p, bytes);
        return p;
    }

    /// Takes back everything handed out so far (no destructors run).
    void reset() noexcept
    {
        cursor_ = begin_;
        EVMALLOC_POISON(begin_, capacity());
    }

    [[nodiscard]] std::size_t used() const noexcept
    {
        return static_cast<std::size_t>(cursor_ - begin_);
    }
    [[nodiscard]] std::size_t remaining() const noexcept
    {
        return static_cast<std::size_t>(end_ - cursor_);
    }
    [[nodiscard]] std::size_t capacity() const noexcept
    {
        return static_cast<std::size_t>(end_ - begin_);
    }
    [[nodiscard]] std::byte* data() const noexcept { return begin_; }

    /// True when `p` lies in [data(), data() + capacity()]: the end counts, since a
    /// zero-byte allocation may sit there.
    [[nodiscard]] bool owns(const void* p) const noexcept
    {
        return detail::in_range(reinterpret_cast<std::uintptr_t>(p),
            reinterpret_cast<std::uintptr_t>(begin_), reinterpret_cast<std::uintptr_t>(end_) + 1);
    }

protected:
    void* do_try_allocate(std::size_t bytes, std::size_t alignment) noexcept final
    {
        return try_allocate(bytes, alignment);
    }

    /// \throws std::bad_alloc when the request does not fit what is left.
    void* do_allocate(std::size_t bytes, std::size_t alignment) final
    {
        if (void* p = try_allocate(bytes, alignment)) [[likely]]
            return p;
        detail::throw_bad_alloc("MonotonicArena: request does not fit what is left");
    }

    /// Monotonic: memory comes back only with reset().
    void do_deallocate(void* p, std::size_t, std::size_t) final
    {
        EVMALLOC_ASSERT(p == nullptr || owns(p));
    }

    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept final
    {
        return this == &other;
    }

private:
    std::byte* begin_;
    std::byte* cursor_;
    std::byte* end_;
};
}  // namespace evmalloc
