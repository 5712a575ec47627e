// evmalloc: the EVM word and the traits an interpreter plugs in.
//
// A frame's stack holds Traits::Word, its ops array Traits::Op (a handler pointer, or whatever
// the interpreter dispatches on) and its metadata array Traits::Metadata. An existing EVM
// supplies its own traits struct of the same shape, for example
//
//     struct MyTraits { using Word = intx::uint256; using Op = MyHandler; using Metadata = std::uint64_t; };
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>

namespace evmalloc
{
/// A 256-bit EVM word: four 64-bit limbs, least significant first, 32-byte aligned.
/// Trivially copyable; `Word{}` is zero, a default-initialised Word is indeterminate.
struct alignas(32) Word
{
    std::array<std::uint64_t, 4> limbs;

    [[nodiscard]] static constexpr Word from(std::uint64_t v) noexcept { return Word{{v, 0, 0, 0}}; }

    friend constexpr bool operator==(const Word&, const Word&) noexcept = default;
};
static_assert(sizeof(Word) == 32 && alignof(Word) == 32 && std::is_trivially_copyable_v<Word>);

struct DefaultTraits
{
    using Word = evmalloc::Word;
    using Op = const void*;
    using Metadata = std::uint64_t;
};
}  // namespace evmalloc
