// evmalloc: the layout of one frame buffer, and the arena that carves it.
//
// A frame buffer holds the stack, then the code part: what the code of the call needs, in
// this order and each at its own alignment, for code of up to n bytes:
//
//   instruction frame                        jumpdest frame (Traits::Op is void)
//   Stack<Word>           1024 words         Stack<Word>          1024 words
//   Analysis buffers      (Analysis::carve)  jumpdest bits        (n + 64) / 64 words
//   InstructionArray<Op>        n + 1        PaddedCode           n + 33 bytes
//   InstructionArray<Metadata>  n + 1
//   PaddedCode                  n + 33
//
// Every size comes from the components' calculate_allocation(n). A tier's buffer is carved for
// n = code_capacity(tier); frame_buffer_size() adds the parts up at compile time (one table per
// traits type) and rounds the total up to 64 bytes, no more. A frame for code above the
// largest tier gets a buffer carved for the code's own size (frame_buffer_bytes(n)). A shared
// analysis entry holds the code part alone, carved for the code's real size (code_part_bytes).
// Carving walks the same sequence through one step, detail::carve_code(), used by the frames,
// FrameArena and the shared entries alike.
//
// Under AddressSanitizer a frame buffer's bytes that no part uses stay poisoned while the frame
// lives: the alignment gaps, the tail after the last part, and (once prepared, through
// poison_unused()) each part's capacity beyond what the prepared code needs; what the
// interpreter may read (the code and its padding, the bits up to jumpdest_words(n), the tables'
// n + 1 entries) stays addressable. ASan tracks 8-byte granules, so up to 7 bytes after a part's
// end (or before a part that starts inside a granule) may stay addressable. No-op without ASan.
//
// Invariant: a frame buffer starts 64-byte aligned, so offsets from its start have the same
// alignment as the addresses; no component asks for more than 64.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "allocation.hpp"
#include "analysis.hpp"
#include "config.hpp"
#include "instruction_array.hpp"
#include "jumpdest_analysis.hpp"
#include "monotonic_arena.hpp"
#include "padded_code.hpp"
#include "sanitizer.hpp"
#include "stack.hpp"
#include "tier.hpp"
#include "traits.hpp"

namespace evmalloc
{
/// Alignment of every frame buffer, and the multiple its size is rounded up to.
inline constexpr std::size_t frame_buffer_alignment = 64;

/// The analysis a frame holds: Analysis in an instruction frame, JumpdestAnalysis in a
/// jumpdest frame.
template <class Traits>
using FrameAnalysis = std::conditional_t<is_instruction_frame<Traits>, Analysis, JumpdestAnalysis>;

/// The code part of a frame buffer (or of a shared entry), carved for code of n bytes.
template <class Traits, bool = is_instruction_frame<Traits>>
struct CodeSpans
{
    AnalysisBuffers analysis;                       ///< for n bytes
    std::span<typename Traits::Op> ops;             ///< n + 1 entries
    std::span<typename Traits::Metadata> metadata;  ///< n + 1 entries
    std::span<std::uint8_t> padded_code;            ///< n + PaddedCode::padding bytes
};

template <class Traits>
struct CodeSpans<Traits, false>
{
    std::span<std::uint64_t> jumpdest_bits;  ///< JumpdestAnalysis::jumpdest_words(n) words
    std::span<std::uint8_t> padded_code;     ///< n + PaddedCode::padding bytes
};

/// The components carved from one frame buffer: the stack, then the code part's spans.
template <class Traits = DefaultTraits, bool = is_instruction_frame<Traits>>
struct FrameSpans
{
    std::span<typename Traits::Word> stack;         ///< Stack<Word>::capacity words
    AnalysisBuffers analysis;                       ///< for code_capacity(tier) bytes
    std::span<typename Traits::Op> ops;             ///< code_capacity(tier) + 1 entries
    std::span<typename Traits::Metadata> metadata;  ///< code_capacity(tier) + 1 entries
    std::span<std::uint8_t> padded_code;            ///< code_capacity(tier) + 33 bytes

    FrameSpans(std::span<typename Traits::Word> s, const CodeSpans<Traits>& c) noexcept
      : stack{s}, analysis{c.analysis}, ops{c.ops}, metadata{c.metadata}, padded_code{c.padded_code}
    {}
};

template <class Traits>
struct FrameSpans<Traits, false>
{
    std::span<typename Traits::Word> stack;  ///< Stack<Word>::capacity words
    std::span<std::uint64_t> jumpdest_bits;  ///< for code_capacity(tier) bytes
    std::span<std::uint8_t> padded_code;     ///< code_capacity(tier) + 33 bytes

