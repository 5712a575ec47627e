// evmalloc: the code part of a frame: what an interpreter keeps per code, as a Component.
//
// A frame is a stack plus a code part. The code part is everything derived from the code of the
// call: the padded copy of the code and whatever the interpreter's analysis writes beside it.
// A code part P is a CodePart:
//
//   P::calculate_allocation(n)        Component: the bytes (and alignment) for code of n bytes
//   P::Table                          what prepare() reads besides the code (an op table), or
//                                     void: prepare() takes the code alone
//   P::View                           small, trivially copyable: what the interpreter reads;
//                                     view.code() is the padded copy (code.size() bytes, then at
//                                     least PaddedCode::padding zeros)
//   P::prepare(storage, code[, table]) noexcept -> Result<View>
//                                     writes the part into `storage` (calculate_allocation(
//                                     code.size()).size bytes or more, at its alignment), laid
//                                     out for code.size(), and returns the view of it; never
//                                     allocates. The part owns its padded copy: the view must
//                                     not point into `code`.
//
// Frames (frame_layout.hpp, stack_frame.hpp) carve one block of calculate_allocation(n) after
// the stack, and the shared entries (analysis_cache.hpp) one block for the code's real size;
// both call prepare() and keep the View. Every part goes through that one path: pooled, pinned,
// shared, budgeted, and failing atomically alike.
//
// Two parts are built in, chosen by the traits (traits.hpp) when they name no CodePart:
//   JumpdestCodePart                   Op = void: jumpdest bits | padded code; the view is a
//                                      JumpdestAnalysis
//   InstructionCodePart<Op, Metadata>  any other Op: Analysis buffers | Op[n + 1] |
//                                      Metadata[n + 1] | padded code; the view holds the
//                                      Analysis, ops and metadata
// An interpreter with another shape (evmone's advanced instruction array, per-block gas) names
// its own part: `struct MyTraits { using Word = ...; using CodePart = MyCodePart; };`.
// A part may also say how its block splits for code of n bytes (`P::Spans P::carve(storage,
// n)`); FrameSpans and FrameArena::carve() show those spans, else the raw block.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "allocation.hpp"
#include "analysis.hpp"
#include "config.hpp"
#include "instruction_array.hpp"
#include "jumpdest_analysis.hpp"
#include "padded_code.hpp"
#include "result.hpp"
#include "traits.hpp"

namespace evmalloc
{
namespace detail
{
template <class P>
using table_or_int = std::conditional_t<std::is_void_v<typename P::Table>, int, typename P::Table>;

template <class P>
concept prepares_code = std::is_void_v<typename P::Table> &&
    requires(std::span<std::byte> storage, std::span<const std::uint8_t> code)
{
    {
        P::prepare(storage, code)
    }
    noexcept->std::same_as<Result<typename P::View>>;
};

template <class P>
concept prepares_code_with_table =
    !std::is_void_v<typename P::Table> &&
    requires(std::span<std::byte> storage, std::span<const std::uint8_t> code,
        const table_or_int<P>& table)
{
    {
        P::prepare(storage, code, table)
    }
    noexcept->std::same_as<Result<typename P::View>>;
};
}  // namespace detail

/// A frame's code part: see the top of this header.
template <class P>
concept CodePart = Component<P> && requires
{
    typename P::View;
    typename P::Table;
} && std::is_trivially_copyable_v<typename P::View> &&
    std::is_trivially_destructible_v<typename P::View> && requires(const typename P::View& view)
{
    {
        view.code()
    }
    noexcept->std::convertible_to<std::span<const std::uint8_t>>;
} &&(detail::prepares_code<P> || detail::prepares_code_with_table<P>);

namespace detail
{
/// The end of parts laid out one after the other from 0, each at its own alignment.
template <std::size_t N>
constexpr std::size_t layout_end(const std::array<Allocation, N>& parts) noexcept
{
    std::size_t end = 0;
    for (const Allocation& a : parts)
        end = align_up(end, a.alignment) + a.size;
    return end;
}

template <std::size_t N>
constexpr std::size_t max_alignment(const std::array<Allocation, N>& parts) noexcept
{
    std::size_t alignment = 1;
    for (const Allocation& a : parts)
        alignment = a.alignment > alignment ? a.alignment : alignment;
    return alignment;
}

template <class T>
std::span<T> typed(void* p, std::size_t count) noexcept
{
    return {static_cast<T*>(p), p != nullptr ? count : 0};
}

/// Splits `storage` into `parts` laid out as layout_end() does. \returns the start of each
/// part, or nullptr for every part from the first that does not fit (checked in debug builds).
template <std::size_t N>
std::array<void*, N> split(
    std::span<std::byte> storage, const std::array<Allocation, N>& parts) noexcept
{
    EVMALLOC_ASSERT(storage.size() >= layout_end(parts));
    std::array<void*, N> at{};
    std::size_t offset = 0;
    for (std::size_t i = 0; i < N; ++i)
    {
        offset = align_up(offset, parts[i].alignment);
        if (storage.data() == nullptr || offset + parts[i].size > storage.size()) [[unlikely]]
            break;
        at[i] = storage.data() + offset;
        offset += parts[i].size;
    }
    return at;
}

/// The built-in parts' check before they write: code of n bytes is analysable (n <=
/// Analysis::max_analysable_size) and `storage` holds P::calculate_allocation(n).
template <class P>
bool fits(std::span<std::byte> storage, std::size_t n) noexcept
{
    return n <= Analysis::max_analysable_size && storage.size() >= P::calculate_allocation(n).size;
}

/// Why fits() said no: Errc::code_too_large above Analysis::max_analysable_size, else
/// Errc::buffer_too_small.
inline Errc fit_error(std::size_t n) noexcept
{
    return n > Analysis::max_analysable_size ? Errc::code_too_large : Errc::buffer_too_small;
}
}  // namespace detail

/// The built-in code part of a jumpdest frame: jumpdest bits | padded code. Its view is the
/// JumpdestAnalysis of the padded copy.
struct JumpdestCodePart
{
    using View = JumpdestAnalysis;
    using Table = void;

