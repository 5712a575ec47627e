// layout_report: known structs checked at compile time, then the library's own structs.
#include <evmalloc/layout.hpp>

#include <evmalloc/allocation.hpp>
#include <evmalloc/analysis.hpp>
#include <evmalloc/evm_allocator.hpp>
#include <evmalloc/frame_layout.hpp>
#include <evmalloc/frame_pool.hpp>
#include <evmalloc/slot_pool.hpp>
#include <evmalloc/statistics.hpp>
#include <evmalloc/traits.hpp>
#include <evmalloc/transaction_arena.hpp>

#include <array>
#include <cstdint>

#include "catch.hpp"

namespace
{
struct Mixed  // char, double, int: 3 + 4 bytes of holes, 8 saved by reordering
{
    char c;
    double d;
    int i;
};

struct Tight  // already sorted, no holes
{
    std::uint64_t a;
    std::uint32_t b;
    std::uint32_t c;
};

struct TailPadded  // 7 bytes of tail padding that no order removes
{
    std::uint8_t tag;
    std::array<std::uint64_t, 2> values;
};

struct alignas(32) OverAligned  // the struct's own alignment rounds it to 32
{
    std::uint64_t a;
};

struct Empty
{
};

struct Bytes  // alignment 1 everywhere: nothing to gain
{
    std::uint8_t a;
    std::array<std::uint8_t, 19> b;
};

struct Interleaved  // small fields between large ones: 8 bytes saved by reordering
{
    std::uint8_t a;
    std::uint64_t b;
    std::uint8_t c;
    std::uint32_t d;
    std::uint8_t e;
    std::uint16_t f;
};

struct Nested  // a struct field counts as one field of its own size and alignment
{
    std::uint16_t x;
    Mixed m;
    std::uint16_t y;
};
}  // namespace

using evmalloc::layout_report;
using evmalloc::LayoutReport;

TEST_CASE("layout_report of known structs, at compile time", "[layout]")
{
    STATIC_REQUIRE(layout_report<Mixed>() == LayoutReport{24, 8, 3, 11, 16, 8});
    STATIC_REQUIRE(layout_report<Tight>() == LayoutReport{16, 8, 3, 0, 16, 0});
    STATIC_REQUIRE(layout_report<TailPadded>() == LayoutReport{24, 8, 2, 7, 24, 0});
    STATIC_REQUIRE(layout_report<OverAligned>() == LayoutReport{32, 32, 1, 24, 32, 0});
    STATIC_REQUIRE(layout_report<Empty>() == LayoutReport{1, 1, 0, 1, 1, 0});
    STATIC_REQUIRE(layout_report<Bytes>() == LayoutReport{20, 1, 2, 0, 20, 0});
    // Declared: a@0 b@8 c@16 d@20 e@24 f@26 -> 28 -> 32. Sorted: b d f a c e = 8+4+2+3 = 17 -> 24.
    STATIC_REQUIRE(layout_report<Interleaved>() == LayoutReport{32, 8, 6, 15, 24, 8});
    // x@0 m@8(24) y@32 -> 34 -> 40; sorted: m x y = 28 -> 32.
    STATIC_REQUIRE(layout_report<Nested>() == LayoutReport{40, 8, 3, 12, 32, 8});
}

TEST_CASE("layout_report agrees with sizeof and alignof", "[layout]")
{
    constexpr auto r = layout_report<Mixed>();
    STATIC_REQUIRE(r.size == sizeof(Mixed));
    STATIC_REQUIRE(r.alignment == alignof(Mixed));
    STATIC_REQUIRE(r.savings == r.size - r.optimal_size);
    // Reordering Mixed as the report suggests gives the optimal size it claims.
    struct MixedSorted
    {
        double d;
        int i;
        char c;
    };
    STATIC_REQUIRE(sizeof(MixedSorted) == r.optimal_size);
    STATIC_REQUIRE(layout_report<MixedSorted>().padding_bytes == sizeof(MixedSorted) - 13);
    STATIC_REQUIRE(layout_report<MixedSorted>().savings == 0);
}

TEST_CASE("layout_report of the library's own structs", "[layout]")
{
    // The EVM word: one array of four limbs, no padding.
    STATIC_REQUIRE(layout_report<evmalloc::Word>() == LayoutReport{32, 32, 1, 0, 32, 0});
    // Allocation {size_t, size_t, bool}: 7 bytes of tail padding, which no order removes.
    STATIC_REQUIRE(layout_report<evmalloc::Allocation>().padding_bytes == 7);
    STATIC_REQUIRE(layout_report<evmalloc::Allocation>().savings == 0);
    // The report itself and the statistics' parts.
    STATIC_REQUIRE(layout_report<LayoutReport>().padding_bytes == 0);
    STATIC_REQUIRE(layout_report<evmalloc::SizeDistribution>().padding_bytes == 0);
    STATIC_REQUIRE(layout_report<evmalloc::PoolUsage>().padding_bytes == 0);
}

// The hot structs a PFR report can see (aggregates). StackFrame, Analysis, Stack, Memory and
// the pools are classes with private members: PFR cannot reflect them.
TEST_CASE("layout_report of the library's hot structs: no padding in headers", "[layout]")
{
    // Pool chunk header (after the slots of every chunk) and arena chunk header.
    STATIC_REQUIRE(
        layout_report<evmalloc::detail::ChunkHeader>() == LayoutReport{16, 8, 2, 0, 16, 0});
    STATIC_REQUIRE(layout_report<evmalloc::TransactionArena::ChunkHeader>() ==
                   LayoutReport{16, 8, 2, 0, 16, 0});
    // What a frame pool hands out, and the pooled Memory with its free-list link.
    // Buffer, Memory slot, size and a one-byte kind: 7 bytes of tail padding no order removes.
    STATIC_REQUIRE(
        layout_report<evmalloc::FramePool<>::Lease>() == LayoutReport{32, 8, 4, 7, 32, 0});
    STATIC_REQUIRE(layout_report<evmalloc::FramePool<>::MemorySlot>().padding_bytes == 0);
    STATIC_REQUIRE(layout_report<evmalloc::FramePool<>::MemorySlot>().field_count == 2);
    // Five sizes and the auto_trim flag last: only tail padding.
    STATIC_REQUIRE(layout_report<evmalloc::FramePoolConfig>() == LayoutReport{48, 8, 6, 7, 48, 0});
    STATIC_REQUIRE(layout_report<evmalloc::AnalysisBuffers>() == LayoutReport{48, 8, 3, 0, 48, 0});
    // The 20-byte address the allocator pools.
    STATIC_REQUIRE(layout_report<evmalloc::Address>() == LayoutReport{20, 1, 1, 0, 20, 0});
}

TEST_CASE("layout_report of the configuration and statistics structs", "[layout]")
{
    // Five flags and four sizes: 3 bytes of tail padding after the flags, no order does better.
    STATIC_REQUIRE(layout_report<evmalloc::AllocatorConfig>() == LayoutReport{40, 8, 9, 3, 40, 0});
    // The snapshot: 7 bytes after `enabled`, which no order removes either.
    constexpr auto s = layout_report<evmalloc::AllocationStatistics>();
    STATIC_REQUIRE(s.padding_bytes == 7);
    STATIC_REQUIRE(s.savings == 0);
}
