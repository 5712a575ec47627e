// evmalloc: the verified key's hash, keyed by a secret drawn once per process.
//
// code_fingerprint() (code_hash.hpp) is fixed and public: anyone can build codes that collide
// under it offline (its lanes mix only at the end). The analysis caches' verified key instead
// hashes the code with XXH3 (xxHash 0.8, Debian's libxxhash-dev, used header-only through
// XXH_INLINE_ALL) under a 192-byte secret that XXH3_generateSecret() derives from 32 bytes of
// std::random_device, once per process, on first use. Without the secret a collision cannot be
// aimed at; with one (or by chance) it costs a byte comparison, never a wrong analysis, and the
// caches bound how many comparisons one lookup makes (CacheCore::max_compared).
//
// Speed: XXH3's figures (xxHash's README) are about 30 GB/s with AVX2 for large inputs and a few
// nanoseconds under 240 bytes; the secret costs one guarded static load per call.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

namespace evmalloc
{
namespace detail
{
/// The process's secret for keyed_code_hash().
struct KeyedHashSecret
{
    static constexpr std::size_t size = 192;  // XXH3's default secret size (>= 136, its minimum)
    alignas(64) std::array<unsigned char, size> bytes;
};

inline KeyedHashSecret draw_keyed_hash_secret() noexcept
{
    std::array<std::uint32_t, 8> seed{};
    std::random_device random;
    for (std::uint32_t& s : seed)
        s = random();
    KeyedHashSecret secret{};
    (void)XXH3_generateSecret(secret.bytes.data(), secret.bytes.size(), seed.data(), sizeof(seed));
    return secret;
}

inline const KeyedHashSecret& keyed_hash_secret() noexcept
{
    static const KeyedHashSecret secret = draw_keyed_hash_secret();
    return secret;
}
}  // namespace detail

/// A 64-bit hash of `code` under the process's random secret (XXH3_64bits_withSecret): equal
/// codes hash equal within a process; which codes collide cannot be known without the secret.
[[nodiscard]] inline std::uint64_t keyed_code_hash(std::span<const std::uint8_t> code) noexcept
{
    const detail::KeyedHashSecret& s = detail::keyed_hash_secret();
    return XXH3_64bits_withSecret(code.data(), code.size(), s.bytes.data(), s.bytes.size());
}
}  // namespace evmalloc
