// Example support: the 256-bit arithmetic a small interpreter needs on evmalloc::Word (limbs
// least significant first), shared by examples/vm_integration.cpp and tests/interpreter_test.cpp.
// Plain loops, for clarity; a real EVM uses its own word type (intx::uint256, for example).
#pragma once

#include <evmalloc/traits.hpp>

#include <cstddef>
#include <cstdint>

namespace evmalloc::example
{
inline Word add(const Word& a, const Word& b)
{
    Word r{};
    std::uint64_t carry = 0;
    for (std::size_t i = 0; i < 4; ++i)
    {
        const std::uint64_t s = a.limbs[i] + b.limbs[i];
        const std::uint64_t c1 = s < a.limbs[i] ? 1U : 0U;
        r.limbs[i] = s + carry;
        carry = c1 | (r.limbs[i] < s ? 1U : 0U);
    }
    return r;
}

inline Word sub(const Word& a, const Word& b)
{
    Word r{};
    std::uint64_t borrow = 0;
    for (std::size_t i = 0; i < 4; ++i)
    {
        const std::uint64_t d = a.limbs[i] - b.limbs[i];
        const std::uint64_t b1 = a.limbs[i] < b.limbs[i] ? 1U : 0U;
        r.limbs[i] = d - borrow;
        borrow = b1 | (d < borrow ? 1U : 0U);
    }
    return r;
}

__extension__ using Uint128 = unsigned __int128;

inline Word mul(const Word& a, const Word& b)  // the low 256 bits of the product
{
    Word r{};
    for (std::size_t i = 0; i < 4; ++i)
    {
        Uint128 carry = 0;
        for (std::size_t j = 0; i + j < 4; ++j)
        {
            const Uint128 t =
                static_cast<Uint128>(a.limbs[i]) * b.limbs[j] + r.limbs[i + j] + carry;
            r.limbs[i + j] = static_cast<std::uint64_t>(t);
            carry = t >> 64;
        }
    }
    return r;
}

inline bool less(const Word& a, const Word& b)
{
    for (std::size_t i = 4; i-- > 0;)
        if (a.limbs[i] != b.limbs[i])
            return a.limbs[i] < b.limbs[i];
    return false;
}

inline bool is_zero(const Word& a)
{
    return (a.limbs[0] | a.limbs[1] | a.limbs[2] | a.limbs[3]) == 0;
}

/// True when the word fits 32 bits (offsets, sizes, contract ids); its value goes to `out`.
inline bool small(const Word& a, std::uint64_t& out)
{
    out = a.limbs[0];
    return (a.limbs[1] | a.limbs[2] | a.limbs[3]) == 0 && a.limbs[0] <= 0xFFFFFFFFU;
}

inline void store_be(const Word& w, std::uint8_t* out)  // 32 bytes, big-endian
{
    for (std::size_t i = 0; i < 32; ++i)
        out[i] = static_cast<std::uint8_t>(w.limbs[3 - i / 8] >> (56 - 8 * (i % 8)));
}

inline Word load_be(const std::uint8_t* in, std::size_t n)  // n <= 32 bytes, big-endian
{
    Word w{};
    for (std::size_t i = 0; i < n; ++i)
    {
        const std::size_t bit = 8 * (n - 1 - i);
        w.limbs[bit / 64] |= std::uint64_t{in[i]} << (bit % 64);
    }
    return w;
}

}  // namespace evmalloc::example
