// code_hash.hpp: CodeHash compares by value; code_fingerprint() depends on every byte and on the
// length, and not on where the bytes sit in memory.
#include "catch.hpp"
#include "support/cache_check.hpp"

#include <evmalloc/code_hash.hpp>

#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

using evmalloc::code_fingerprint;
using evmalloc::CodeHash;

TEST_CASE("CodeHash compares all 32 bytes", "[code_hash]")
{
    CodeHash a{};
    for (std::size_t i = 0; i < a.bytes.size(); ++i)
        a.bytes[i] = static_cast<std::uint8_t>(i * 7 + 1);
    const CodeHash b = a;
    CHECK(a == b);
    for (std::size_t i = 0; i < a.bytes.size(); ++i)
    {
        CodeHash c = a;
        c.bytes[i] ^= 0x80;
        CHECK(c != a);
    }
}

TEST_CASE("code_fingerprint is deterministic and does not depend on alignment", "[code_hash]")
{
    const auto code = evmalloc::test::random_code(1000, 3);
    const std::uint64_t h = code_fingerprint(code);
    CHECK(code_fingerprint(code) == h);
    for (std::size_t offset = 1; offset < 9; ++offset)
    {
        std::vector<std::uint8_t> shifted(offset + code.size());
        std::copy(code.begin(), code.end(), shifted.begin() + static_cast<std::ptrdiff_t>(offset));
        CHECK(code_fingerprint({shifted.data() + offset, code.size()}) == h);
    }
}

TEST_CASE("code_fingerprint changes with every byte of the code", "[code_hash]")
{
    // Sizes around the 32-byte block and its tail, each byte flipped in turn.
    for (const std::size_t size : {1UL, 7UL, 8UL, 31UL, 32UL, 33UL, 63UL, 64UL, 65UL, 1000UL})
    {
        INFO("size " << size);
        auto code = evmalloc::test::random_code(size, static_cast<std::uint32_t>(size));
        const std::uint64_t h = code_fingerprint(code);
        std::size_t same = 0;
        for (std::size_t i = 0; i < size; ++i)
        {
            for (const std::uint8_t bit : {std::uint8_t{0x01}, std::uint8_t{0x80}})
            {
                code[i] ^= bit;
                same += code_fingerprint(code) == h ? 1U : 0U;
                code[i] ^= bit;
            }
        }
        CHECK(same == 0);
        CHECK(code_fingerprint(code) == h);
    }
}

TEST_CASE("code_fingerprint tells lengths apart, trailing zeros included", "[code_hash]")
{
    std::set<std::uint64_t> seen;
    for (std::size_t n = 0; n <= 200; ++n)
    {
        const std::vector<std::uint8_t> zeros(n, 0);
        CHECK(seen.insert(code_fingerprint(zeros)).second);
    }
    const std::vector<std::uint8_t> abc{0x60, 0x01, 0x00};
    const std::vector<std::uint8_t> abc0{0x60, 0x01, 0x00, 0x00};
    CHECK(code_fingerprint(abc) != code_fingerprint(abc0));
    CHECK(code_fingerprint(std::span<const std::uint8_t>{}) ==
          code_fingerprint(std::vector<std::uint8_t>{}));
}

TEST_CASE("code_fingerprint has no collision among 100000 random codes", "[code_hash]")
{
    // With 64 bits the chance of any collision here is about 3e-10: a collision means a bug.
    std::set<std::uint64_t> seen;
    std::size_t collisions = 0;
    for (std::uint32_t i = 0; i < 100000; ++i)
    {
        const auto code = evmalloc::test::random_code(1 + i % 97, i);
        collisions += seen.insert(code_fingerprint(code)).second ? 0U : 1U;
    }
    // Random codes of the same size may repeat (tiny ones): count distinct codes instead.
    std::set<std::vector<std::uint8_t>> codes;
    for (std::uint32_t i = 0; i < 100000; ++i)
        codes.insert(evmalloc::test::random_code(1 + i % 97, i));
    CHECK(seen.size() == codes.size());
    CHECK(collisions == 100000 - codes.size());
}

TEST_CASE("code_fingerprint spreads over the low bits a bucket index uses", "[code_hash]")
{
    // 64 buckets, 6400 codes differing in one byte each: every bucket is used, none holds more
    // than three times its share.
    std::vector<std::size_t> buckets(64, 0);
    auto code = evmalloc::test::random_code(256, 5);
    for (std::size_t i = 0; i < 6400; ++i)
    {
        code[i % 256] = static_cast<std::uint8_t>(i / 256 + 1);
        ++buckets[code_fingerprint(code) & 63];
    }
    for (const std::size_t b : buckets)
    {
        CHECK(b > 0);
        CHECK(b < 300);
    }
}
