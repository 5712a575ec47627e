// Benchmark support: a stand-in for the code hash a client has (keccak-256 of the code).
//
// The trusted key only needs a value that is distinct per code, which the caller promises is the
// code's hash; benchmarks have no keccak, so they derive 32 bytes from the code's fingerprint
// and size (distinct over every code set used here; computed once, outside any timing loop).
#pragma once

#include <evmalloc/code_hash.hpp>

#include <cstdint>
#include <cstring>
#include <span>

namespace evmalloc::bench
{
inline CodeHash stand_in_hash(std::span<const std::uint8_t> code) noexcept
{
    CodeHash h{};
    const std::uint64_t words[4] = {
        code_fingerprint(code), code.size(), ~code_fingerprint(code), 0x5eed};
    std::memcpy(h.bytes.data(), words, sizeof(words));
    return h;
}
}  // namespace evmalloc::bench
