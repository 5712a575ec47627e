// Fuzz support: the plain reference decoder every analysis is checked against. One byte at a
// time, no tricks: an instruction starts at pc, a PUSHk (0x60..0x7F) skips k immediate bytes,
// a PUSH cut off by the end still counts once, and the implicit STOP sits at pc == size.
// The tables come out in Analysis's own layout, so a check is one memcmp per table.
#pragma once

#include "check.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace evmalloc::fuzz
{
struct Reference
{
    std::vector<std::uint32_t> inst_to_pc;     ///< with the implicit STOP last
    std::vector<std::uint32_t> pc_to_inst;     ///< size + 1 entries, 0xFFFFFFFF in push data
    std::vector<std::uint64_t> jumpdest_bits;  ///< (size + 64) / 64 words, padding bits zero
    std::vector<std::uint8_t> opcode;          ///< per instruction (0x00 for the STOP)
    std::vector<std::uint64_t> push_value;     ///< per instruction: PUSH1..PUSH8 immediate, else 0

    [[nodiscard]] bool is_jumpdest(std::size_t pc) const
    {
        return ((jumpdest_bits[pc / 64] >> (pc % 64)) & 1U) != 0;
    }
};

FUZZ_NO_COVERAGE inline Reference reference_decode(std::span<const std::uint8_t> code)
{
    Reference r;
    const std::size_t n = code.size();
    r.pc_to_inst.assign(n + 1, 0xFFFFFFFF);
    r.jumpdest_bits.assign((n + 64) / 64, 0);
    r.inst_to_pc.reserve(n + 1);
    r.opcode.reserve(n + 1);
    r.push_value.reserve(n + 1);
    std::size_t pc = 0;
    while (pc < n)
    {
        const std::uint8_t op = code[pc];
        const auto i = static_cast<std::uint32_t>(r.inst_to_pc.size());
        r.inst_to_pc.push_back(static_cast<std::uint32_t>(pc));
        r.pc_to_inst[pc] = i;
        r.opcode.push_back(op);
        std::size_t immediate = 0;
        if (op >= 0x60 && op <= 0x7F)
            immediate = static_cast<std::size_t>(op - 0x5F);
        std::uint64_t value = 0;
        if (immediate >= 1 && immediate <= 8)
        {
            for (std::size_t k = 1; k <= immediate; ++k)
                value = value << 8 | (pc + k < n ? code[pc + k] : 0U);
        }
        r.push_value.push_back(value);
        if (op == 0x5B)
            r.jumpdest_bits[pc / 64] |= std::uint64_t{1} << (pc % 64);
        pc += 1 + immediate;
    }
    r.pc_to_inst[n] = static_cast<std::uint32_t>(r.inst_to_pc.size());
    r.inst_to_pc.push_back(static_cast<std::uint32_t>(n));
    r.opcode.push_back(0x00);
    r.push_value.push_back(0);
    return r;
}

/// True when the n elements at a and b are the same bytes.
template <class T>
FUZZ_NO_COVERAGE bool same_elements(const T* a, const T* b, std::size_t n)
{
    return n == 0 || __builtin_memcmp(a, b, n * sizeof(T)) == 0;
}
}  // namespace evmalloc::fuzz
