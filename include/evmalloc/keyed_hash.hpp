// evmalloc: the verified key's hash, keyed by a secret drawn once per process.
//
// code_fingerprint() (code_hash.hpp) is fixed and public: anyone can build codes that collide
// under it offline (its lanes mix only at the end). The analysis caches' verified key instead
// hashes the code with XXH3 (xxHash 0.8, Debian's libxxhash-dev, used header-only through
// XXH_INLINE_ALL) under a 192-byte secret that XXH3_generateSecret() derives from 32 bytes of
// the operating system's random source (getrandom(2) or /dev/urandom on Linux, std::random_device
// elsewhere), once per process, on first use. Without the secret a collision cannot be
// aimed at; with one (or by chance) it costs a byte comparison, never a wrong analysis, and the
// caches bound how many comparisons one lookup makes (CacheCore::max_compared).
//
// Speed: XXH3's figures (xxHash's README) are about 30 GB/s with AVX2 for large inputs and a few
// nanoseconds under 240 bytes; the secret costs one guarded static load per call.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#if defined(__linux__)
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>
#else
#include <random>
#endif

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

/// Fills `out` with bytes from the operating system's random source. \returns false when
/// none answered. On Linux: getrandom(2), then /dev/urandom (no std::random_device there: its
/// object is about 5 KB, past the stack budget of interpreters built with -Wstack-usage).
inline bool os_random_bytes(std::span<std::byte> out) noexcept
{
#if defined(__linux__)
    std::size_t got = 0;
    while (got < out.size())
    {
        const ssize_t r = ::getrandom(out.data() + got, out.size() - got, 0);
        if (r <= 0)
            break;
        got += static_cast<std::size_t>(r);
    }
    if (got == out.size())
        return true;
    const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    got = 0;
    while (got < out.size())
    {
        const ssize_t r = ::read(fd, out.data() + got, out.size() - got);
        if (r <= 0)
            break;
        got += static_cast<std::size_t>(r);
    }
    ::close(fd);
    return got == out.size();
#else
    std::random_device random;
    for (std::size_t i = 0; i < out.size(); i += sizeof(unsigned))
    {
        const unsigned v = random();
        std::memcpy(out.data() + i, &v, std::min(sizeof v, out.size() - i));
    }
    return true;
#endif
}

inline KeyedHashSecret draw_keyed_hash_secret() noexcept
{
    std::array<std::uint64_t, 4> seed{};
    if (!os_random_bytes(std::as_writable_bytes(std::span{seed})))
    {
        // No random source answered: the process's addresses (ASLR) and the clock, still
        // unknown offline, though weaker than the operating system's source.
        seed[0] = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&seed));
        seed[1] = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&os_random_bytes));
        seed[2] =
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
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
