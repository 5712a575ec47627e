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
    // At most n + 1 instructions: written by index, cut to the count at the end.
    r.inst_to_pc.resize(n + 1);
    r.opcode.resize(n + 1);
    r.push_value.resize(n + 1);
    std::uint32_t* const inst_to_pc = r.inst_to_pc.data();
    std::uint8_t* const opcode = r.opcode.data();
    std::uint64_t* const push_value = r.push_value.data();
    std::uint32_t* const pc_to_inst = r.pc_to_inst.data();
    std::uint64_t* const bits = r.jumpdest_bits.data();
    std::uint32_t i = 0;
    std::size_t pc = 0;
    while (pc < n)
    {
        const std::uint8_t op = code[pc];
        inst_to_pc[i] = static_cast<std::uint32_t>(pc);
        pc_to_inst[pc] = i;
        opcode[i] = op;
        std::size_t immediate = 0;
        if (op >= 0x60 && op <= 0x7F)
            immediate = static_cast<std::size_t>(op - 0x5F);
        std::uint64_t value = 0;
        if (immediate >= 1 && immediate <= 8)
        {
            for (std::size_t k = 1; k <= immediate; ++k)
                value = value << 8 | (pc + k < n ? code[pc + k] : 0U);
        }
        push_value[i] = value;
        if (op == 0x5B)
            bits[pc / 64] |= std::uint64_t{1} << (pc % 64);
        pc += 1 + immediate;
        ++i;
    }
    pc_to_inst[n] = i;
    inst_to_pc[i] = static_cast<std::uint32_t>(n);
    opcode[i] = 0x00;
    push_value[i] = 0;
    ++i;
    r.inst_to_pc.resize(i);
    r.opcode.resize(i);
    r.push_value.resize(i);
    return r;
}

/// True when the n elements at a and b are the same bytes.
template <class T>
FUZZ_NO_COVERAGE bool same_elements(const T* a, const T* b, std::size_t n)
{
    return n == 0 || __builtin_memcmp(a, b, n * sizeof(T)) == 0;
}
}  // namespace evmalloc::fuzz
