// Test support: opcodes by name for hand-written bytecode, beyond the few the library names.
#pragma once

#include <evmalloc/opcodes.hpp>

#include <cstdint>

namespace evmalloc::test
{
/// PUSHn, for n in 1..32.
constexpr std::uint8_t op_push(int n) noexcept
{
    return static_cast<std::uint8_t>(OP_PUSH1 + n - 1);
}
}  // namespace evmalloc::test