    /// The block split for code of n bytes.
    struct Spans
    {
        std::span<std::uint64_t> jumpdest_bits;  ///< JumpdestAnalysis::jumpdest_words(n) words
        std::span<std::uint8_t> padded_code;     ///< n + PaddedCode::padding bytes
    };

    [[nodiscard]] static constexpr std::array<Allocation, 2> parts(std::size_t n) noexcept
    {
        return {JumpdestAnalysis::calculate_allocation(n), PaddedCode::calculate_allocation(n)};
    }

    [[nodiscard]] static constexpr Allocation calculate_allocation(std::size_t n) noexcept
    {
        return {detail::layout_end(parts(n)), detail::max_alignment(parts(n)), false};
    }

    /// The spans of a block of calculate_allocation(n).size bytes (nothing read or written).
    [[nodiscard]] static Spans carve(std::span<std::byte> storage, std::size_t n) noexcept
    {
        const auto at = detail::split(storage, parts(n));
        return {detail::typed<std::uint64_t>(at[0], JumpdestAnalysis::jumpdest_words(n)),
            detail::typed<std::uint8_t>(at[1], PaddedCode::calculate_allocation(n).size)};
    }

    /// The padded copy of `code` and its jumpdest bits, laid out for code.size().
    /// \returns Errc::code_too_large above Analysis::max_analysable_size, else
    /// Errc::buffer_too_small when storage is shorter than calculate_allocation(code.size()).
    [[nodiscard]] static Result<View> prepare(
        std::span<std::byte> storage, std::span<const std::uint8_t> code) noexcept
    {
        if (!detail::fits<JumpdestCodePart>(storage, code.size())) [[unlikely]]
            return detail::fit_error(code.size());
        const Spans s = carve(storage, code.size());
        return JumpdestAnalysis::prepare(code, s.padded_code, s.jumpdest_bits);  // one pass
    }
};

/// The built-in code part of an instruction frame: Analysis buffers | Op[n + 1] |
/// Metadata[n + 1] | padded code. prepare() fills ops[i] = table[opcode of instruction i] and
/// metadata[i] = the PUSH1..PUSH8 immediate (stack_frame.hpp) in the analysis pass.
template <class O, class M>
struct InstructionCodePart
{
    static_assert(!std::is_void_v<M>, "an instruction frame needs a Metadata type");

    using Op = O;
    using Metadata = M;
    using Table = std::array<Op, 256>;

    /// What the interpreter reads: the analysis and the instruction arrays
    /// (analysis.instruction_count() entries each).
    struct View
    {
        Analysis analysis;
        const Op* ops;
        const Metadata* metadata;

        [[nodiscard]] std::span<const std::uint8_t> code() const noexcept
        {
            return analysis.code();
        }
    };

    /// The block split for code of n bytes.
    struct Spans
    {
        AnalysisBuffers analysis;             ///< for n bytes
        std::span<Op> ops;                    ///< n + 1 entries
        std::span<Metadata> metadata;         ///< n + 1 entries
        std::span<std::uint8_t> padded_code;  ///< n + PaddedCode::padding bytes
    };

