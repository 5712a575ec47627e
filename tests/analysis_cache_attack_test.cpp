// analysis_cache.hpp under attack: a sweep of code seen once, forced collisions on the verified
// key, a failed call's bucket array, the trusted key's release-build check. Each test here
// fails on 0.2.0 (plain LRU admission, unbounded chains, the bucket array kept, the size only).
#include "catch.hpp"
#include "support/cache_check.hpp"
#include "support/op_table.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/stack_frame.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

using evmalloc::Admission;
using evmalloc::AnalysisCache;
using evmalloc::AnalysisCacheConfig;
using evmalloc::CodeHash;
using evmalloc::ConcurrentAnalysisCache;
using evmalloc::DefaultTraits;
using evmalloc::Errc;
using evmalloc::FramePool;
using evmalloc::FramePoolConfig;
using evmalloc::JumpdestTraits;
using evmalloc::StackFrame;
using evmalloc::test::AlwaysSameHash;
using evmalloc::test::entry_bytes;
using evmalloc::test::image_of;
using evmalloc::test::live_blocks;
using evmalloc::test::random_code;
using evmalloc::test::RecordingResource;
using evmalloc::test::reference_image;

namespace
{
using Code = std::vector<std::uint8_t>;
constexpr std::size_t entry_alignment = evmalloc::frame_buffer_alignment;

struct SweepResult
{
    double hot_hit_rate;
    std::size_t sweep_entries_built;  // misses during the measured sweep calls
    std::size_t evictions;            // during the measured phase
};

// 20 hot codes called in turn, each hot call followed by 4 calls of code never seen before;
// the budget holds the hot set and two more entries. Warm-up, then 400 measured hot calls.
SweepResult sweep(Admission policy)
{
    constexpr std::size_t n = 2000;
    std::vector<Code> hot;
    for (std::uint32_t i = 0; i < 20; ++i)
        hot.push_back(random_code(n, 1 + i));
    FramePool<JumpdestTraits> pool;
    AnalysisCache<JumpdestTraits> cache{std::pmr::new_delete_resource(),
        AnalysisCacheConfig{.max_bytes = 22 * entry_bytes<JumpdestTraits>(n), .admission = policy}};
    std::uint32_t unique = 1000;
    std::size_t hot_hits = 0, sweep_misses = 0, evictions = 0;
    for (std::size_t round = 0; round < 800; ++round)
    {
        const bool measured = round >= 400;
        const std::size_t hits = cache.hits(), ev = cache.evictions();
        REQUIRE(StackFrame<JumpdestTraits>::init(hot[round % hot.size()], pool, cache));
        hot_hits += measured && cache.hits() != hits ? 1U : 0U;
        for (int k = 0; k < 4; ++k)
        {
            const Code once = random_code(n, unique++);
            const std::size_t misses = cache.misses();
            auto f = StackFrame<JumpdestTraits>::init(once, pool, cache);
            REQUIRE(f);
            CHECK(f->analysis().code().size() == n);
            sweep_misses += measured && cache.misses() != misses ? 1U : 0U;
        }
        evictions += measured ? cache.evictions() - ev : 0;
    }
    return {static_cast<double>(hot_hits) / 400.0, sweep_misses, evictions};
}
}  // namespace

TEST_CASE("a sweep of code seen once does not displace the hot set (TinyLFU); under always it "
          "does",
    "[analysis_cache]")
{
    const SweepResult tiny = sweep(Admission::tiny_lfu);
    CHECK(tiny.hot_hit_rate >= 0.95);
    CHECK(tiny.sweep_entries_built == 0);  // not admitted: no entry built
    CHECK(tiny.evictions == 0);            // and nothing evicted
    const SweepResult lru = sweep(Admission::always);
    CHECK(lru.hot_hit_rate < 0.5);  // 0.2.0's LRU: the sweep evicts the hot set
}

TEST_CASE("a call not admitted runs the per-frame path: the right analysis, no entry, nothing "
          "evicted, counted",
    "[analysis_cache]")
{
    RecordingResource upstream;
    const auto& table = evmalloc::test::distinct_op_table();
    const Code a = random_code(3000, 1), b = random_code(3000, 2);
    AnalysisCache<> cache{
        &upstream, AnalysisCacheConfig{.max_bytes = entry_bytes<DefaultTraits>(3000)}};
    FramePool<> pool;
    REQUIRE(StackFrame<>::init(a, table, pool, cache));  // room: admitted
    REQUIRE(StackFrame<>::init(a, table, pool, cache));  // a hit: a is seen twice
    const auto before = evmalloc::test::cache_state(cache);
    const auto blocks = live_blocks(upstream, entry_alignment);
    auto f = StackFrame<>::init(b, table, pool, cache);  // seen once, less than a: not admitted
    REQUIRE(f);
    CHECK(image_of(*f) == reference_image<DefaultTraits>(b, table));
    CHECK(f->buffer_size() == evmalloc::frame_buffer_size<DefaultTraits>(f->tier()));
    CHECK(cache.not_admitted() == 1);
    CHECK(evmalloc::test::cache_state(cache) == before);
    CHECK(live_blocks(upstream, entry_alignment).count == blocks.count);
    f = StackFrame<>::init(b, table, pool, cache);  // seen twice, as often as a: a tie keeps a
    CHECK(cache.not_admitted() == 2);
    f = StackFrame<>::init(b, table, pool, cache);  // three times against two: admitted
    CHECK(cache.not_admitted() == 2);
    CHECK(cache.misses() == before.misses + 1);
    f = StackFrame<>::init(b, table, pool, cache);
    CHECK(cache.hits() == before.hits + 1);
}

