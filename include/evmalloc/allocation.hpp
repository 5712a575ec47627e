// evmalloc: what a component needs, the Component concept, and the arithmetic on sizes that
// every layer shares (align_up, utilization).
//
// Every part of a frame says what it needs for code of n bytes through a static
// `calculate_allocation(n)`. The frame layout adds these up at compile time per tier; nothing
// is sized by guesswork in two places.
#pragma once

#include <concepts>
#include <cstddef>

namespace evmalloc
{
/// Bytes a component needs for some code size, their alignment, and whether it grows later
/// (only Memory does; a component with can_grow == false never needs more than `size`).
struct Allocation
{
    std::size_t size;
    std::size_t alignment;
    bool can_grow;

    friend constexpr bool operator==(const Allocation&, const Allocation&) noexcept = default;
};

/// A part of a call frame: `C::calculate_allocation(code_size)` is noexcept and returns the
/// Allocation it needs for code of that size.
template <class C>
concept Component = requires(std::size_t code_size)
{
    {
        C::calculate_allocation(code_size)
    }
    noexcept->std::same_as<Allocation>;
};

/// Rounds `n` up to a multiple of `alignment`. \requires alignment is a power of two.
[[nodiscard]] constexpr std::size_t align_up(std::size_t n, std::size_t alignment) noexcept
{
    return (n + alignment - 1) & ~(alignment - 1);
}

/// in_use / held as a share in [0, 1] (when in_use <= held); 0 when nothing is held.
[[nodiscard]] constexpr double utilization(std::size_t in_use, std::size_t held) noexcept
{
    return held == 0 ? 0.0 : static_cast<double>(in_use) / static_cast<double>(held);
}
}  // namespace evmalloc
