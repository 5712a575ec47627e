// evmalloc: the EVM word and the traits an interpreter plugs in.
//
// The traits say what a frame holds, so the interpreter chooses the frame's shape:
//
//   instruction frame  (any Op)      Stack<Word> | Analysis (inst_to_pc, pc_to_inst, jumpdest
//                                    bits) | Op[] | Metadata[] | padded code
//   jumpdest frame     (Op = void)   Stack<Word> | jumpdest bits | padded code
//   its own part       (CodePart)    Stack<Word> | Traits::CodePart (code_part.hpp)
//
// evmone's baseline, geth and most interpreters want a jumpdest frame; the seeds' interpret2
// wants an instruction frame; an interpreter with a shape of its own (evmone's advanced
// instruction array with push values and per-block requirements) names its own code part. A
// part the shape leaves out costs no byte and no store. An existing EVM supplies its own traits
// struct of the same shape, for example
//
//     struct MyTraits { using Word = intx::uint256; using Op = MyHandler; using Metadata = std::uint64_t; };
//     struct MyBaselineTraits { using Word = intx::uint256; using Op = void; using Metadata = void; };
//     struct MyAdvancedTraits { using Word = intx::uint256; using CodePart = MyCodePart; };
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

    [[nodiscard]] static constexpr Word from(std::uint64_t v) noexcept
    {
        return Word{{v, 0, 0, 0}};
    }

    friend constexpr bool operator==(const Word&, const Word&) noexcept = default;
};
static_assert(sizeof(Word) == 32 && alignof(Word) == 32 && std::is_trivially_copyable_v<Word>);

/// An instruction frame: handler pointers and 64-bit metadata per instruction.
struct DefaultTraits
{
    using Word = evmalloc::Word;
    using Op = const void*;
    using Metadata = std::uint64_t;
};

/// A jumpdest frame: the stack, the jumpdest bits and the padded code, nothing per instruction.
struct JumpdestTraits
{
    using Word = evmalloc::Word;
    using Op = void;
    using Metadata = void;
};

namespace detail
{
template <class Traits>
concept names_code_part = requires
{
    typename Traits::CodePart;
};
}  // namespace detail

/// True when Traits describes the built-in instruction frame: it names no CodePart and its Op
/// is not void.
template <class Traits>
inline constexpr bool is_instruction_frame = [] {
    if constexpr (detail::names_code_part<Traits>)
        return false;
    else
        return !std::is_void_v<typename Traits::Op>;
}();
}  // namespace evmalloc
