// Code parts: the two built-in ones model CodePart and keep today's sizes; a part defined here
// (as an interpreter would define its own) goes through every path a built-in one does: the
// frame's own buffer, the pool, both caches under both keys, pins shared by frames, the budget,
// and failures (an upstream's, the part's own) that leave everything as it was.
#include "catch.hpp"
#include "support/cache_check.hpp"
#include "support/pool_state.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/code_part.hpp>
#include <evmalloc/frame_layout.hpp>
#include <evmalloc/stack_frame.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <thread>
#include <type_traits>
#include <vector>

using evmalloc::Allocation;
using evmalloc::AnalysisCache;
using evmalloc::AnalysisCacheConfig;
using evmalloc::CodeHash;
using evmalloc::ConcurrentAnalysisCache;
using evmalloc::Errc;
using evmalloc::FramePool;
using evmalloc::FramePoolConfig;
using evmalloc::Result;
using evmalloc::StackFrame;
using evmalloc::Tier;
using evmalloc::test::cache_state;
using evmalloc::test::CacheState;
using evmalloc::test::failure_styles;
using evmalloc::test::live_blocks;
using evmalloc::test::RecordingResource;
using evmalloc::test::state_of;

namespace
{
using Code = std::vector<std::uint8_t>;

/// A part an interpreter might define: per pc, the cost of its byte from the interpreter's table
/// (16-byte aligned u32s), then the padded code. It indexes pcs in 16 bits, so it refuses code
/// above 65535 bytes with its own error.
struct CostPart
{
    using Table = std::array<std::uint32_t, 256>;
    static constexpr std::size_t max_size = 65535;

    struct View
    {
        const std::uint8_t* code_data;
        std::uint32_t code_size;
        std::uint32_t total;  ///< the sum of every byte's cost
        const std::uint32_t* cost;

        [[nodiscard]] std::span<const std::uint8_t> code() const noexcept
        {
            return {code_data, code_size};
        }
    };

    static constexpr std::size_t cost_bytes(std::size_t n) noexcept
    {
        return evmalloc::align_up(n * sizeof(std::uint32_t), 16);
    }

    [[nodiscard]] static constexpr Allocation calculate_allocation(std::size_t n) noexcept
    {
        return {cost_bytes(n) + n + evmalloc::PaddedCode::padding, 16, false};
    }

    [[nodiscard]] static Result<View> prepare(std::span<std::byte> storage,
        std::span<const std::uint8_t> code, const Table& table) noexcept
    {
        if (code.size() > max_size)
            return Errc::code_too_large;
        if (storage.size() < calculate_allocation(code.size()).size)
            return Errc::buffer_too_small;
        auto* const cost = reinterpret_cast<std::uint32_t*>(storage.data());
        auto* const copy =
            reinterpret_cast<std::uint8_t*>(storage.data() + cost_bytes(code.size()));
        const auto padded =
            evmalloc::PaddedCode::copy(code, {copy, code.size() + evmalloc::PaddedCode::padding});
        std::uint32_t total = 0;
        for (std::size_t pc = 0; pc < code.size(); ++pc)
        {
            cost[pc] = table[code[pc]];
            total += cost[pc];
        }
        return View{padded.data(), static_cast<std::uint32_t>(code.size()), total, cost};
    }
};
static_assert(evmalloc::CodePart<CostPart>);

struct CostTraits
{
    using Word = evmalloc::Word;
    using CodePart = CostPart;
};

/// A part without a table: the padded code and nothing else.
struct CopyPart
{
    using Table = void;
    struct View
    {
        std::span<const std::uint8_t> padded;
        [[nodiscard]] std::span<const std::uint8_t> code() const noexcept { return padded; }
    };
    [[nodiscard]] static constexpr Allocation calculate_allocation(std::size_t n) noexcept
    {
        return evmalloc::PaddedCode::calculate_allocation(n);
    }
    [[nodiscard]] static Result<View> prepare(
        std::span<std::byte> storage, std::span<const std::uint8_t> code) noexcept
    {
        if (storage.size() < calculate_allocation(code.size()).size)
            return Errc::buffer_too_small;
        return View{evmalloc::PaddedCode::copy(
            code, {reinterpret_cast<std::uint8_t*>(storage.data()), storage.size()})};
    }
};
static_assert(evmalloc::CodePart<CopyPart>);

struct CopyTraits
{
    using Word = evmalloc::Word;
    using CodePart = CopyPart;
};

using CostFrame = StackFrame<CostTraits>;

const CostPart::Table& cost_table()
{
    static const CostPart::Table table = [] {
        CostPart::Table t{};
        for (std::size_t i = 0; i < t.size(); ++i)
            t[i] = static_cast<std::uint32_t>(3 + i % 7);
        return t;
    }();
    return table;
}

Code make_code(std::size_t n, std::uint32_t seed)
{
    Code code(n);
    std::uint32_t x = seed * 2654435761U + 1;
    for (auto& b : code)
    {
        x = x * 1664525U + 1013904223U;
        b = static_cast<std::uint8_t>(x >> 24);
    }
    return code;
}

CodeHash hash_of(std::uint32_t k)
{
    CodeHash h{};
    for (std::size_t i = 0; i < h.bytes.size(); ++i)
        h.bytes[i] = static_cast<std::uint8_t>((k * 97 + i * 13) & 0xff);
    return h;
}

/// The view shows `code` as CostPart's prepare() describes it through `table`.
bool shows(const CostPart::View& v, const Code& code, const CostPart::Table& table)
{
    if (v.code().size() != code.size() ||
        (!code.empty() && std::memcmp(v.code().data(), code.data(), code.size()) != 0))
        return false;
    if (v.code().data() == code.data())
        return false;  // the part owns its copy
    std::uint32_t total = 0;
    for (std::size_t pc = 0; pc < code.size(); ++pc)
    {
        if (v.cost[pc] != table[code[pc]])
            return false;
        total += table[code[pc]];
    }
    for (std::size_t i = 0; i < evmalloc::PaddedCode::padding; ++i)
    {
        if (v.code().data()[code.size() + i] != 0)
            return false;
    }
    return v.total == total && reinterpret_cast<std::uintptr_t>(v.cost) % 16 == 0;
}

constexpr std::size_t entry_block(std::size_t n) noexcept
{
    return evmalloc::detail::CacheEntry<CostTraits>::code_part_offset() +
           evmalloc::code_part_bytes<CostTraits>(n);
}
}  // namespace