    [[nodiscard]] static constexpr std::array<Allocation, 4> parts(std::size_t n) noexcept
    {
        return {Analysis::calculate_allocation(n), InstructionArray<Op>::calculate_allocation(n),
            InstructionArray<Metadata>::calculate_allocation(n),
            PaddedCode::calculate_allocation(n)};
    }

    [[nodiscard]] static constexpr Allocation calculate_allocation(std::size_t n) noexcept
    {
        return {detail::layout_end(parts(n)), detail::max_alignment(parts(n)), false};
    }

    /// The spans of a block of calculate_allocation(n).size bytes (nothing read or written).
    [[nodiscard]] static Spans carve(std::span<std::byte> storage, std::size_t n) noexcept
    {
        const auto p = parts(n);
        const auto at = detail::split(storage, p);
        auto* const analysis = static_cast<std::byte*>(at[0]);
        return {Analysis::carve({analysis, analysis != nullptr ? p[0].size : 0}, n),
            detail::typed<Op>(at[1], InstructionArray<Op>::entries(n)),
            detail::typed<Metadata>(at[2], InstructionArray<Metadata>::entries(n)),
            detail::typed<std::uint8_t>(at[3], p[3].size)};
    }

    /// The padded copy of `code`, its analysis, ops and metadata, laid out for code.size().
    /// \returns as JumpdestCodePart::prepare.
    [[nodiscard]] static Result<View> prepare(std::span<std::byte> storage,
        std::span<const std::uint8_t> code, const Table& table) noexcept
    {
        if (!detail::fits<InstructionCodePart>(storage, code.size())) [[unlikely]]
            return detail::fit_error(code.size());
        const Spans s = carve(storage, code.size());
        const Result<Analysis> analysis = Analysis::prepare(
            PaddedCode::copy(code, s.padded_code), s.analysis, table, s.ops, s.metadata);
        if (!analysis) [[unlikely]]
            return analysis.error();  // not reachable: sized for code.size()
        return View{*analysis, s.ops.data(), s.metadata.data()};
    }
};

namespace detail
{
template <class Traits>
struct FrameCodePartOf
{
    using type = InstructionCodePart<typename Traits::Op, typename Traits::Metadata>;
};
template <class Traits>
    requires names_code_part<Traits>
struct FrameCodePartOf<Traits>
{
    using type = typename Traits::CodePart;
};
template <class Traits>
    requires(!names_code_part<Traits> && std::is_void_v<typename Traits::Op>)
struct FrameCodePartOf<Traits>
{
    using type = JumpdestCodePart;
};

template <class P>
inline constexpr bool is_instruction_part = false;
template <class O, class M>
inline constexpr bool is_instruction_part<InstructionCodePart<O, M>> = true;

/// The block of a part, split as the part says (P::carve), or the raw block.
template <class P>
struct CodePartStorage
{
    std::span<std::byte> storage;  ///< calculate_allocation(n).size bytes
};
template <class P>
struct SpansOf
{
    using type = CodePartStorage<P>;
};
template <class P>
    requires requires
    {
        typename P::Spans;
    }
struct SpansOf<P>
{
    using type = typename P::Spans;
};

template <class P>
typename SpansOf<P>::type carve_part(std::span<std::byte> block, std::size_t n) noexcept
{
    if constexpr (requires { typename P::Spans; })
        return P::carve(block, n);
    else
    {
        static_cast<void>(n);
        return {block};
    }
}

template <class P>
struct ViewAnalysis
{
    using type = typename P::View;
};
template <class O, class M>
struct ViewAnalysis<InstructionCodePart<O, M>>
{
    using type = Analysis;
};
template <class P>
struct PartOp
{
    using type = void;
    using metadata = void;
};
template <class O, class M>
struct PartOp<InstructionCodePart<O, M>>
{
    using type = O;
    using metadata = M;
};
}  // namespace detail

/// The code part of a frame with these traits: Traits::CodePart when the traits name one, else
/// JumpdestCodePart (Op = void) or InstructionCodePart<Op, Metadata>.
template <class Traits>
using FrameCodePart = typename detail::FrameCodePartOf<Traits>::type;

/// The spans of a carved code part: the part's Spans, or its raw block (CodePartStorage).
template <class Traits>
using CodeSpans = typename detail::SpansOf<FrameCodePart<Traits>>::type;

/// What a frame's analysis() returns: the Analysis of an instruction frame, the
/// JumpdestAnalysis of a jumpdest frame, an interpreter-defined part's View.
template <class Traits>
using FrameAnalysis = typename detail::ViewAnalysis<FrameCodePart<Traits>>::type;
}  // namespace evmalloc