    FrameSpans(std::span<typename Traits::Word> s, const CodeSpans<Traits>& c) noexcept
      : stack{s}, jumpdest_bits{c.jumpdest_bits}, padded_code{c.padded_code}
    {}
};

namespace detail
{
template <class Traits>
constexpr void check_traits() noexcept
{
    using Word = typename Traits::Word;
    static_assert(Component<Stack<Word>> && Component<PaddedCode>);
    static_assert(alignof(Word) <= frame_buffer_alignment, "a frame buffer is 64-byte aligned");
    if constexpr (is_instruction_frame<Traits>)
    {
        using Op = typename Traits::Op;
        using Metadata = typename Traits::Metadata;
        static_assert(!std::is_void_v<Metadata>, "an instruction frame needs a Metadata type");
        static_assert(Component<Analysis> && Component<InstructionArray<Op>> &&
                      Component<InstructionArray<Metadata>>);
        static_assert(
            alignof(Op) <= frame_buffer_alignment && alignof(Metadata) <= frame_buffer_alignment,
            "a frame buffer is 64-byte aligned: no component may need more");
    }
    else
        static_assert(Component<JumpdestAnalysis>);
}

/// The code part's allocations for code of n bytes, in carving order.
template <class Traits>
constexpr auto code_part_allocations(std::size_t n) noexcept
{
    check_traits<Traits>();
    if constexpr (is_instruction_frame<Traits>)
        return std::array{Analysis::calculate_allocation(n),
            InstructionArray<typename Traits::Op>::calculate_allocation(n),
            InstructionArray<typename Traits::Metadata>::calculate_allocation(n),
            PaddedCode::calculate_allocation(n)};
    else
        return std::array{
            JumpdestAnalysis::calculate_allocation(n), PaddedCode::calculate_allocation(n)};
}

/// Where the code part starts in a frame buffer: after the stack, at the code part's alignment.
template <class Traits>
inline constexpr std::size_t code_part_offset = align_up(
    Stack<typename Traits::Word>::calculate_allocation(0).size,
    code_part_allocations<Traits>(0)[0].alignment);

/// The end of the code part for code of n bytes, laid out from `start` (64-byte aligned).
template <class Traits>
constexpr std::size_t code_part_end(std::size_t start, std::size_t n) noexcept
{
    std::size_t end = start;
    for (const Allocation& a : code_part_allocations<Traits>(n))
        end = align_up(end, a.alignment) + a.size;
    return end;
}

template <class T>
std::span<T> typed(void* p, std::size_t count) noexcept
{
    return {static_cast<T*>(p), p != nullptr ? count : 0};
}

/// A bump over raw bytes for carve_code(), with no sanitizer annotations of its own (a
/// MonotonicArena's destructor would unpoison the whole buffer again).
struct Carver
{
    std::byte* cursor;
    std::byte* end;
    void* try_allocate(std::size_t bytes, std::size_t alignment) noexcept
    {
        return bump(cursor, end, bytes, alignment);
    }
};

/// Makes the first `count` elements of `part` (at most all of them) addressable under ASan.
template <class T>
void unpoison_first(std::span<T> part, std::size_t count) noexcept
{
    EVMALLOC_UNPOISON(part.data(), (count < part.size() ? count : part.size()) * sizeof(T));
}

/// The one carving step: takes the code part for code of n bytes from `bump` (anything with
/// MonotonicArena's try_allocate), in code_part_allocations order. Nothing is read or written.
/// \requires the bump has room for it all (checked in debug builds).
template <class Traits, class Bump>
CodeSpans<Traits> carve_code(Bump& bump, std::size_t n) noexcept
{
    const auto parts = code_part_allocations<Traits>(n);
    std::array<void*, parts.size()> at{};
    for (std::size_t i = 0; i < parts.size(); ++i)
    {
        at[i] = bump.try_allocate(parts[i].size, parts[i].alignment);
        EVMALLOC_ASSERT(at[i] != nullptr);
    }
    if constexpr (is_instruction_frame<Traits>)
    {
        auto* const analysis = static_cast<std::byte*>(at[0]);
        return {Analysis::carve({analysis, analysis != nullptr ? parts[0].size : 0}, n),
            typed<typename Traits::Op>(at[1], InstructionArray<typename Traits::Op>::entries(n)),
            typed<typename Traits::Metadata>(
                at[2], InstructionArray<typename Traits::Metadata>::entries(n)),
            typed<std::uint8_t>(at[3], parts[3].size)};
    }
    else
        return {typed<std::uint64_t>(at[0], JumpdestAnalysis::jumpdest_words(n)),
            typed<std::uint8_t>(at[1], parts[1].size)};
}

/// Fills a carved code part for `code` (code.size() <= what it was carved for): the padded
/// copy, then the analysis of that copy (and, in an instruction frame, ops and metadata
/// through `table`, which a jumpdest frame does not take).
template <class Traits, class... Table>
Result<FrameAnalysis<Traits>> prepare_code(const CodeSpans<Traits>& spans,
    std::span<const std::uint8_t> code, const Table&... table) noexcept
{
    const std::span<const std::uint8_t> padded = PaddedCode::copy(code, spans.padded_code);
    if constexpr (is_instruction_frame<Traits>)
        return Analysis::prepare(padded, spans.analysis, table..., spans.ops, spans.metadata);
    else
        return JumpdestAnalysis::prepare(padded, spans.jumpdest_bits);
}
template <class Traits>
inline constexpr std::array<std::size_t, tier_count> frame_buffer_sizes = [] {
    std::array<std::size_t, tier_count> sizes{};
    for (const Tier t : all_tiers)
        sizes[tier_index(t)] =
            align_up(code_part_end<Traits>(code_part_offset<Traits>, code_capacity(t)),
                frame_buffer_alignment);
    return sizes;
}();
}  // namespace detail

/// The bytes of the code part alone for code of n bytes, rounded up to 64: what a shared
/// analysis entry holds besides its header.
template <class Traits = DefaultTraits>
[[nodiscard]] constexpr std::size_t code_part_bytes(std::size_t n) noexcept
{
    return align_up(detail::code_part_end<Traits>(0, n), frame_buffer_alignment);
}

/// The bytes of a frame buffer carved for code of up to n bytes: the stack and the code part,
/// rounded up to 64. \requires n <= Analysis::max_analysable_size.
template <class Traits = DefaultTraits>
[[nodiscard]] constexpr std::size_t frame_buffer_bytes(std::size_t n) noexcept
{
    return align_up(
        detail::code_part_end<Traits>(detail::code_part_offset<Traits>, n), frame_buffer_alignment);
}

/// The bytes of one frame buffer of `tier`: frame_buffer_bytes(code_capacity(tier)), from a
/// compile-time table. No more.
template <class Traits = DefaultTraits>
[[nodiscard]] constexpr std::size_t frame_buffer_size(Tier tier) noexcept
{
    return detail::frame_buffer_sizes<Traits>[tier_index(tier)];
}

/// The bytes of a buffer that holds the stack alone (a frame whose code part is a shared
/// analysis entry): 1024 words, rounded up to 64.
template <class Traits = DefaultTraits>
[[nodiscard]] constexpr std::size_t stack_buffer_size() noexcept
{
    return align_up(
        Stack<typename Traits::Word>::calculate_allocation(0).size, frame_buffer_alignment);
}

/// Under AddressSanitizer: of the code part of `buffer` (everything after the stack), only
/// what code of `code_size` bytes uses of each part in `spans` stays addressable: the padded
/// code (code_size + PaddedCode::padding bytes), the jumpdest bits (jumpdest_words(code_size))
/// and, in an instruction frame, code_size + 1 entries of inst_to_pc, pc_to_inst, ops and
/// metadata. The rest is poisoned: gaps, the tail, each part's unused capacity. No-op otherwise.
/// \requires `spans` were carved from `buffer` (carve_code_part) for at least code_size bytes.
template <class Traits = DefaultTraits>
void poison_unused(
    std::span<std::byte> buffer, const CodeSpans<Traits>& spans, std::size_t code_size) noexcept
{
#if EVMALLOC_HAS_ASAN
    constexpr std::size_t start = detail::code_part_offset<Traits>;
    if (buffer.size() > start)
        EVMALLOC_POISON(buffer.data() + start, buffer.size() - start);
    if constexpr (is_instruction_frame<Traits>)
    {
        detail::unpoison_first(spans.analysis.jumpdest_bits, Analysis::jumpdest_words(code_size));
        detail::unpoison_first(spans.analysis.inst_to_pc, Analysis::table_entries(code_size));
        detail::unpoison_first(spans.analysis.pc_to_inst, Analysis::table_entries(code_size));
        detail::unpoison_first(
            spans.ops, InstructionArray<typename Traits::Op>::entries(code_size));
        detail::unpoison_first(
            spans.metadata, InstructionArray<typename Traits::Metadata>::entries(code_size));
    }
    else
        detail::unpoison_first(spans.jumpdest_bits, JumpdestAnalysis::jumpdest_words(code_size));
    detail::unpoison_first(spans.padded_code, PaddedCode::calculate_allocation(code_size).size);
#else
    static_cast<void>(buffer);
    static_cast<void>(spans);
    static_cast<void>(code_size);
#endif
}

/// The code part of a frame buffer carved for code of up to n bytes (nothing is read or
/// written). Under ASan the parts are addressable and the rest of the code part (alignment
/// gaps, the tail) is poisoned: poison_unused(buffer, spans, n).
/// \requires buffer.data() is 64-byte aligned and buffer.size() >= frame_buffer_bytes(n)
/// (checked in debug builds).
template <class Traits = DefaultTraits>
[[nodiscard]] CodeSpans<Traits> carve_code_part(std::span<std::byte> buffer, std::size_t n) noexcept
{
    EVMALLOC_ASSERT(reinterpret_cast<std::uintptr_t>(buffer.data()) % frame_buffer_alignment == 0);
    EVMALLOC_ASSERT(buffer.size() >= frame_buffer_bytes<Traits>(n));
    std::byte* const start = buffer.data() + detail::code_part_offset<Traits>;
    detail::Carver carver{start, buffer.data() + buffer.size()};
    const CodeSpans<Traits> spans = detail::carve_code<Traits>(carver, n);
    EVMALLOC_ASSERT(align_up(static_cast<std::size_t>(carver.cursor - buffer.data()),
                        frame_buffer_alignment) == frame_buffer_bytes<Traits>(n));
    poison_unused<Traits>(buffer, spans, n);
    return spans;
}

/// The stack and the code part of a frame buffer of a tier chosen at run time.
/// \requires buffer.data() is 64-byte aligned and buffer.size() >= frame_buffer_size<Traits>(tier).
template <class Traits = DefaultTraits>
[[nodiscard]] FrameSpans<Traits> carve_frame(std::span<std::byte> buffer, Tier tier) noexcept
{
    using W = typename Traits::Word;
    EVMALLOC_ASSERT(buffer.size() >= frame_buffer_size<Traits>(tier));
    return {{reinterpret_cast<W*>(buffer.data()), Stack<W>::capacity},
        carve_code_part<Traits>(buffer, code_capacity(tier))};
}

/// The monotonic arena over exactly one frame buffer of tier T (its capacity fixed at compile
/// time). carve() hands out the components; anything else allocated through the arena (the
/// std::pmr face, try_allocate) comes from what is left, which is at most the final rounding.
template <Tier T, class Traits = DefaultTraits>
class FrameArena : public MonotonicArena
{
public:
    /// The bytes of one frame buffer of tier T.
    static constexpr std::size_t capacity = frame_buffer_size<Traits>(T);
    static constexpr Tier tier = T;

