// evmone on evmalloc: the EVM memory and the stack of an evmone ExecutionState.
//
// evmone keeps one ExecutionState per call depth and reuses it. With evmone.patch its `memory`
// and `stack_space` members have the two types below. While a baseline call runs, both are
// bound to the call's evmalloc frame (evmalloc_frames.hpp): the stack is the frame's stack
// storage and the memory is the frame's evmalloc::Memory, grown gas-first. An ExecutionState
// used outside a frame (tests and benchmarks that build one by hand) uses storage of its own: a
// memory made on first use, and a stack of 1024 words taken when the state is made, as stock
// evmone's is (so that bottom(), read at every block of the advanced interpreter, is one load).
//
// Both keep evmone's interface (bottom(); operator[], data(), size(), clear(), grow()), so
// evmone's instructions are unchanged; operator[] and size() read cached copies, as cheap as
// evmone's own Memory.
#pragma once

#include "evmalloc_output.hpp"

#include <evmalloc/memory.hpp>
#include <intx/intx.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <utility>

namespace evmalloc_evmone
{
/// The EVM memory of one ExecutionState: evmone's Memory interface over an evmalloc::Memory,
/// the call's frame's while a call runs (bind), else one of its own.
class Memory
{
public:
    /// The limit of every evmalloc::Memory used here: evmone refuses any memory offset above
    /// 2^32 - 1 (instructions.hpp max_buffer_size), so the limit never refuses what gas pays for.
    static constexpr std::size_t limit = std::size_t{1} << 33;

    Memory() noexcept = default;
    Memory(const Memory&) = delete;
    Memory& operator=(const Memory&) = delete;

    Memory(Memory&& other) noexcept
      : data_{std::exchange(other.data_, empty_data())},
        size_{std::exchange(other.size_, 0)},
        bound_{std::exchange(other.bound_, nullptr)},
        own_{std::move(other.own_)}
    {}

    Memory& operator=(Memory&& other) noexcept
    {
        if (this != &other)
        {
            data_ = std::exchange(other.data_, empty_data());
            size_ = std::exchange(other.size_, 0);
            bound_ = std::exchange(other.bound_, nullptr);
            own_ = std::move(other.own_);
        }
        return *this;
    }

    ~Memory() = default;

    std::uint8_t& operator[](std::size_t index) noexcept { return data_[index]; }

    /// Never null.
    [[nodiscard]] const std::uint8_t* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    /// Charges, then grows (evmalloc's gas-first expand): makes the first `new_size` bytes
    /// addressable when `gas_left` pays for the expansion.
    /// \returns gas_left minus the expansion's gas; negative when it did not pay (nothing grew
    ///          then) or when the memory could not grow (limit passed, upstream failed).
    [[nodiscard]] std::int64_t charge_and_grow(
        std::int64_t gas_left, std::uint64_t new_size) noexcept
    {
        evmalloc::Memory& m = target();
        const std::int64_t left = m.expand_charged(0, new_size, gas_left);
        data_ = m.data();  // as they were if the expansion failed
        size_ = m.size();
        return left;
    }

    /// evmone's Memory::grow(): grows to `new_size` (a multiple of 32) with no gas; used by
    /// evmone's tests on an ExecutionState. Terminates if the memory cannot grow, as evmone's does.
    void grow(std::size_t new_size) noexcept
    {
        evmalloc::Memory& m = target();
        if (!m.expand(0, new_size)) [[unlikely]]
            std::terminate();
        data_ = m.data();
        size_ = m.size();
    }

    /// Size 0, capacity kept.
    void clear() noexcept
    {
        size_ = 0;
        if (bound_ != nullptr)
            bound_->clear();
        else if (own_)
            own_->clear();
    }

    /// Uses `memory` (a frame's, cleared) until unbind().
    void bind(evmalloc::Memory& memory) noexcept
    {
        bound_ = &memory;
        data_ = memory.data();
        size_ = memory.size();
    }

    /// Back to the memory of its own (empty if it never had one).
    void unbind() noexcept
    {
        bound_ = nullptr;
        data_ = own_ ? own_->data() : empty_data();
        size_ = own_ ? own_->size() : 0;
    }

private:
    static std::uint8_t* empty_data() noexcept
    {
        alignas(32) static std::uint8_t empty[32]{};
        return empty;
    }

    evmalloc::Memory& target() noexcept
    {
        if (bound_ != nullptr) [[likely]]
            return *bound_;
        if (!own_) [[unlikely]]
            make_own();
        return *own_;
    }

    [[gnu::cold, gnu::noinline]] void make_own() noexcept
    {
        own_.reset(
            new (std::nothrow) evmalloc::Memory{evmalloc::nothrow_new_delete_resource(), limit});
        if (!own_)
            std::terminate();
    }

    // The first two are what the instructions read (evmone's Memory has its data pointer and
    // size first too); 32 bytes in all, where evmone's Memory takes 24.
    std::uint8_t* data_ = empty_data();
    std::size_t size_ = 0;
    evmalloc::Memory* bound_ = nullptr;
    std::unique_ptr<evmalloc::Memory> own_;
};

/// The EVM stack storage of one ExecutionState: evmone's StackSpace interface (bottom()), the
/// call's frame's stack while a call runs (bind), else 1024 words of its own.
class StackSpace
{
public:
    /// The maximum number of EVM stack items (evmone's StackSpace::limit).
    static constexpr auto limit = 1024;

    /// Takes its own 1024 words, as evmone's StackSpace does: bottom() is then one load, with
    /// no test on the interpreters' paths (advanced reads it at every block).
    StackSpace() noexcept { bottom_ = own_bottom(); }
    StackSpace(const StackSpace&) = delete;
    StackSpace& operator=(const StackSpace&) = delete;

    StackSpace(StackSpace&& other) noexcept
      : bottom_{std::exchange(other.bottom_, nullptr)}, own_{std::move(other.own_)}
    {}

    StackSpace& operator=(StackSpace&& other) noexcept
    {
        if (this != &other)
        {
            bottom_ = std::exchange(other.bottom_, nullptr);
            own_ = std::move(other.own_);
        }
        return *this;
    }

    ~StackSpace() = default;

    /// The bottom of the stack: item i (0 = bottom) is bottom()[i]; room for `limit` items.
    [[nodiscard]] intx::uint256* bottom() noexcept { return bottom_; }

    /// Uses `storage` (at least `limit` words) until unbind().
    void bind(intx::uint256* storage) noexcept { bottom_ = storage; }

    /// Back to the storage of its own.
    void unbind() noexcept { bottom_ = own_.get(); }

private:
    struct Free
    {
        void operator()(intx::uint256* p) const noexcept { std::free(p); }
    };

    [[gnu::cold, gnu::noinline]] intx::uint256* own_bottom() noexcept
    {
        void* p = std::aligned_alloc(sizeof(intx::uint256), limit * sizeof(intx::uint256));
        if (p == nullptr)
            std::terminate();
        own_.reset(static_cast<intx::uint256*>(p));
        return own_.get();
    }

    intx::uint256* bottom_ = nullptr;
    std::unique_ptr<intx::uint256, Free> own_;
};
}  // namespace evmalloc_evmone
