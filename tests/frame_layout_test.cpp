#include "catch.hpp"

#include <evmalloc/analysis.hpp>
#include <evmalloc/frame_layout.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <new>
#include <utility>
#include <vector>

using evmalloc::all_tiers;
using evmalloc::code_capacity;
using evmalloc::DefaultTraits;
using evmalloc::frame_buffer_size;
using evmalloc::FrameArena;
using evmalloc::FrameSpans;
using evmalloc::Tier;

namespace
{
// Traits whose arrays leave odd ends, so alignment padding between components shows.
struct alignas(64) BigWord
{
    std::uint8_t bytes[64];
};
struct OddTraits
{
    using Word = BigWord;
    using Op = std::uint8_t;
    using Metadata = std::uint32_t;
};

std::size_t round_up(std::size_t n, std::size_t a)
{
    return (n + a - 1) / a * a;
}

// The layout written out by hand from DESIGN's component sizes.
template <class Traits>
std::size_t expected_size(std::size_t n)
{
    using Word = typename Traits::Word;
    using Op = typename Traits::Op;
    using Metadata = typename Traits::Metadata;
    std::size_t end = 1024 * sizeof(Word);
    if constexpr (std::is_void_v<Op>)
        end = round_up(end, 8) + (n + 64) / 64 * 8;  // the jumpdest bits alone
    else
    {
        end = round_up(end, 8) + (n + 64) / 64 * 8 + 2 * (n + 1) * 4;
        end = round_up(end, alignof(Op)) + (n + 1) * sizeof(Op);
        end = round_up(end, alignof(Metadata)) + (n + 1) * sizeof(Metadata);
    }
    end += n + 33;  // the padded code
    return round_up(end, 64);
}

struct OddJumpdestTraits
{
    using Word = BigWord;
    using Op = void;
    using Metadata = void;
};

std::unique_ptr<std::byte[], void (*)(std::byte*)> aligned_buffer(std::size_t bytes)
{
    auto* p = static_cast<std::byte*>(::operator new (bytes, std::align_val_t{64}));
    return {p, [](std::byte* q) { ::operator delete (q, std::align_val_t{64}); }};
}

bool aligned(const void* p, std::size_t a)
{
    return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

template <class T>
const std::byte* begin_of(std::span<T> s)
{
    return reinterpret_cast<const std::byte*>(s.data());
}
template <class T>
const std::byte* end_of(std::span<T> s)
{
    return reinterpret_cast<const std::byte*>(s.data() + s.size());
}

// Every span sized for the tier, aligned, in carving order, inside [base, base + size).
template <class Traits>
void check_spans(const FrameSpans<Traits>& s, const std::byte* base, std::size_t size, Tier tier)
{
    const std::size_t n = code_capacity(tier);
    CHECK(s.stack.size() == 1024);
    CHECK(s.analysis.jumpdest_bits.size() == (n + 64) / 64);
    CHECK(s.analysis.inst_to_pc.size() == n + 1);
    CHECK(s.analysis.pc_to_inst.size() == n + 1);
    CHECK(s.ops.size() == n + 1);
    CHECK(s.metadata.size() == n + 1);
    CHECK(begin_of(s.stack) == base);
    CHECK(aligned(s.stack.data(), alignof(typename Traits::Word)));
    CHECK(aligned(s.analysis.jumpdest_bits.data(), 8));
    CHECK(aligned(s.ops.data(), alignof(typename Traits::Op)));
    CHECK(aligned(s.metadata.data(), alignof(typename Traits::Metadata)));
    // Order and no overlap: Stack | bits | inst_to_pc | pc_to_inst | Ops | Metadata.
    CHECK(end_of(s.stack) <= begin_of(s.analysis.jumpdest_bits));
    CHECK(end_of(s.analysis.jumpdest_bits) <= begin_of(s.analysis.inst_to_pc));
    CHECK(end_of(s.analysis.inst_to_pc) <= begin_of(s.analysis.pc_to_inst));
    CHECK(end_of(s.analysis.pc_to_inst) <= begin_of(s.ops));
    CHECK(end_of(s.ops) <= begin_of(s.metadata));
    CHECK(end_of(s.metadata) <= begin_of(s.padded_code));
    CHECK(s.padded_code.size() == n + 33);
    CHECK(end_of(s.padded_code) <= base + size);
    CHECK(end_of(s.padded_code) + 64 > base + size);  // only the final rounding is left over
}

template <Tier T, class Traits>
void check_arena_tier()
{
    using Arena = FrameArena<T, Traits>;
    STATIC_REQUIRE(Arena::capacity == frame_buffer_size<Traits>(T));
    auto buffer = aligned_buffer(Arena::capacity + 128);
    Arena arena{{buffer.get(), Arena::capacity + 128}};
    CHECK(arena.used() == 0);
    CHECK(arena.remaining() == Arena::capacity);  // exactly one frame buffer, not the extra
    const FrameSpans<Traits> spans = arena.carve();
    check_spans(spans, buffer.get(), Arena::capacity, T);
    CHECK(arena.used() + arena.remaining() == Arena::capacity);
    CHECK(arena.remaining() < 64);

    // The run-time path carves the very same spans.
    const FrameSpans<Traits> again =
        evmalloc::carve_frame<Traits>({buffer.get(), Arena::capacity}, T);
    CHECK(again.stack.data() == spans.stack.data());
    CHECK(again.analysis.jumpdest_bits.data() == spans.analysis.jumpdest_bits.data());
    CHECK(again.analysis.inst_to_pc.data() == spans.analysis.inst_to_pc.data());
    CHECK(again.analysis.pc_to_inst.data() == spans.analysis.pc_to_inst.data());
    CHECK(again.ops.data() == spans.ops.data());
    CHECK(again.metadata.data() == spans.metadata.data());

    arena.reset();
    CHECK(arena.used() == 0);
    CHECK(arena.carve().metadata.data() == spans.metadata.data());
}

template <class Traits>
void check_all_arenas()
{
    check_arena_tier<Tier::kb4, Traits>();
    check_arena_tier<Tier::kb8, Traits>();
    check_arena_tier<Tier::kb16, Traits>();
    check_arena_tier<Tier::kb32, Traits>();
    check_arena_tier<Tier::kb64, Traits>();
    check_arena_tier<Tier::kb128, Traits>();
}
}  // namespace

TEST_CASE("frame_buffer_size adds the components for the tier's capacity, rounded to 64",
    "[frame_layout]")
{
    for (const Tier t : all_tiers)
    {
        INFO(evmalloc::tier_name(t));
        CHECK(frame_buffer_size(t) == expected_size<DefaultTraits>(code_capacity(t)));
        CHECK(frame_buffer_size<OddTraits>(t) == expected_size<OddTraits>(code_capacity(t)));
        CHECK(frame_buffer_size(t) % 64 == 0);
        CHECK(frame_buffer_size<OddTraits>(t) % 64 == 0);
    }
    // The default traits' smallest tier, in numbers: 32 KiB stack, 33,296 B analysis,
    // 32,776 B of ops and of metadata, 4,129 B of padded code = 135,745, rounded to 135,808.
    CHECK(frame_buffer_size(Tier::kb4) == 135808);
    // A jumpdest frame: 32 KiB stack, 520 B of bits, 4,129 B of padded code = 37,417 -> 37,440.
    CHECK(frame_buffer_size<evmalloc::JumpdestTraits>(Tier::kb4) == 37440);
    for (const Tier t : all_tiers)
    {
        CHECK(frame_buffer_size<evmalloc::JumpdestTraits>(t) ==
              expected_size<evmalloc::JumpdestTraits>(code_capacity(t)));
        CHECK(frame_buffer_size<OddJumpdestTraits>(t) ==
              expected_size<OddJumpdestTraits>(code_capacity(t)));
        CHECK(frame_buffer_size<evmalloc::JumpdestTraits>(t) * 3 < frame_buffer_size(t));
    }
    // Above the largest tier, the same sum for the code's own size.
    CHECK(evmalloc::frame_buffer_bytes(1000000) == expected_size<DefaultTraits>(1000000));
    CHECK(evmalloc::frame_buffer_bytes<evmalloc::JumpdestTraits>(6000000) ==
          expected_size<evmalloc::JumpdestTraits>(6000000));
    CHECK(evmalloc::frame_buffer_bytes(code_capacity(Tier::kb16)) == frame_buffer_size(Tier::kb16));
    CHECK(evmalloc::stack_buffer_size() == 32768);
    CHECK(evmalloc::stack_buffer_size<OddTraits>() == 65536);
    // Sizes grow with the tier.
    for (std::size_t i = 1; i < all_tiers.size(); ++i)
        CHECK(frame_buffer_size(all_tiers[i]) > frame_buffer_size(all_tiers[i - 1]));
}

TEST_CASE("frame_buffer_size is a compile-time table", "[frame_layout]")
{
    constexpr std::size_t kb128 = frame_buffer_size(Tier::kb128);
    STATIC_REQUIRE(kb128 % 64 == 0);
    STATIC_REQUIRE(FrameArena<Tier::kb4>::capacity == frame_buffer_size(Tier::kb4));
    STATIC_REQUIRE(noexcept(frame_buffer_size(Tier::kb8)));
    STATIC_REQUIRE(std::is_base_of_v<std::pmr::memory_resource, FrameArena<Tier::kb4>>);
}

TEST_CASE(
    "FrameArena carves Stack | Analysis | Ops | Metadata, aligned and in order, for every tier",
    "[frame_layout]")
{
    check_all_arenas<DefaultTraits>();
    check_all_arenas<OddTraits>();
}

TEST_CASE(
    "carved analysis buffers take an analysis of code of the tier's capacity", "[frame_layout]")
{
    const Tier t = Tier::kb8;
    auto buffer = aligned_buffer(frame_buffer_size(t));
    const auto spans = evmalloc::carve_frame({buffer.get(), frame_buffer_size(t)}, t);
    std::vector<std::uint8_t> code(code_capacity(t), 0x5B);  // all JUMPDEST
    const auto analysis = evmalloc::Analysis::prepare(code, spans.analysis);
    REQUIRE(analysis.has_value());
    CHECK(analysis->instruction_count() == code.size() + 1);
    CHECK(analysis->is_jumpdest(code.size() - 1));
    // One byte more than the tier does not fit the carved tables.
    code.push_back(0x00);
    CHECK(evmalloc::Analysis::prepare(code, spans.analysis).error() ==
          evmalloc::Errc::buffer_too_small);
}

#if defined(__cpp_exceptions)
TEST_CASE("FrameArena through the std::pmr face serves only what the carve left", "[frame_layout]")
{
    using Arena = FrameArena<Tier::kb4>;
    auto buffer = aligned_buffer(Arena::capacity);
    Arena arena{{buffer.get(), Arena::capacity}};
    std::pmr::memory_resource& resource = arena;
    void* p = resource.allocate(64, 64);
    CHECK(p == buffer.get());
    CHECK(arena.used() == 64);
    CHECK_THROWS_AS(resource.allocate(Arena::capacity, 8), std::bad_alloc);
    CHECK(arena.used() == 64);
    resource.deallocate(p, 64, 64);
    arena.reset();
    (void)arena.carve();
    const auto left = arena.remaining();
    CHECK_THROWS_AS(resource.allocate(left + 1, 1), std::bad_alloc);
    CHECK(arena.remaining() == left);
}
#endif

// A short or misaligned buffer, and a second carve() without reset(), abort in debug builds:
// tests/death/contracts.cpp.
