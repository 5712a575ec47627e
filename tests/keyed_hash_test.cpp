// keyed_hash.hpp: keyed_code_hash() is deterministic within a process, depends on every byte,
// and does not collide where code_fingerprint() collides by construction (one appended 32-byte
// block that sets its four lanes to the same state).
#include "catch.hpp"
#include "support/cache_check.hpp"

#include <evmalloc/code_hash.hpp>
#include <evmalloc/keyed_hash.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

using evmalloc::code_fingerprint;
using evmalloc::keyed_code_hash;

namespace
{
// code_fingerprint()'s lanes after the whole 32-byte blocks of `code` (its published loop).
std::array<std::uint64_t, 4> fingerprint_lanes(const std::vector<std::uint8_t>& code)
{
    constexpr std::uint64_t k = 0x9e3779b97f4a7c15ULL;
    std::array<std::uint64_t, 4> lanes{k, k * 3, k * 5, k * 7};
    for (std::size_t at = 0; at + 32 <= code.size(); at += 32)
    {
        for (std::size_t i = 0; i < 4; ++i)
        {
            std::uint64_t w;
            std::memcpy(&w, code.data() + at + 8 * i, 8);
            const std::uint64_t v = lanes[i] ^ w;
            lanes[i] = (v ^ (v >> 29)) * k;
        }
    }
    return lanes;
}

// 128 random bytes: whole blocks, so the appended block is the last one (and one size).
std::vector<std::uint8_t> random_code_blocks(std::uint32_t i)
{
    return evmalloc::test::random_code(128, 1 + i);
}

// Appends the block that brings every lane to the same state (its input `x`).
void append_block(std::vector<std::uint8_t>& code, std::uint64_t x)
{
    const auto lanes = fingerprint_lanes(code);
    for (std::size_t i = 0; i < 4; ++i)
    {
        const std::uint64_t w = lanes[i] ^ x;
        const auto* b = reinterpret_cast<const std::uint8_t*>(&w);
        code.insert(code.end(), b, b + 8);
    }
}
}  // namespace

TEST_CASE("codes built to collide under code_fingerprint do not collide under keyed_code_hash",
    "[keyed_hash]")
{
    std::set<std::uint64_t> fingerprints, keyed;
    for (std::uint32_t i = 0; i < 200; ++i)
    {
        auto code = random_code_blocks(i);
        append_block(code, 0x0123456789abcdefULL);
        fingerprints.insert(code_fingerprint(code));
        keyed.insert(keyed_code_hash(code));
    }
    CHECK(fingerprints.size() == 1);  // the attack on the unkeyed hash works
    CHECK(keyed.size() == 200);
}

TEST_CASE(
    "keyed_code_hash is deterministic, alignment-blind and depends on every byte", "[keyed_hash]")
{
    const auto code = evmalloc::test::random_code(777, 3);
    const std::uint64_t h = keyed_code_hash(code);
    CHECK(keyed_code_hash(code) == h);
    std::vector<std::uint8_t> shifted(code.size() + 8);
    for (std::size_t offset = 1; offset < 8; ++offset)
    {
        std::memcpy(shifted.data() + offset, code.data(), code.size());
        CHECK(keyed_code_hash({shifted.data() + offset, code.size()}) == h);
    }
    std::set<std::uint64_t> seen{h};
    for (std::size_t i = 0; i < code.size(); ++i)
    {
        auto c = code;
        c[i] ^= 0x10;
        seen.insert(keyed_code_hash(c));
    }
    CHECK(seen.size() == code.size() + 1);
    CHECK(keyed_code_hash(std::span<const std::uint8_t>{}) ==
          keyed_code_hash(std::vector<std::uint8_t>{}));
}
