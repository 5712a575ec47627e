// evmalloc: the EVM stack over caller-provided storage.
//
// 1024 words (the EVM limit) in storage the frame carves for it; the library never zeroes it,
// a slot is written before it is read. One pointer moves: `top_` is one past the top item.
// Checked push()/pop() return Errc::stack_overflow / stack_underflow and change nothing on
// failure; the unchecked fast paths are for interpreters that check stack bounds once per
// basic block (as evmone's advanced interpreter does). They check nothing in release builds;
// in debug builds a violated precondition is reported through the assertion handler and the
// process aborts (config.hpp).
//
// A Stack is a view: copies share the storage, which the caller keeps alive.
//
// Invariant: bottom_ <= top_ <= end_, end_ - bottom_ == capacity (less only in a release
// build given storage that is too short: the checked push() then stops at its end; 0 for a
// default-constructed stack, which has no storage).
#pragma once

#include <cstddef>
#include <span>
#include <utility>

#include "allocation.hpp"
#include "config.hpp"
#include "result.hpp"
#include "traits.hpp"

namespace evmalloc
{
template <class W = Word>
class Stack
{
public:
    using value_type = W;

    /// The EVM stack limit, in words.
    static constexpr std::size_t capacity = 1024;

    /// The storage for 1024 words. Does not depend on the code size.
    [[nodiscard]] static constexpr Allocation calculate_allocation(
        std::size_t /*code_size*/) noexcept
    {
        return {capacity * sizeof(W), alignof(W), false};
    }

    /// A stack over no storage: push() says stack_overflow, pop() stack_underflow. What a frame
    /// that owns no buffer (moved from) holds.
    constexpr Stack() noexcept = default;

    /// An empty stack over `storage`. \requires storage.size() >= capacity, and `storage`
    /// outlives the stack. Storage is not zeroed.
    explicit Stack(std::span<W> storage) noexcept
      : bottom_{storage.data()},
        top_{storage.data()},
        end_{storage.data() + (storage.size() < capacity ? storage.size() : capacity)}
    {
        EVMALLOC_ASSERT(storage.size() >= capacity);
    }

    /// Pushes `w`. \returns Errc::stack_overflow when full (nothing changes).
    [[nodiscard]] Result<void> push(const W& w) noexcept
    {
        if (top_ == end_) [[unlikely]]
            return Errc::stack_overflow;
        *top_++ = w;
        return {};
    }

    /// Pops the top item. \returns Errc::stack_underflow when empty (nothing changes).
    [[nodiscard]] Result<W> pop() noexcept
    {
        if (top_ == bottom_) [[unlikely]]
            return Errc::stack_underflow;
        return *--top_;
    }

    /// \requires size() < capacity
    void push_unchecked(const W& w) noexcept
    {
        EVMALLOC_ASSERT_MSG(top_ != end_, "push_unchecked on a full stack");
        *top_++ = w;
    }

    /// \requires !empty()
    W pop_unchecked() noexcept
    {
        EVMALLOC_ASSERT_MSG(top_ != bottom_, "pop_unchecked on an empty stack");
        return *--top_;
    }

    /// The top item. \requires !empty()
    [[nodiscard]] W& top() noexcept { return peek(0); }
    [[nodiscard]] const W& top() const noexcept { return const_cast<Stack*>(this)->peek(0); }

    /// The item `n` below the top (peek(0) is top()). \requires n < size()
    [[nodiscard]] W& peek(std::size_t n) noexcept
    {
        EVMALLOC_ASSERT_MSG(n < size(), "peek/top below the bottom of the stack");
        return *(top_ - 1 - n);
    }
    [[nodiscard]] const W& peek(std::size_t n) const noexcept
    {
        return const_cast<Stack*>(this)->peek(n);
    }

    /// EVM DUPn: pushes a copy of the n-th item (dup(1) duplicates the top).
    /// \requires 1 <= n <= 16, n <= size(), size() < capacity
    void dup(std::size_t n) noexcept
    {
        EVMALLOC_ASSERT_MSG(n >= 1 && n <= 16 && n <= size() && top_ != end_,
            "dup(n) needs 1 <= n <= 16, n items and a free slot");
        *top_ = *(top_ - n);
        ++top_;
    }

    /// EVM SWAPn: exchanges the top with the item n below it (swap(1) swaps the top two).
    /// \requires 1 <= n <= 16, n < size()
    void swap(std::size_t n) noexcept
    {
        EVMALLOC_ASSERT_MSG(
            n >= 1 && n <= 16 && n < size(), "swap(n) needs 1 <= n <= 16 and n + 1 items");
        using std::swap;
        swap(top_[-1], *(top_ - 1 - n));
    }

    [[nodiscard]] std::size_t size() const noexcept
    {
        return static_cast<std::size_t>(top_ - bottom_);
    }
    [[nodiscard]] bool empty() const noexcept { return top_ == bottom_; }

    /// Drops every item (the storage keeps its bytes).
    void clear() noexcept { top_ = bottom_; }

    /// The bottom of the storage: item i (0 = bottom) is data()[i].
    [[nodiscard]] W* data() const noexcept { return bottom_; }

private:
    W* bottom_ = nullptr;
    W* top_ = nullptr;
    W* end_ = nullptr;
};
}  // namespace evmalloc
