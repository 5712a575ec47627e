// evmalloc: the layout of one frame buffer, and the arena that carves it.
//
// A frame buffer holds, for the largest code of its tier (n = code_capacity(tier)), in this
// order and each at its own alignment:
//
//   Stack<Word>                   1024 words
//   Analysis buffers              jumpdest_bits | inst_to_pc | pc_to_inst (Analysis::carve)
//   InstructionArray<Op>          n + 1 entries
//   InstructionArray<Metadata>    n + 1 entries
//
// Every size comes from the components' calculate_allocation(n); frame_buffer_size() adds
// them up at compile time (one table per traits type) and rounds the total up to 64 bytes,
// no more. Carving walks the same sequence, so the sizes are stated in one place only:
// carve_frame() (tier chosen at run time, used by StackFrame) and FrameArena<T>::carve()
// (tier fixed at compile time, through the MonotonicArena) both check in debug builds that
// they used exactly what frame_buffer_size() computed, up to the final rounding.
//
// Invariant: a frame buffer starts 64-byte aligned, so offsets from its start have the same
// alignment as the addresses; no component asks for more than 64.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "allocation.hpp"
#include "analysis.hpp"
#include "config.hpp"
#include "instruction_array.hpp"
#include "monotonic_arena.hpp"
#include "stack.hpp"
#include "tier.hpp"
#include "traits.hpp"

namespace evmalloc
{
/// Alignment of every frame buffer, and the multiple its size is rounded up to.
inline constexpr std::size_t frame_buffer_alignment = 64;

/// The components carved from one frame buffer, sized for the tier's largest code.
template <class Traits = DefaultTraits>
struct FrameSpans
{
    std::span<typename Traits::Word> stack;       ///< Stack<Word>::capacity words
    AnalysisBuffers analysis;                     ///< for code_capacity(tier) bytes
    std::span<typename Traits::Op> ops;           ///< code_capacity(tier) + 1 entries
    std::span<typename Traits::Metadata> metadata;  ///< code_capacity(tier) + 1 entries
};

namespace detail
{
/// The carving sequence, stated once: calls `take(Allocation)` for Stack, Analysis, Ops and
/// Metadata, in that order, for code of n bytes, and returns the four results.
template <class Traits, class Take>
constexpr auto carve_sequence(std::size_t n, Take&& take)
{
    using Word = typename Traits::Word;
    using Op = typename Traits::Op;
    using Metadata = typename Traits::Metadata;
    static_assert(Component<Stack<Word>> && Component<Analysis> &&
                  Component<InstructionArray<Op>> && Component<InstructionArray<Metadata>>);
    static_assert(alignof(Word) <= frame_buffer_alignment && alignof(Op) <= frame_buffer_alignment &&
                      alignof(Metadata) <= frame_buffer_alignment,
                  "a frame buffer is 64-byte aligned: no component may need more");
    auto stack = take(Stack<Word>::calculate_allocation(n));
    auto analysis = take(Analysis::calculate_allocation(n));
    auto ops = take(InstructionArray<Op>::calculate_allocation(n));
    auto metadata = take(InstructionArray<Metadata>::calculate_allocation(n));
    return std::array{stack, analysis, ops, metadata};
}

/// Bytes the sequence uses for code of n bytes from a 64-byte-aligned start (before rounding).
template <class Traits>
constexpr std::size_t carved_bytes(std::size_t n) noexcept
{
    std::size_t end = 0;
    carve_sequence<Traits>(n, [&end](const Allocation& a) {
        end = align_up(end, a.alignment) + a.size;
        return end;
    });
    return end;
}

template <class Traits>
inline constexpr std::array<std::size_t, tier_count> frame_buffer_sizes = [] {
    std::array<std::size_t, tier_count> sizes{};
    for (const Tier t : all_tiers)
        sizes[tier_index(t)] = align_up(carved_bytes<Traits>(code_capacity(t)), frame_buffer_alignment);
    return sizes;
}();

/// A bump cursor with MonotonicArena's try_allocate contract, without the poisoning: the
/// run-time carving path, on a buffer that is handed out whole.
class BumpCursor
{
public:
    explicit BumpCursor(std::span<std::byte> buffer) noexcept
      : begin_{buffer.data()}, cursor_{buffer.data()}, end_{buffer.data() + buffer.size()}
    {}

