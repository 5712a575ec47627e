// evmalloc: the few EVM opcodes the analysis needs, by name.
//
// Values from the Ethereum Yellow Paper (appendix H) and EIP-3855 (PUSH0). PUSH1..PUSH32 are
// the 32 consecutive bytes 0x60..0x7F; PUSHn is followed by n immediate bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace evmalloc
{
inline constexpr std::uint8_t OP_STOP = 0x00;
inline constexpr std::uint8_t OP_JUMPDEST = 0x5B;
inline constexpr std::uint8_t OP_PUSH0 = 0x5F;
inline constexpr std::uint8_t OP_PUSH1 = 0x60;
inline constexpr std::uint8_t OP_PUSH32 = 0x7F;

// is_push() relies on PUSH32 being the last opcode below 0x80: PUSH1..PUSH32 are then exactly
// the bytes that are >= PUSH1 as signed 8-bit values (0x80..0xFF are negative).
static_assert(OP_PUSH32 == 0x7F, "is_push() needs PUSH32 == 0x7F");
static_assert(OP_PUSH32 - OP_PUSH1 == 31, "PUSH1..PUSH32 are consecutive");

/// True for PUSH1..PUSH32 (not PUSH0, which has no immediate). One signed compare.
[[nodiscard]] constexpr bool is_push(std::uint8_t op) noexcept
{
    return static_cast<std::int8_t>(op) >= static_cast<std::int8_t>(OP_PUSH1);
}

/// The immediate bytes after PUSHn: n (1..32). \requires is_push(op)
[[nodiscard]] constexpr std::size_t push_size(std::uint8_t op) noexcept
{
    return static_cast<std::size_t>(op - OP_PUSH1 + 1);
}
}  // namespace evmalloc
