// evmalloc: a per-instruction array (ops, metadata) in a frame buffer.
//
// Code of n bytes has at most n instructions (one per byte) plus the implicit STOP at its
// end, so n + 1 entries always suffice. The frame carves one array for Traits::Op and one for
// Traits::Metadata; view() turns the carved bytes into a span<T>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "allocation.hpp"
#include "config.hpp"

namespace evmalloc
{
template <class T>
struct InstructionArray
{
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
        "entries live in raw frame-buffer bytes: T must be trivially copyable");

    /// Entries needed for code of `code_size` bytes: one per byte plus the implicit STOP.
    [[nodiscard]] static constexpr std::size_t entries(std::size_t code_size) noexcept
    {
        return code_size + 1;
    }

    [[nodiscard]] static constexpr Allocation calculate_allocation(std::size_t code_size) noexcept
    {
        return {entries(code_size) * sizeof(T), alignof(T), false};
    }

    /// The first `count` entries of T in `storage` (contents as the bytes were: not
    /// initialised). \requires storage is aligned to alignof(T) and holds count * sizeof(T)
    /// bytes (checked in debug builds: reported and aborts; a release build cuts the span to
    /// fit).
    [[nodiscard]] static std::span<T> view(std::span<std::byte> storage, std::size_t count) noexcept
    {
        EVMALLOC_ASSERT(reinterpret_cast<std::uintptr_t>(storage.data()) % alignof(T) == 0);
        EVMALLOC_ASSERT(storage.size() / sizeof(T) >= count);
        const std::size_t fit = storage.size() / sizeof(T);
        return {reinterpret_cast<T*>(storage.data()), count < fit ? count : fit};
    }
};
}  // namespace evmalloc