TEST_CASE("the built-in code parts model CodePart and keep the frames' sizes", "[code_part]")
{
    using evmalloc::InstructionCodePart;
    using evmalloc::JumpdestCodePart;
    STATIC_REQUIRE(evmalloc::CodePart<JumpdestCodePart>);
    STATIC_REQUIRE(evmalloc::CodePart<InstructionCodePart<const void*, std::uint64_t>>);
    STATIC_REQUIRE(std::is_same_v<evmalloc::FrameCodePart<evmalloc::DefaultTraits>,
        InstructionCodePart<const void*, std::uint64_t>>);
    STATIC_REQUIRE(
        std::is_same_v<evmalloc::FrameCodePart<evmalloc::JumpdestTraits>, JumpdestCodePart>);
    STATIC_REQUIRE(std::is_same_v<evmalloc::FrameCodePart<CostTraits>, CostPart>);
    STATIC_REQUIRE(!evmalloc::is_instruction_frame<CostTraits>);
    STATIC_REQUIRE(std::is_same_v<CostFrame::OpTable, CostPart::Table>);
    STATIC_REQUIRE(std::is_same_v<CostFrame::AnalysisType, CostPart::View>);
    STATIC_REQUIRE(!evmalloc::CodePart<int>);
    // The built-in parts' blocks are their pieces laid out in order, 8-aligned: 4096 bytes of
    // code take 33,296 + 32,776 + 32,776 + 4,129 bytes (frame_layout_test has the frame sums).
    CHECK(InstructionCodePart<const void*, std::uint64_t>::calculate_allocation(4096) ==
          Allocation{33296 + 32776 + 32776 + 4129, 8, false});
    CHECK(JumpdestCodePart::calculate_allocation(4096) == Allocation{520 + 4129, 8, false});
    // An interpreter-defined part is sized by its own calculate_allocation.
    for (const Tier t : evmalloc::all_tiers)
    {
        const std::size_t n = evmalloc::code_capacity(t);
        CHECK(evmalloc::frame_buffer_size<CostTraits>(t) ==
              evmalloc::align_up(32768 + CostPart::calculate_allocation(n).size, 64));
        CHECK(evmalloc::frame_buffer_size<CopyTraits>(t) == evmalloc::align_up(32768 + n + 33, 64));
    }
    CHECK(evmalloc::code_part_bytes<CostTraits>(100) == evmalloc::align_up(400 + 100 + 33, 64));
}

