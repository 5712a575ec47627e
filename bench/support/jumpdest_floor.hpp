// Benchmark support: the floor of jumpdest analysis, written here (no client's code): the
// plain loop most interpreters run (evmone's shape: clear the bitmap, then byte by byte, a bit
// per JUMPDEST, PUSH immediates skipped), and the jumpdest frame's floor, that loop after a
// memcpy of the code into a padded buffer.
#pragma once

#include <evmalloc/opcodes.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace evmalloc::bench
{
/// The jumpdest bitmap of code[0 .. n) into bits[0 .. (n + 64) / 64); returns the JUMPDESTs
/// found (so nothing is optimised away).
[[gnu::noinline]] inline std::size_t jumpdest_bitmap(
    const std::uint8_t* code, std::size_t n, std::uint64_t* bits)
{
    std::memset(bits, 0, (n + 64) / 64 * sizeof(std::uint64_t));
    std::size_t count = 0;
    for (std::size_t pc = 0; pc < n; ++pc)
    {
        const std::uint8_t op = code[pc];
        if (op == OP_JUMPDEST)
        {
            bits[pc / 64] |= std::uint64_t{1} << (pc % 64);
            ++count;
        }
        else if (is_push(op))  // skip the immediate
            pc += push_size(op);
    }
    return count;
}

/// The code into padded[0 .. n), then `padding` zero bytes: a bare padded copy.
[[gnu::noinline]] inline void padded_memcpy(
    const std::uint8_t* code, std::size_t n, std::uint8_t* padded, std::size_t padding)
{
    std::memcpy(padded, code, n);
    std::memset(padded + n, 0, padding);
}
}  // namespace evmalloc::bench
