// Test and benchmark support: the code shapes the jumpdest scan is measured and tested on, made
// here (seeded, deterministic): the attack shapes (code almost all JUMPDEST, zeros, JUMPDEST
// STOP) and the worst cases of a scan that skips PUSH-free blocks (a PUSH in every 64 bytes,
// PUSH-dense code, random bytes).
#pragma once

#include <evmalloc/opcodes.hpp>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace evmalloc::test
{
/// The devnet-8 spam contract's shape: PUSH2 <size - 1> JUMP, then a JUMPDEST, a 20-byte address
/// (random: its bytes are opcodes, a PUSH among them swallows what follows) and JUMPDESTs to the
/// end (the last byte, the jump's target, one of them).
inline std::vector<std::uint8_t> devnet8_code(std::size_t size, std::uint64_t seed = 8)
{
    std::mt19937_64 rng{seed};
    std::vector<std::uint8_t> code(size, OP_JUMPDEST);
    const std::size_t target = size - 1;
    const std::uint8_t head[] = {0x61, static_cast<std::uint8_t>(target >> 8),
        static_cast<std::uint8_t>(target), 0x56, OP_JUMPDEST};
    for (std::size_t i = 0; i < sizeof(head) && i < size; ++i)
        code[i] = head[i];
    for (std::size_t i = sizeof(head); i < sizeof(head) + 20 && i + 1 < size; ++i)
        code[i] = static_cast<std::uint8_t>(rng());
    return code;
}

/// PUSH2 <size - 1> JUMP, then JUMPDEST and a random 20-byte address again and again: every
/// 21 bytes an address whose bytes are opcodes (one in eight a PUSH).
inline std::vector<std::uint8_t> devnet8_addresses_code(std::size_t size, std::uint64_t seed = 8)
{
    std::mt19937_64 rng{seed};
    std::vector<std::uint8_t> code = devnet8_code(size, seed);
    for (std::size_t i = 4; i < size; i += 21)
        for (std::size_t k = 1; k <= 20 && i + k + 1 < size; ++k)
            code[i + k] = static_cast<std::uint8_t>(rng());
    return code;
}

/// JUMPDEST STOP JUMPDEST STOP ...
inline std::vector<std::uint8_t> jumpdest_stop_code(std::size_t size)
{
    std::vector<std::uint8_t> code(size, OP_STOP);
    for (std::size_t i = 0; i < size; i += 2)
        code[i] = OP_JUMPDEST;
    return code;
}

/// JUMPDESTs with one PUSH1 in every 64-byte block, at an offset that moves from block to block.
inline std::vector<std::uint8_t> push_per_64_code(std::size_t size)
{
    std::vector<std::uint8_t> code(size, OP_JUMPDEST);
    for (std::size_t b = 0; b * 64 < size; ++b)
        if (const std::size_t at = b * 64 + (b * 7) % 63; at < size)
            code[at] = OP_PUSH1;
    return code;
}

/// Uniform random bytes: one in eight a PUSH, most of them long.
inline std::vector<std::uint8_t> random_bytes(std::size_t size, std::uint64_t seed = 64)
{
    std::mt19937_64 rng{seed};
    std::vector<std::uint8_t> code(size);
    for (auto& b : code)
        b = static_cast<std::uint8_t>(rng());
    return code;
}

struct CodeShape
{
    std::string name;
    std::vector<std::uint8_t> code;
    bool attack;  ///< an attack shape (else a worst case of the scan)
};

/// The attack shapes and the worst cases, as measured in bench/jumpdest_scan_bench.cpp.
inline std::vector<CodeShape> code_shapes()
{
    constexpr std::size_t k64 = 65536;
    return {
        {"devnet8_64k", devnet8_code(k64), true},
        {"devnet8_24k", devnet8_code(24576), true},
        {"zeros_64k", std::vector<std::uint8_t>(k64, OP_STOP), true},
        {"jumpdest_stop_64k", jumpdest_stop_code(k64), true},
        {"devnet8_addresses_64k", devnet8_addresses_code(k64), false},
        {"push1_dense_64k", std::vector<std::uint8_t>(k64, OP_PUSH1), false},
        {"push_per_64_64k", push_per_64_code(k64), false},
        {"push32_dense_64k", std::vector<std::uint8_t>(k64, OP_PUSH32), false},
        {"random_64k", random_bytes(k64), false},
    };
}
}  // namespace evmalloc::test