    /// An arena over the first `capacity` bytes of `buffer`.
    /// \requires buffer.size() >= capacity and buffer.data() is 64-byte aligned (checked in
    /// debug builds; a shorter buffer gives a shorter arena, whose carve() then fails its check).
    explicit FrameArena(std::span<std::byte> buffer) noexcept
      : MonotonicArena{buffer.first(buffer.size() < capacity ? buffer.size() : capacity)}
    {
        EVMALLOC_ASSERT(buffer.size() >= capacity);
        EVMALLOC_ASSERT(
            reinterpret_cast<std::uintptr_t>(buffer.data()) % frame_buffer_alignment == 0);
    }

    /// Carves the stack and the code part for code_capacity(T) from the start of the arena,
    /// through the same step as every frame. \requires used() == 0 (call reset() to carve again).
    [[nodiscard]] FrameSpans<Traits> carve() noexcept
    {
        using W = typename Traits::Word;
        EVMALLOC_ASSERT(used() == 0);
        const Allocation stack = Stack<W>::calculate_allocation(0);
        auto* const words = static_cast<W*>(try_allocate(stack.size, stack.alignment));
        FrameSpans<Traits> spans{{words, words != nullptr ? Stack<W>::capacity : 0},
            detail::carve_code<Traits>(*this, code_capacity(T))};
        EVMALLOC_ASSERT(align_up(used(), frame_buffer_alignment) == capacity);
        return spans;
    }
};
}  // namespace evmalloc