    [[nodiscard]] void* try_allocate(std::size_t bytes, std::size_t alignment) noexcept
    {
        return bump(cursor_, end_, bytes, alignment);
    }

    [[nodiscard]] std::size_t used() const noexcept { return static_cast<std::size_t>(cursor_ - begin_); }

private:
    std::byte* begin_;
    std::byte* cursor_;
    std::byte* end_;
};

/// Carves the components for code of n bytes with `bump.try_allocate`, in carve_sequence
/// order. \requires the bump has room for them all (checked in debug builds).
template <class Traits, class Bump>
FrameSpans<Traits> carve_with(Bump& bump, std::size_t n) noexcept
{
    using Word = typename Traits::Word;
    using Op = typename Traits::Op;
    using Metadata = typename Traits::Metadata;
    const auto parts = carve_sequence<Traits>(n, [&bump](const Allocation& a) {
        void* const p = bump.try_allocate(a.size, a.alignment);
        EVMALLOC_ASSERT(p != nullptr);
        return std::span<std::byte>{static_cast<std::byte*>(p), p != nullptr ? a.size : 0};
    });
    return FrameSpans<Traits>{
        {reinterpret_cast<Word*>(parts[0].data()), parts[0].size() / sizeof(Word)},
        Analysis::carve(parts[1], n),
        InstructionArray<Op>::view(parts[2], parts[2].size() / sizeof(Op)),
        InstructionArray<Metadata>::view(parts[3], parts[3].size() / sizeof(Metadata)),
    };
}
}  // namespace detail

/// The bytes of one frame buffer of `tier`: the four components' calculate_allocation for
/// code_capacity(tier), each at its alignment, in carving order, rounded up to 64. No more.
template <class Traits = DefaultTraits>
[[nodiscard]] constexpr std::size_t frame_buffer_size(Tier tier) noexcept
{
    return detail::frame_buffer_sizes<Traits>[tier_index(tier)];
}

/// Carves a frame buffer of a tier chosen at run time into its components (nothing is read
/// or written). \requires buffer.data() is 64-byte aligned and buffer.size() >=
/// frame_buffer_size<Traits>(tier) (checked in debug builds, as is that the carve used
/// exactly what frame_buffer_size computed, up to the rounding).
template <class Traits = DefaultTraits>
[[nodiscard]] FrameSpans<Traits> carve_frame(std::span<std::byte> buffer, Tier tier) noexcept
{
    EVMALLOC_ASSERT(reinterpret_cast<std::uintptr_t>(buffer.data()) % frame_buffer_alignment == 0);
    EVMALLOC_ASSERT(buffer.size() >= frame_buffer_size<Traits>(tier));
    detail::BumpCursor bump{buffer};
    FrameSpans<Traits> spans = detail::carve_with<Traits>(bump, code_capacity(tier));
    EVMALLOC_ASSERT(align_up(bump.used(), frame_buffer_alignment) == frame_buffer_size<Traits>(tier));
    return spans;
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
        EVMALLOC_ASSERT(reinterpret_cast<std::uintptr_t>(buffer.data()) % frame_buffer_alignment == 0);
    }

    /// Carves Stack | Analysis buffers | Ops | Metadata for code_capacity(T) from the start of
    /// the arena. \requires used() == 0 (call reset() to carve again).
    [[nodiscard]] FrameSpans<Traits> carve() noexcept
    {
        EVMALLOC_ASSERT(used() == 0);
        FrameSpans<Traits> spans = detail::carve_with<Traits>(*this, code_capacity(T));
        EVMALLOC_ASSERT(align_up(used(), frame_buffer_alignment) == capacity);
        return spans;
    }
};
}  // namespace evmalloc