TEST_CASE("colliding verified keys: at most max_compared entries per fingerprint and size, the "
          "rest run on the per-frame path",
    "[analysis_cache]")
{
    constexpr std::size_t bound = evmalloc::detail::CacheCore<DefaultTraits>::max_compared;
    STATIC_REQUIRE(bound == 4);
    const auto& table = evmalloc::test::distinct_op_table();
    for (const Admission policy : {Admission::always, Admission::tiny_lfu})
    {
        AnalysisCache<DefaultTraits, AlwaysSameHash> cache{
            std::pmr::new_delete_resource(), AnalysisCacheConfig{.admission = policy}};
        FramePool<> pool;
        std::vector<Code> codes;
        for (std::uint32_t i = 0; i < 12; ++i)
            codes.push_back(random_code(5000, 50 + i));
        for (int pass = 0; pass < 2; ++pass)
        {
            for (const Code& c : codes)
            {
                auto f = StackFrame<>::init(c, table, pool, cache);
                REQUIRE(f);
                CHECK(image_of(*f) == reference_image<DefaultTraits>(c, table));
            }
        }
        CHECK(cache.entries() == bound);  // 0.2.0: 12, every one compared on each lookup
        CHECK(cache.not_admitted() == 2 * (codes.size() - bound));
        CHECK(cache.hits() == bound);
        // Another size in the same bucket is not compared: admitted.
        const Code other = random_code(5001, 99);
        REQUIRE(StackFrame<>::init(other, table, pool, cache));
        CHECK(cache.entries() == bound + 1);
    }
}

TEST_CASE("a failed first miss leaves no bucket array, and a failed miss no doubled one (both "
          "caches)",
    "[analysis_cache]")
{
    const auto& table = evmalloc::test::distinct_op_table();
    const auto check = [&](auto& cache, RecordingResource& cache_upstream) {
        RecordingResource pool_upstream;
        FramePool<> pool{&pool_upstream, FramePoolConfig{.retain_per_tier = 0}};
        pool_upstream.set_failing(true);
        CHECK(StackFrame<>::init(random_code(100, 1), table, pool, cache).error() ==
              Errc::out_of_memory);
        CHECK(cache_upstream.live_bytes() == 0);  // 0.2.0 kept the bucket array it reserved
        pool_upstream.set_failing(false);
        for (std::uint32_t i = 0; i < 64; ++i)
            REQUIRE(StackFrame<>::init(random_code(40, 100 + i), table, pool, cache));
        const std::size_t live = cache_upstream.live_bytes();
        pool_upstream.set_failing(true);
        for (std::uint32_t i = 0; i < 20; ++i)
            CHECK(StackFrame<>::init(random_code(40, 500 + i), table, pool, cache).error() ==
                  Errc::out_of_memory);
        CHECK(cache_upstream.live_bytes() == live);  // the array was not doubled
        pool_upstream.set_failing(false);
    };
    {
        RecordingResource upstream;
        AnalysisCache<> cache{&upstream};
        check(cache, upstream);
        CHECK(cache.entries() == 64);
    }
    {
        RecordingResource upstream;
        ConcurrentAnalysisCache<> cache{&upstream};
        check(cache, upstream);
        CHECK(cache.entries() == 64);
    }
}

TEST_CASE("the trusted key with other bytes of the same size: code_hash_mismatch in every build",
    "[analysis_cache]")
{
    const auto& table = evmalloc::test::distinct_op_table();
    const Code a = random_code(4000, 7);
    CodeHash h{};
    h.bytes[0] = 0x42;
    const auto check = [&](auto& cache) {
        FramePool<> pool;
        auto fa = StackFrame<>::init(a, h, table, pool, cache);
        REQUIRE(fa);
        for (const std::size_t at : {std::size_t{0}, std::size_t{31}, a.size() - 32, a.size() - 1})
        {
            Code b = a;
            b[at] ^= 0x01;
            const auto before = evmalloc::test::cache_state(cache);
            CHECK(StackFrame<>::init(b, h, table, pool, cache).error() == Errc::code_hash_mismatch);
            CHECK(evmalloc::test::cache_state(cache) == before);
        }
        CHECK(StackFrame<>::init(a, h, table, pool, cache).has_value());
    };
    AnalysisCache<> single;
    check(single);
    ConcurrentAnalysisCache<> shared;
    check(shared);
}
