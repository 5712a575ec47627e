// evmalloc: the layout of one frame buffer, and the arena that carves it.
//
// A frame buffer holds the stack, then the code part (code_part.hpp): one block of
// FrameCodePart<Traits>::calculate_allocation(n) bytes at its alignment, for code of up to n
// bytes. The built-in parts lay their block out as
//
//   instruction frame (InstructionCodePart)  jumpdest frame (JumpdestCodePart, Op = void)
//   Stack<Word>           1024 words         Stack<Word>          1024 words
//   Analysis buffers      (Analysis::carve)  jumpdest bits        (n + 64) / 64 words
//   InstructionArray<Op>        n + 1        PaddedCode           n + 33 bytes
//   InstructionArray<Metadata>  n + 1
//   PaddedCode                  n + 33
//
// and an interpreter-defined part (Traits::CodePart) lays out its own. A tier's buffer is
// carved for n = code_capacity(tier); frame_buffer_size() adds the stack and the part up at
// compile time (one table per traits type) and rounds the total up to 64 bytes, no more. A frame
// for code above the largest tier gets a buffer carved for the code's own size
// (frame_buffer_bytes(n)). A shared analysis entry holds the code part alone, for the code's real
// size (code_part_bytes). The part's prepare() lays its block out for the real size of the code
// it is given, so what a prepared frame uses of its block is always the first
// calculate_allocation(code.size()).size bytes. Carving goes through one step,
// detail::carve_code(), used by carve_frame() and FrameArena alike; preparing through one,
// detail::prepare_code(), used by the frames and the shared entries alike.
//
// Under AddressSanitizer a frame buffer's bytes that the code part does not use stay poisoned
// while the frame lives: the whole code part until prepare(), then (through poison_unused())
// everything after the first calculate_allocation(code.size()).size bytes of the part, so what
// the interpreter may read (for the built-in parts: the code and its padding, the bits up to
// jumpdest_words(n), the tables' n + 1 entries) stays addressable and the part's capacity beyond
// it and the tail do not. ASan tracks 8-byte granules, so up to 7 bytes after a part's
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
#include "code_part.hpp"
#include "config.hpp"
#include "monotonic_arena.hpp"
#include "sanitizer.hpp"
#include "stack.hpp"
#include "tier.hpp"
#include "traits.hpp"

namespace evmalloc
{
/// Alignment of every frame buffer, and the multiple its size is rounded up to.
inline constexpr std::size_t frame_buffer_alignment = 64;

/// The components carved from one frame buffer: the stack, then the code part's spans (for a
/// built-in part its named spans: analysis, ops, metadata, padded_code or jumpdest_bits,
/// padded_code; for an interpreter-defined part without Spans, `storage`).
template <class Traits = DefaultTraits>
struct FrameSpans : CodeSpans<Traits>
{
    std::span<typename Traits::Word> stack;  ///< Stack<Word>::capacity words

