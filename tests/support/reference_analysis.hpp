// Test support: the obviously-correct decoder the analyses are checked against, and random
// bytecode with EVM-like frequencies.
#pragma once

#include <evmalloc/opcodes.hpp>

#include "bytecode.hpp"

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace evmalloc::test
{
/// What the analyses compute, in vectors, one byte at a time.
struct Reference
{
    std::vector<std::uint32_t> inst_to_pc;
    std::vector<std::uint32_t> pc_to_inst;
    std::vector<bool> jumpdest;
};

/// Decodes `code`: PUSH1..PUSH32 skip their immediate (spelled as a plain range here, not
/// with the library's is_push()), plus the implicit STOP at code.size().
inline Reference reference_analysis(const std::vector<std::uint8_t>& code)
{
    constexpr std::uint32_t none = 0xFFFFFFFF;
    Reference r;
    r.pc_to_inst.assign(code.size() + 1, none);
    r.jumpdest.assign(code.size(), false);
    std::size_t pc = 0;
    while (pc < code.size())
    {
        const std::uint8_t op = code[pc];
        r.pc_to_inst[pc] = static_cast<std::uint32_t>(r.inst_to_pc.size());
        r.inst_to_pc.push_back(static_cast<std::uint32_t>(pc));
        if (op == OP_JUMPDEST)
            r.jumpdest[pc] = true;
        if (op >= OP_PUSH1 && op <= OP_PUSH32)
            pc += 1 + static_cast<std::size_t>(op - OP_PUSH1 + 1);
        else
            pc += 1;
    }
    r.pc_to_inst[code.size()] = static_cast<std::uint32_t>(r.inst_to_pc.size());
    r.inst_to_pc.push_back(static_cast<std::uint32_t>(code.size()));
    return r;
}

/// The reference's jumpdests as (n + 64) / 64 bit words, padding bits past the end zero.
inline std::vector<std::uint64_t> reference_jumpdest_bits(const Reference& ref)
{
    const std::size_t n = ref.jumpdest.size();
    std::vector<std::uint64_t> bits((n + 64) / 64, 0);
    for (std::size_t pc = 0; pc < n; ++pc)
        if (ref.jumpdest[pc])
            bits[pc / 64] |= std::uint64_t{1} << (pc % 64);
    return bits;
}

/// Bytes with EVM-like frequencies: many PUSH1..PUSH4, some long PUSHes, JUMPDESTs, the rest
/// anything (uniform bytes alone would make the code 1/8 PUSHes with mostly long immediates).
inline std::vector<std::uint8_t> random_code(std::mt19937_64& rng, std::size_t n)
{
    std::vector<std::uint8_t> code(n);
    std::uniform_int_distribution<int> kind(0, 99);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> short_push(OP_PUSH1, OP_PUSH1 + 3);
    std::uniform_int_distribution<int> any_push(OP_PUSH1, OP_PUSH32);
    for (auto& b : code)
    {
        const int k = kind(rng);
        b = static_cast<std::uint8_t>(k < 25   ? short_push(rng)
                                      : k < 32 ? any_push(rng)
                                      : k < 40 ? OP_JUMPDEST
                                               : byte(rng));
    }
    return code;
}
}  // namespace evmalloc::test
