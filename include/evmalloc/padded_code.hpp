// evmalloc: the frame's own copy of the code, followed by zero bytes.
//
// An interpreter that reads the code without bounds checks (the next opcode after the last
// one, a PUSH32 immediate cut off by the end) needs the code followed by enough zeros to read
// past the end: `padding` = 33 bytes, evmone's PADDING (a PUSH32's 32 immediate bytes and the
// opcode after them). Every frame and every shared analysis entry holds this copy, and its
// analysis views it, so the caller's code buffer need not outlive the call setup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "allocation.hpp"
#include "config.hpp"

namespace evmalloc
{
struct PaddedCode
{
    /// Zero bytes after the code: a PUSH32 immediate (32) and one more opcode.
    static constexpr std::size_t padding = 33;

    /// n + padding bytes, byte-aligned, never growing.
    [[nodiscard]] static constexpr Allocation calculate_allocation(std::size_t n) noexcept
    {
        return {n + padding, 1, false};
    }

    /// Copies `code` to the start of `storage` and zeroes the `padding` bytes after it.
    /// \returns the copy (code.size() bytes; the zeros follow it).
    /// \requires storage.size() >= code.size() + padding (checked in debug builds).
    static std::span<const std::uint8_t> copy(
        std::span<const std::uint8_t> code, std::span<std::uint8_t> storage) noexcept
    {
        EVMALLOC_ASSERT(storage.size() >= code.size() + padding);
        if (!code.empty())
            std::memcpy(storage.data(), code.data(), code.size());
        std::memset(storage.data() + code.size(), 0, padding);
        return {storage.data(), code.size()};
    }
};
}  // namespace evmalloc
