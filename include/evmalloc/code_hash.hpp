// evmalloc: the two keys a shared analysis is found by.
//
// - CodeHash: the account's code hash (keccak-256 of the code) that a full client already has.
//   The caller promises it is the hash of exactly these bytes; evmalloc never computes keccak.
//   A lookup by it costs O(1) whatever the code size.
// - code_fingerprint(): a fast non-cryptographic 64-bit hash of the bytes, for callers that have
//   no code hash (an EVMC VM is handed only the code). It is only a bucket index: the cache
//   compares the bytes on every hit, so a collision, hostile or not, costs a comparison and
//   never a wrong analysis. About 8 bytes per cycle: four independent multiply-xorshift lanes
//   over 32-byte blocks, folded with the length.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace evmalloc
{
/// The keccak-256 hash of an account's code, as the client has it.
struct CodeHash
{
    std::array<std::uint8_t, 32> bytes;

    friend constexpr bool operator==(const CodeHash&, const CodeHash&) noexcept = default;
};

namespace detail
{
inline std::uint64_t load_le64(const std::uint8_t* p) noexcept
{
    std::uint64_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

/// A full-avalanche 64-bit finaliser (multiply-xorshift).
constexpr std::uint64_t mix64(std::uint64_t x) noexcept
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}
}  // namespace detail

/// A fast 64-bit hash of `code` (not cryptographic: only for picking a bucket).
[[nodiscard]] inline std::uint64_t code_fingerprint(std::span<const std::uint8_t> code) noexcept
{
    constexpr std::uint64_t k = 0x9e3779b97f4a7c15ULL;  // 2^64 / golden ratio
    const std::uint8_t* p = code.data();
    std::size_t left = code.size();
    std::uint64_t lanes[4] = {k, k * 3, k * 5, k * 7};
    for (; left >= 32; left -= 32, p += 32)
    {
        for (std::size_t i = 0; i < 4; ++i)
        {
            const std::uint64_t v = lanes[i] ^ detail::load_le64(p + 8 * i);
            lanes[i] = (v ^ (v >> 29)) * k;
        }
    }
    std::uint8_t tail[32] = {};
    if (left != 0)
        std::memcpy(tail, p, left);
    std::uint64_t h = code.size() * k;
    for (std::size_t i = 0; i < 4; ++i)
        h = detail::mix64(h ^ lanes[i] ^ detail::load_le64(tail + 8 * i) * (2 * i + 1));
    return h;
}
}  // namespace evmalloc