TEST_CASE("an interpreter-defined code part on the frame's own buffer: prepared, reused, refused",
    "[code_part]")
{
    RecordingResource rec;
    FramePool<CostTraits> pool{&rec};
    const Code code = make_code(3000, 1);
    const CostPart::Table& table = cost_table();

    const std::byte* first_buffer = nullptr;
    {
        auto frame = CostFrame::init(code.size(), pool);
        REQUIRE(frame.has_value());
        CHECK(frame->buffer_size() == evmalloc::frame_buffer_size<CostTraits>(Tier::kb4));
        REQUIRE(frame->prepare(code, table).has_value());
        REQUIRE(frame->is_prepared());
        CHECK(shows(frame->code_part(), code, table));
        CHECK(&frame->analysis() == &frame->code_part());
        // The part's block starts after the stack, and is laid out for the real size.
        const auto* const buffer = reinterpret_cast<const std::byte*>(frame->stack().data());
        CHECK(reinterpret_cast<const std::byte*>(frame->code_part().cost) == buffer + 32768);
        CHECK(frame->code_part().code().data() ==
              reinterpret_cast<const std::uint8_t*>(buffer + 32768 + CostPart::cost_bytes(3000)));
        first_buffer = buffer;

        // Prepared again with other code that fits; code larger than the tier is refused and
        // the previous preparation stays.
        const Code other = make_code(17, 2);
        REQUIRE(frame->prepare(other, table).has_value());
        CHECK(shows(frame->code_part(), other, table));
        CHECK(frame->prepare(make_code(5000, 3), table).error() == Errc::code_too_large);
        CHECK(frame->is_prepared());
        CHECK(shows(frame->code_part(), other, table));

        // A moved frame carries the view.
        CostFrame moved{std::move(*frame)};
        CHECK(moved.is_prepared());
        CHECK(shows(moved.code_part(), other, table));
    }
    const auto after_first = state_of(pool);
    const std::size_t allocations = rec.allocations();
    for (int i = 0; i < 5; ++i)
    {
        auto frame = CostFrame::init(code.size(), pool);
        REQUIRE(frame.has_value());
        CHECK(reinterpret_cast<const std::byte*>(frame->stack().data()) == first_buffer);  // LIFO
        REQUIRE(frame->prepare(code, table).has_value());
        CHECK(shows(frame->code_part(), code, table));
    }
    CHECK(rec.allocations() == allocations);  // steady state: nothing from upstream
    CHECK(state_of(pool) == after_first);

    // The part's own refusal reaches the caller; the frame is not prepared then.
    {
        FramePool<CostTraits> big_pool{&rec};
        auto frame = CostFrame::init(70000, big_pool);
        REQUIRE(frame.has_value());
        CHECK(frame->prepare(make_code(70000, 4), table).error() == Errc::code_too_large);
        CHECK_FALSE(frame->is_prepared());
        REQUIRE(frame->prepare(code, table).has_value());
        CHECK(shows(frame->code_part(), code, table));
    }

    // A part without a table: prepare(code).
    FramePool<CopyTraits> copy_pool{&rec};
    auto copy = StackFrame<CopyTraits>::init(code.size(), copy_pool);
    REQUIRE(copy.has_value());
    REQUIRE(copy->prepare(code).has_value());
    CHECK(copy->code_part().code().size() == code.size());
    CHECK(std::memcmp(copy->code_part().code().data(), code.data(), code.size()) == 0);
}