    FrameSpans(std::span<typename Traits::Word> s, const CodeSpans<Traits>& c) noexcept
      : CodeSpans<Traits>{c}, stack{s}
    {}
};

namespace detail
{
template <class Traits>
constexpr void check_traits() noexcept
{
    using Word = typename Traits::Word;
    using Part = FrameCodePart<Traits>;
    static_assert(Component<Stack<Word>>);
    static_assert(CodePart<Part>, "Traits::CodePart must model CodePart (code_part.hpp)");
    static_assert(alignof(Word) <= frame_buffer_alignment, "a frame buffer is 64-byte aligned");
    static_assert(Part::calculate_allocation(0).alignment <= frame_buffer_alignment,
        "a frame buffer is 64-byte aligned: no component may need more");
}

/// The code part's allocation for code of n bytes.
template <class Traits>
constexpr Allocation code_part_allocation(std::size_t n) noexcept
{
    check_traits<Traits>();
    return FrameCodePart<Traits>::calculate_allocation(n);
}

/// Where the code part starts in a frame buffer: after the stack, at the code part's alignment.
template <class Traits>
inline constexpr std::size_t code_part_offset = align_up(
    Stack<typename Traits::Word>::calculate_allocation(0).size,
    code_part_allocation<Traits>(0).alignment);

/// The end of the code part for code of n bytes, laid out from `start` (64-byte aligned).
template <class Traits>
constexpr std::size_t code_part_end(std::size_t start, std::size_t n) noexcept
{
    const Allocation a = code_part_allocation<Traits>(n);
    return align_up(start, a.alignment) + a.size;
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

/// The one carving step: takes the code part's block for code of n bytes from `bump` (anything
/// with MonotonicArena's try_allocate) and splits it as the part says. Nothing is read or
/// written. \requires the bump has room for it (checked in debug builds).
template <class Traits, class Bump>
CodeSpans<Traits> carve_code(Bump& bump, std::size_t n) noexcept
{
    const Allocation a = code_part_allocation<Traits>(n);
    void* const block = bump.try_allocate(a.size, a.alignment);
    EVMALLOC_ASSERT(block != nullptr);
    return carve_part<FrameCodePart<Traits>>(
        {static_cast<std::byte*>(block), block != nullptr ? a.size : 0}, n);
}

/// Fills a code part's block for `code` through the part's prepare() (with `table` when the part
/// takes one): the one preparing step of frames and shared entries.
template <class Traits, class... Table>
Result<typename FrameCodePart<Traits>::View> prepare_code(
    std::span<std::byte> block, std::span<const std::uint8_t> code, const Table&... table) noexcept
{
    return FrameCodePart<Traits>::prepare(block, code, table...);
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
/// what code of `code_size` bytes uses stays addressable: the first
/// calculate_allocation(code_size).size bytes of the part, which it lays out for the real size
/// (for the built-in parts: the jumpdest bits, the tables' code_size + 1 entries, the padded
/// code). The rest is poisoned: the part's unused capacity, the tail. No-op otherwise.
/// \requires `buffer` is a frame buffer (its code part carved for at least code_size bytes).
template <class Traits = DefaultTraits>
void poison_unused(std::span<std::byte> buffer, std::size_t code_size) noexcept
{
#if EVMALLOC_HAS_ASAN
    constexpr std::size_t start = detail::code_part_offset<Traits>;
    if (buffer.size() > start)
    {
        EVMALLOC_POISON(buffer.data() + start, buffer.size() - start);
        const std::size_t used = detail::code_part_allocation<Traits>(code_size).size;
        EVMALLOC_UNPOISON(
            buffer.data() + start, used < buffer.size() - start ? used : buffer.size() - start);
    }
#else
    static_cast<void>(buffer);
    static_cast<void>(code_size);
#endif
}

/// Under AddressSanitizer: the whole code part of `buffer` poisoned (nothing prepared yet).
/// No-op otherwise.
template <class Traits = DefaultTraits>
void poison_code_part(std::span<std::byte> buffer) noexcept
{
#if EVMALLOC_HAS_ASAN
    constexpr std::size_t start = detail::code_part_offset<Traits>;
    if (buffer.size() > start)
        EVMALLOC_POISON(buffer.data() + start, buffer.size() - start);
#else
    static_cast<void>(buffer);
#endif
}

/// The code part's block of a frame buffer carved for code of up to n bytes: what its
/// prepare() writes into. \requires as carve_code_part().
template <class Traits = DefaultTraits>
[[nodiscard]] std::span<std::byte> code_part_block(
    std::span<std::byte> buffer, std::size_t n) noexcept
{
    EVMALLOC_ASSERT(buffer.size() >= frame_buffer_bytes<Traits>(n));
    constexpr std::size_t start = detail::code_part_offset<Traits>;
    const std::size_t size = detail::code_part_allocation<Traits>(n).size;
    return {buffer.data() + start, start + size <= buffer.size() ? size : 0};
}

/// The code part of a frame buffer carved for code of up to n bytes (nothing is read or
/// written). Under ASan the part's block is addressable and the rest of the code part (the
/// tail) is poisoned: poison_unused(buffer, n).
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
    poison_unused<Traits>(buffer, n);
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