TEMPLATE_TEST_CASE("an interpreter-defined code part shared by a cache: pinned, shared, budgeted",
    "[code_part]", AnalysisCache<CostTraits>, ConcurrentAnalysisCache<CostTraits>)
{
    RecordingResource rec;
    FramePool<CostTraits> pool{&rec};
    const Code a = make_code(1000, 5);
    const Code b = make_code(2000, 6);
    const CostPart::Table& table = cost_table();
    const CostPart::Table other_table = [] {
        CostPart::Table t{};
        t.fill(1);
        return t;
    }();
    TestType cache{&rec, AnalysisCacheConfig{.max_bytes = entry_block(1000) + entry_block(2000),
                             .admission = evmalloc::Admission::always}};

    {
        // Trusted key: one entry, shared by two frames (one pin each), the stack alone in each
        // frame's own buffer.
        auto f1 = CostFrame::init(a, hash_of(1), table, pool, cache);
        REQUIRE(f1.has_value());
        auto f2 = CostFrame::init(a, hash_of(1), table, pool, cache);
        REQUIRE(f2.has_value());
        CHECK(f1->is_prepared());
        CHECK(shows(f1->code_part(), a, table));
        CHECK(f1->code_part().cost == f2->code_part().cost);
        CHECK(f1->buffer_size() == evmalloc::stack_buffer_size<CostTraits>());
        CHECK(cache_state(cache) == CacheState{1, entry_block(1000), 1, 1, 0, 1});
        // The verified key and another table are other entries.
        auto f3 = CostFrame::init(a, table, pool, cache);
        REQUIRE(f3.has_value());
        CHECK(f3->code_part().cost != f1->code_part().cost);
        auto f4 = CostFrame::init(a, other_table, pool, cache);
        REQUIRE(f4.has_value());
        CHECK(shows(f4->code_part(), a, other_table));
        CHECK(cache.entries() == 3);
        CHECK(cache.pinned() == 3);
        // Over budget while pinned: nothing pinned is freed.
        CHECK(cache.bytes() == 3 * entry_block(1000));
        CHECK(cache.evictions() == 0);
        // A code hash cached for another code size.
        CHECK(
            CostFrame::init(b, hash_of(1), table, pool, cache).error() == Errc::code_hash_mismatch);
    }
    // Unpinned: the budget keeps what fits, least recently used first out.
    CHECK(cache.pinned() == 0);
    CHECK(cache.bytes() <= cache.config().max_bytes);
    CHECK(cache.evictions() == 1);
    {
        auto hit = CostFrame::init(a, table, pool, cache);  // the verified entry, kept
        REQUIRE(hit.has_value());
        CHECK(shows(hit->code_part(), a, table));
    }
    auto big = CostFrame::init(b, hash_of(2), table, pool, cache);
    REQUIRE(big.has_value());
    CHECK(shows(big->code_part(), b, table));
    CHECK(cache.bytes() <= cache.config().max_bytes);

    // The part's own refusal: its error, nothing inserted, nothing held.
    const CacheState before = cache_state(cache);
    const auto pool_before = state_of(pool);
    const std::size_t live = rec.live_count();
    CHECK(CostFrame::init(make_code(70000, 7), hash_of(3), table, pool, cache).error() ==
          Errc::code_too_large);
    CHECK(CostFrame::init(make_code(70000, 7), table, pool, cache).error() == Errc::code_too_large);
    CHECK(cache_state(cache) == before);
    CHECK(state_of(pool) == pool_before);
    CHECK(rec.live_count() == live);

    // A failing upstream at every step of a miss: out_of_memory, nothing changed.
    for (const auto style : failure_styles)
    {
        INFO(evmalloc::test::name_of(style));
        TestType failing{rec.upstream(style)};
        FramePool<CostTraits> failing_pool{rec.upstream(style)};
        std::size_t failures = 0;
        for (std::size_t k = 0; k < 4; ++k)
        {
            rec.fail_after(k);
            const CacheState c0 = cache_state(failing);
            const auto p0 = state_of(failing_pool);
            const auto entries0 = live_blocks(rec, evmalloc::frame_buffer_alignment);
            auto f = CostFrame::init(b, hash_of(9), table, failing_pool, failing);
            rec.stop_failing();
            if (f.has_value())
            {
                CHECK(shows(f->code_part(), b, table));
                continue;
            }
            ++failures;
            CHECK(f.error() == Errc::out_of_memory);
            CHECK(cache_state(failing) == c0);
            CHECK(state_of(failing_pool) == p0);
            // No entry and no frame buffer is left (only the bucket array may stay).
            const auto entries = live_blocks(rec, evmalloc::frame_buffer_alignment);
            CHECK(entries.count == entries0.count);
            CHECK(entries.bytes == entries0.bytes);
        }
        CHECK(failures >= 2);  // the bucket array, the entry, the stack buffer: each failed once
    }
}

TEST_CASE("an interpreter-defined code part in a concurrent cache: threads share its entries",
    "[code_part]")
{
    ConcurrentAnalysisCache<CostTraits> cache;
    std::vector<Code> codes;
    for (std::uint32_t k = 0; k < 8; ++k)
        codes.push_back(make_code(100 + 37 * k, k));
    std::atomic<std::size_t> wrong{0};
    std::vector<std::thread> threads;
    for (std::uint32_t t = 0; t < 4; ++t)
    {
        threads.emplace_back([&, t] {
            FramePool<CostTraits> pool;
            for (std::uint32_t i = 0; i < 200; ++i)
            {
                const Code& code = codes[(i * 5 + t) % codes.size()];
                auto frame = (i % 2 == 0) ? CostFrame::init(code, hash_of((i * 5 + t) % 8),
                                                cost_table(), pool, cache)
                                          : CostFrame::init(code, cost_table(), pool, cache);
                if (!frame || !shows(frame->code_part(), code, cost_table()))
                    ++wrong;
            }
        });
    }
    for (auto& th : threads)
        th.join();
    CHECK(wrong == 0);
    CHECK(cache.entries() == 16);  // 8 codes under 2 keys
    CHECK(cache.pinned() == 0);
}
