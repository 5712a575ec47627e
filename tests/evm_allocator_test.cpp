// EvmAllocator: configuration, routing by (size, alignment), exact statistics, upstream
// failure, the debug check of mismatched deallocations, the transaction arena, and std::pmr
// containers on both, with a recording upstream that sees every byte come back.
#include <evmalloc/evm_allocator.hpp>
#include <evmalloc/stack_frame.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory_resource>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "catch.hpp"
#include "support/assert_capture.hpp"
#include "support/op_table.hpp"
#include "support/recording_resource.hpp"

using evmalloc::AllocationStatistics;
using evmalloc::AllocatorConfig;
using evmalloc::EvmAllocator;
using evmalloc::EvmAllocatorWithoutStatistics;
using evmalloc::Route;
using evmalloc::test::AssertCapture;
using evmalloc::test::RecordingResource;

namespace
{
/// Pool configuration with no preallocation, so every pool count starts at zero.
AllocatorConfig lazy_pools()
{
    AllocatorConfig c = AllocatorConfig::optimized();
    c.pool_preallocation_size = 0;
    c.enable_arena_allocation = false;
    return c;
}

bool aligned(const void* p, std::size_t alignment)
{
    return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

/// in_use() of the five pools, in route order.
std::vector<std::size_t> pools_in_use(EvmAllocator& a)
{
    return {a.address_pool().in_use(), a.word_pool().in_use(), a.buffer_pool<256>().in_use(),
        a.buffer_pool<1024>().in_use(), a.buffer_pool<4096>().in_use()};
}
std::vector<std::size_t> pools_capacity(EvmAllocator& a)
{
    return {a.address_pool().capacity(), a.word_pool().capacity(), a.buffer_pool<256>().capacity(),
        a.buffer_pool<1024>().capacity(), a.buffer_pool<4096>().capacity()};
}

/// The route whose pool owns p (Route::upstream when no pool does).
Route owner(EvmAllocator& a, const void* p)
{
    if (a.address_pool().owns(p))
        return Route::address;
    if (a.word_pool().owns(p))
        return Route::word;
    if (a.buffer_pool<256>().owns(p))
        return Route::buffer256;
    if (a.buffer_pool<1024>().owns(p))
        return Route::buffer1024;
    if (a.buffer_pool<4096>().owns(p))
        return Route::buffer4096;
    return Route::upstream;
}

#if defined(__cpp_exceptions)  // for the upstream failure test
void check_same_counters(const AllocationStatistics& a, const AllocationStatistics& b)
{
    CHECK(a.total_allocations == b.total_allocations);
    CHECK(a.total_deallocations == b.total_deallocations);
    CHECK(a.total_bytes_allocated == b.total_bytes_allocated);
    CHECK(a.total_bytes_deallocated == b.total_bytes_deallocated);
    CHECK(a.current_bytes == b.current_bytes);
    CHECK(a.peak_bytes == b.peak_bytes);
    CHECK(a.reserved_bytes == b.reserved_bytes);
    CHECK(a.size_distribution == b.size_distribution);
}
#endif
}  // namespace

TEST_CASE("AllocatorConfig: optimized() and minimal()", "[evm_allocator]")
{
    constexpr AllocatorConfig o = AllocatorConfig::optimized();
    STATIC_REQUIRE(o.enable_pool_allocation);
    STATIC_REQUIRE(o.enable_arena_allocation);
    STATIC_REQUIRE(o.enable_frame_allocation);
    STATIC_REQUIRE(o.enable_statistics);
    STATIC_REQUIRE(o.alignment_optimization);
    STATIC_REQUIRE(o.pool_preallocation_size == 64 * 1024);
    STATIC_REQUIRE(o.arena_size == 1024 * 1024);
    STATIC_REQUIRE(o.frame_pool_size == 256);

    constexpr AllocatorConfig m = AllocatorConfig::minimal();
    STATIC_REQUIRE_FALSE(m.enable_pool_allocation);
    STATIC_REQUIRE_FALSE(m.enable_arena_allocation);
    STATIC_REQUIRE_FALSE(m.enable_frame_allocation);
    STATIC_REQUIRE_FALSE(m.enable_statistics);
    STATIC_REQUIRE_FALSE(m.alignment_optimization);
}

TEST_CASE("optimized() preallocates the pools and the arena's first chunk", "[evm_allocator]")
{
    RecordingResource up;
    {
        EvmAllocator a{AllocatorConfig::optimized(), &up};
        // Five pool chunks and one arena chunk, nothing else.
        CHECK(up.allocations() == 6);
        const std::size_t share = 64 * 1024 / 5;
        CHECK(a.address_pool().capacity() == share / EvmAllocator::AddressPool::slot_size);
        CHECK(a.word_pool().capacity() == share / 32);
        CHECK(a.buffer_pool<256>().capacity() == share / 256);
        CHECK(a.buffer_pool<1024>().capacity() == share / 1024);
        CHECK(a.buffer_pool<4096>().capacity() == share / 4096);
        CHECK(a.arena().reserved() == 1024 * 1024);
        CHECK(a.arena().retained_size() == 1024 * 1024);
        CHECK(a.frames().config().retain_per_tier == 256);
        CHECK(a.frames().config().max_frames == 1025);
        CHECK(a.counting());
        CHECK(up.live_count() == 6);
    }
    CHECK(up.check());
}

TEST_CASE("routing: each size and alignment class lands where documented", "[evm_allocator]")
{
    RecordingResource up;
    EvmAllocator a{lazy_pools(), &up};

    struct Case
    {
        std::size_t bytes;
        std::size_t alignment;
        Route route;
    };
    const Case cases[] = {
        {0, 1, Route::address},
        {1, 1, Route::address},
        {20, 1, Route::address},
        {20, 8, Route::address},
        {16, 16, Route::word},
        {21, 1, Route::word},
        {32, 32, Route::word},
        {8, 32, Route::word},
        {33, 1, Route::buffer256},
        {20, 64, Route::buffer256},
        {256, 64, Route::buffer256},
        {257, 8, Route::buffer1024},
        {1024, 16, Route::buffer1024},
        {1025, 8, Route::buffer4096},
        {4096, 64, Route::buffer4096},
        {4097, 8, Route::upstream},
        {100000, 16, Route::upstream},
        {8, 128, Route::upstream},
        {300, 4096, Route::upstream},
    };
    for (const Case& c : cases)
    {
        INFO("bytes " << c.bytes << " alignment " << c.alignment);
        CHECK(a.route(c.bytes, c.alignment) == c.route);

        const auto before = pools_in_use(a);
        const std::size_t upstream_before = up.allocations();
        void* p = a.allocate(c.bytes, c.alignment);
        CHECK(aligned(p, c.alignment));
        auto after = pools_in_use(a);
        CHECK(owner(a, p) == c.route);
        if (c.route == Route::upstream)
        {
            CHECK(after == before);
            CHECK(up.allocations() == upstream_before + 1);
            CHECK(up.is_live(p));
        }
        else
        {
            auto expected = before;
            ++expected[static_cast<std::size_t>(c.route)];
            CHECK(after == expected);
        }
        std::memset(p, 0xab, c.bytes);
        a.deallocate(p, c.bytes, c.alignment);
        CHECK(pools_in_use(a) == before);
        if (c.route == Route::upstream)
            CHECK_FALSE(up.is_live(p));
    }
    CHECK(up.errors().empty());
}

TEST_CASE(
    "routing: alignment_optimization off sends over-aligned requests upstream", "[evm_allocator]")
{
    RecordingResource up;
    AllocatorConfig c = lazy_pools();
    c.alignment_optimization = false;
    EvmAllocator a{c, &up};
    CHECK(a.route(32, 32) == Route::upstream);
    CHECK(a.route(200, 64) == Route::upstream);
    CHECK(a.route(32, 16) == Route::word);
    CHECK(a.route(200, 16) == Route::buffer256);

    void* p = a.allocate(32, 32);
    CHECK(aligned(p, 32));
    CHECK(up.is_live(p));
    CHECK(a.word_pool().in_use() == 0);
    a.deallocate(p, 32, 32);
    CHECK(up.check());
}

TEST_CASE("unsupported alignments go upstream, aligned", "[evm_allocator]")
{
    RecordingResource up;
    EvmAllocator a{lazy_pools(), &up};
    for (const std::size_t alignment :
        {std::size_t{128}, std::size_t{256}, std::size_t{4096}, std::size_t{8192}})
    {
        for (const std::size_t bytes :
            {std::size_t{1}, std::size_t{32}, std::size_t{256}, std::size_t{5000}})
        {
            void* p = a.allocate(bytes, alignment);
            CHECK(aligned(p, alignment));
            CHECK(up.is_live(p));
            a.deallocate(p, bytes, alignment);
        }
    }
    CHECK(pools_capacity(a) == std::vector<std::size_t>(5, 0));
    CHECK(up.check());
}

TEST_CASE("minimal(): every request reaches upstream exactly once", "[evm_allocator]")
{
    RecordingResource up;
    EvmAllocator a{AllocatorConfig::minimal(), &up};
    CHECK(up.allocations() == 0);  // nothing preallocated
    CHECK_FALSE(a.counting());

    const std::size_t sizes[] = {0, 1, 20, 32, 100, 256, 1000, 4096, 70000};
    std::vector<void*> live;
    for (const std::size_t n : sizes)
    {
        const std::size_t before = up.allocations();
        void* p = a.allocate(n, 8);
        CHECK(up.allocations() == before + 1);
        const auto log = up.log();
        CHECK(log.back().allocate);
        CHECK(log.back().p == p);
        CHECK(log.back().bytes == n);
        CHECK(log.back().alignment == 8);
        live.push_back(p);
    }
    CHECK(pools_capacity(a) == std::vector<std::size_t>(5, 0));
    for (std::size_t i = 0; i < live.size(); ++i)
    {
        const std::size_t before = up.deallocations();
        a.deallocate(live[i], sizes[i], 8);
        CHECK(up.deallocations() == before + 1);
    }
    CHECK(up.allocations() == std::size(sizes));
    CHECK(up.check());

    // Statistics were off: the counters saw nothing, the snapshot says so.
    const auto s = a.statistics();
    CHECK_FALSE(s.enabled);
    CHECK(s.total_allocations == 0);
}

TEST_CASE("statistics: exact for a known sequence of requests", "[evm_allocator][statistics]")
{
    RecordingResource up;
    EvmAllocator a{lazy_pools(), &up};
    const std::size_t addr_slot = EvmAllocator::AddressPool::slot_size;

    void* p20 = a.allocate(20, 1);       // address
    void* p32 = a.allocate(32, 32);      // word
    void* p100 = a.allocate(100, 8);     // buffer256
    void* p256 = a.allocate(256, 8);     // buffer256, medium
    void* p700 = a.allocate(700, 16);    // buffer1024
    void* p4000 = a.allocate(4000, 64);  // buffer4096
    void* p9000 = a.allocate(9000, 8);   // upstream, large

    auto s = a.statistics();
    CHECK(s.enabled);
    CHECK(s.total_allocations == 7);
    CHECK(s.total_deallocations == 0);
    const std::uint64_t requested = 20 + 32 + 100 + 256 + 700 + 4000 + 9000;
    CHECK(s.total_bytes_allocated == requested);
    CHECK(s.current_bytes == requested);
    CHECK(s.peak_bytes == requested);
    const std::uint64_t reserved = addr_slot + 32 + 256 + 256 + 1024 + 4096 + 9000;
    CHECK(s.reserved_bytes == reserved);
    CHECK(s.size_distribution == evmalloc::SizeDistribution{3, 3, 1});
    CHECK(s.fragmentation() ==
          Approx(1.0 - static_cast<double>(requested) / static_cast<double>(reserved)));
    REQUIRE(s.pool_count == 5);
    CHECK(s.pools[0].in_use == 1);
    CHECK(s.pools[2].in_use == 2);
    CHECK(s.pools[2].block_size == 256);

    a.deallocate(p9000, 9000, 8);
    a.deallocate(p4000, 4000, 64);
    s = a.statistics();
    CHECK(s.total_deallocations == 2);
    CHECK(s.total_bytes_deallocated == 13000);
    CHECK(s.current_bytes == requested - 13000);
    CHECK(s.peak_bytes == requested);  // kept after frees
    CHECK(s.reserved_bytes == reserved - 9000 - 4096);

    // A smaller peak later does not move it; a larger one does.
    void* q = a.allocate(5000, 8);
    CHECK(a.statistics().peak_bytes == requested);
    void* r = a.allocate(20000, 8);
    CHECK(a.statistics().peak_bytes == requested - 13000 + 25000);

    for (auto [ptr, n, al] : {std::tuple{p20, 20, 1}, {p32, 32, 32}, {p100, 100, 8}, {p256, 256, 8},
             {p700, 700, 16}, {q, 5000, 8}, {r, 20000, 8}})
        a.deallocate(ptr, static_cast<std::size_t>(n), static_cast<std::size_t>(al));
    s = a.statistics();
    CHECK(s.total_allocations == 9);
    CHECK(s.total_deallocations == 9);
    CHECK(s.current_bytes == 0);
    CHECK(s.reserved_bytes == 0);
    CHECK(s.total_bytes_allocated == s.total_bytes_deallocated);
    CHECK(s.size_distribution == evmalloc::SizeDistribution{3, 3, 3});
    CHECK(pools_in_use(a) == std::vector<std::size_t>(5, 0));
}

TEST_CASE("statistics: exact against a model over a seeded sequence on every route",
    "[evm_allocator][statistics]")
{
    // Requests served from a free list and requests that make a pool carve or grow take
    // different paths; each must count exactly. The model knows nothing of routes: the bytes
    // reserved come from the pool that owns the pointer (its slot), or are the request itself.
    const std::vector<std::size_t> sizes{1, 8, 20, 21, 24, 32, 33, 100, 255, 256, 257, 700, 1000,
        1024, 1025, 3000, 4095, 4096, 4097, 9000, 70000};
    const std::vector<std::size_t> alignments{1, 8, 16, 32, 64, 128};
    const auto slot_of = [](Route r, std::size_t bytes) -> std::size_t {
        switch (r)
        {
        case Route::address:
            return EvmAllocator::AddressPool::slot_size;
        case Route::word:
            return EvmAllocator::WordPool::slot_size;
        case Route::buffer256:
            return 256;
        case Route::buffer1024:
            return 1024;
        case Route::buffer4096:
            return 4096;
        case Route::upstream:
            break;
        }
        return bytes;
    };
    struct Live
    {
        void* p;
        std::size_t bytes;
        std::size_t alignment;
        std::size_t reserved;
    };

    RecordingResource up;
    {
        EvmAllocator a{lazy_pools(), &up};
        std::mt19937 rng{20240611};
        std::vector<Live> live;
        std::uint64_t allocations = 0, deallocations = 0, allocated = 0, deallocated = 0;
        std::uint64_t current = 0, peak = 0, reserved = 0;
        evmalloc::SizeDistribution classes{};
        for (int step = 0; step < 6000; ++step)
        {
            const bool grow_phase = (step / 1000) % 2 == 0;
            if (live.empty() || rng() % 100 < (grow_phase ? 65U : 35U))
            {
                const std::size_t n = sizes[rng() % sizes.size()];
                const std::size_t al = alignments[rng() % alignments.size()];
                void* p = a.allocate(n, al);
                REQUIRE(aligned(p, al));
                const std::size_t r = slot_of(owner(a, p), n);
                live.push_back({p, n, al, r});
                ++allocations;
                allocated += n;
                current += n;
                peak = std::max(peak, current);
                reserved += r;
                if (n < 256)
                    ++classes.small;
                else if (n <= 4096)
                    ++classes.medium;
                else
                    ++classes.large;
            }
            else
            {
                const std::size_t i = rng() % live.size();
                const Live l = live[i];
                live[i] = live.back();
                live.pop_back();
                a.deallocate(l.p, l.bytes, l.alignment);
                ++deallocations;
                deallocated += l.bytes;
                current -= l.bytes;
                reserved -= l.reserved;
            }
            const AllocationStatistics s = a.statistics();
            REQUIRE(s.total_allocations == allocations);
            REQUIRE(s.total_deallocations == deallocations);
            REQUIRE(s.total_bytes_allocated == allocated);
            REQUIRE(s.total_bytes_deallocated == deallocated);
            REQUIRE(s.current_bytes == current);
            REQUIRE(s.peak_bytes == peak);
            REQUIRE(s.reserved_bytes == reserved);
            REQUIRE(s.size_distribution == classes);
        }
        CHECK(peak > current);  // the sequence rose and fell
        for (const Live& l : live)
            a.deallocate(l.p, l.bytes, l.alignment);
        const AllocationStatistics s = a.statistics();
        CHECK(s.current_bytes == 0);
        CHECK(s.reserved_bytes == 0);
        CHECK(s.peak_bytes == peak);
        CHECK(pools_in_use(a) == std::vector<std::size_t>(5, 0));
    }
    CHECK(up.check());
}

TEST_CASE("statistics: typed pools and the arena are not counted as requests",
    "[evm_allocator][statistics]")
{
    EvmAllocator a;
    evmalloc::Word* w = a.word_pool().create(evmalloc::Word::from(7));
    void* x = a.arena().allocate(100, 8);
    const auto s = a.statistics();
    CHECK(s.total_allocations == 0);
    CHECK(s.pools[1].in_use == 1);
    CHECK(s.arena_bytes_used >= 100);
    CHECK(s.arena_bytes_reserved == 1024 * 1024);
    a.word_pool().destroy(w);
    static_cast<void>(x);
}

TEST_CASE("statistics off: at run time, and compiled out", "[evm_allocator][statistics]")
{
    AllocatorConfig c = lazy_pools();
    c.enable_statistics = false;
    EvmAllocator runtime_off{c};
    EvmAllocatorWithoutStatistics compiled_out{lazy_pools()};
    CHECK_FALSE(runtime_off.counting());
    CHECK_FALSE(compiled_out.counting());

    void* p = runtime_off.allocate(64, 8);
    void* q = compiled_out.allocate(64, 8);
    for (const auto& s : {runtime_off.statistics(), compiled_out.statistics()})
    {
        CHECK_FALSE(s.enabled);
        CHECK(s.total_allocations == 0);
        CHECK(s.current_bytes == 0);
        CHECK(s.pools[2].in_use == 1);  // pool usage is still reported
    }
    runtime_off.deallocate(p, 64, 8);
    compiled_out.deallocate(q, 64, 8);
}

#if defined(__cpp_exceptions)
TEST_CASE("upstream failure: bad_alloc, statistics and pools unchanged", "[evm_allocator]")
{
    RecordingResource up;
    EvmAllocator a{lazy_pools(), &up};
    void* warm = a.allocate(100, 8);  // the 256 pool has a chunk now
    const auto stats_before = a.statistics();
    const auto in_use_before = pools_in_use(a);
    const auto capacity_before = pools_capacity(a);

    up.set_failing(true);
    SECTION("a request routed upstream")
    {
        CHECK_THROWS_AS(a.allocate(10000, 8), std::bad_alloc);
        CHECK_THROWS_AS(a.allocate(8, 256), std::bad_alloc);
    }
    SECTION("a pool that must grow")
    {
        CHECK_THROWS_AS(a.allocate(20, 1), std::bad_alloc);    // address pool, empty
        CHECK_THROWS_AS(a.allocate(32, 32), std::bad_alloc);   // word pool, empty
        CHECK_THROWS_AS(a.allocate(4096, 8), std::bad_alloc);  // buffer4096, empty
    }
    up.set_failing(false);
    CHECK(up.failures() >= 2);
    check_same_counters(a.statistics(), stats_before);
    CHECK(pools_in_use(a) == in_use_before);
    CHECK(pools_capacity(a) == capacity_before);

    // Still usable afterwards.
    void* p = a.allocate(20, 1);
    void* q = a.allocate(10000, 8);
    CHECK(a.statistics().total_allocations == stats_before.total_allocations + 2);
    a.deallocate(p, 20, 1);
    a.deallocate(q, 10000, 8);
    a.deallocate(warm, 100, 8);
    CHECK(up.errors().empty());
}
#endif

TEST_CASE("a pool that grows takes a chunk from upstream, and gives it back", "[evm_allocator]")
{
    RecordingResource up;
    {
        EvmAllocator a{lazy_pools(), &up};
        std::vector<void*> words;
        for (int i = 0; i < 1000; ++i)
            words.push_back(a.allocate(32, 32));
        CHECK(a.word_pool().in_use() == 1000);
        CHECK(a.word_pool().capacity() >= 1000);
        CHECK(up.live_count() >= 1);
        CHECK(up.live_count() < 20);  // chunks, not one upstream call per word
        for (void* w : words)
            a.deallocate(w, 32, 32);
        CHECK(a.word_pool().in_use() == 0);
    }
    CHECK(up.check());
}

// A deallocation with a different size or alignment, of a pointer never handed out or a second
// time aborts in debug builds: tests/death/contracts.cpp.

TEST_CASE("an EvmAllocator destroyed with allocations live reports the leak, gives its pools back",
    "[evm_allocator]")
{
    if (!evmalloc::enable_asserts)
        EVMALLOC_SKIP("debug checks are compiled out in this build (NDEBUG)");
    RecordingResource up;
    {
        AssertCapture capture;
        {
            EvmAllocator a{lazy_pools(), &up};
            [[maybe_unused]] void* leaked = a.allocate(24, 8);  // word pool
            CHECK(capture.count() == 0);
        }
        // The allocator's report, then its word pool's, as the members are destroyed.
        REQUIRE(capture.count() == 2);
        CHECK(capture.messages()[0].find("still live") != std::string::npos);
        CHECK(capture.messages()[1].find("in use") != std::string::npos);
    }
    CHECK(up.check());  // the pool's chunk went back upstream all the same
    {
        AssertCapture capture;
        {
            EvmAllocator a{lazy_pools(), &up};
            a.deallocate(a.allocate(24, 8), 24, 8);
        }
        CHECK(capture.count() == 0);  // nothing live: nothing reported
    }
}

TEST_CASE("std::pmr containers on the allocator", "[evm_allocator][pmr]")
{
    RecordingResource up;
    {
        EvmAllocator a{AllocatorConfig::optimized(), &up};
        for (int round = 0; round < 20; ++round)
        {
            std::pmr::vector<std::pmr::string> strings{&a};
            std::pmr::map<std::uint64_t, std::pmr::string> map{&a};
            for (std::uint64_t i = 0; i < 300; ++i)
            {
                strings.emplace_back(
                    static_cast<std::size_t>(i % 97 + 1), static_cast<char>('a' + i % 26));
                map.emplace(
                    i * 7919 % 1000, std::pmr::string(static_cast<std::size_t>(i % 40), 'x'));
            }
            for (std::uint64_t i = 0; i < 300; i += 3)
                map.erase(i * 7919 % 1000);
            REQUIRE(strings.size() == 300);
            CHECK(
                std::string_view{strings[96]} == std::string(97, static_cast<char>('a' + 96 % 26)));
            CHECK(map.size() == 200);
            CHECK(a.statistics().current_bytes > 0);
        }
        const auto s = a.statistics();
        CHECK(s.current_bytes == 0);
        CHECK(s.reserved_bytes == 0);
        CHECK(s.total_allocations == s.total_deallocations);
        CHECK(s.total_allocations > 20 * 300);
        CHECK(pools_in_use(a) == std::vector<std::size_t>(5, 0));
    }
    CHECK(up.check());
}

TEST_CASE("std::pmr containers on the arena over many reset cycles", "[evm_allocator][pmr][arena]")
{
    RecordingResource up;
    const bool keep_first = GENERATE(true, false);
    {
        AllocatorConfig c = AllocatorConfig::optimized();
        c.enable_arena_allocation = keep_first;
        c.arena_size = 16 * 1024;
        EvmAllocator a{c, &up};
        CHECK(a.arena().retained_size() == (keep_first ? 16 * 1024 : 0));
        for (int tx = 0; tx < 200; ++tx)
        {
            {
                std::pmr::vector<std::pmr::string> logs{&a.arena()};
                std::pmr::map<int, std::pmr::vector<std::uint8_t>> return_data{&a.arena()};
                const int n = (tx % 10 == 9) ? 2000 : 20;  // every tenth transaction spills
                for (int i = 0; i < n; ++i)
                {
                    logs.emplace_back(static_cast<std::size_t>(i % 50 + 1), 'l');
                    return_data[i].assign(
                        static_cast<std::size_t>(i % 64), static_cast<std::uint8_t>(i));
                }
                CHECK(logs.size() == static_cast<std::size_t>(n));
                CHECK(return_data.at(n - 1).size() == static_cast<std::size_t>((n - 1) % 64));
                CHECK(a.arena().used() > 0);
                if (n > 20)
                    CHECK(a.arena().chunk_count() > 1);
            }
            a.reset_arena();
            CHECK(a.arena().used() == 0);
            CHECK(a.arena().chunk_count() == (keep_first ? 1u : 0u));
            CHECK(a.arena().reserved() == (keep_first ? 16u * 1024 : 0u));
        }
        // The arena never touched the counted requests.
        CHECK(a.statistics().total_allocations == 0);
    }
    CHECK(up.check());
}

TEST_CASE("frames(): configured from AllocatorConfig", "[evm_allocator]")
{
    EvmAllocator optimized;
    CHECK(optimized.frames().config().retain_per_tier == 256);
    EvmAllocator minimal{AllocatorConfig::minimal()};
    CHECK(minimal.frames().config().retain_per_tier == 0);
    CHECK(minimal.frames().config().memory_retain_bytes == 0);
    CHECK(optimized.analyses().config().max_bytes == std::size_t{64} << 20);
    CHECK(minimal.analyses().config().max_bytes == 0);
    CHECK(&optimized.frames() != &minimal.frames());
    CHECK(optimized.frames().upstream() == std::pmr::new_delete_resource());
}

TEST_CASE("is_equal: only to itself", "[evm_allocator]")
{
    EvmAllocator a;
    EvmAllocator b;
    CHECK(a.is_equal(a));
    CHECK_FALSE(a.is_equal(b));
    CHECK_FALSE(a.is_equal(*std::pmr::new_delete_resource()));
}

TEST_CASE("analyses(): shared analyses through the allocator, reported in statistics()",
    "[evm_allocator]")
{
    const std::vector<std::uint8_t> code{0x60, 0x01, 0x5B, 0x56, 0x00};
    const auto& table = evmalloc::test::distinct_op_table();
    for (const bool minimal : {false, true})
    {
        INFO(minimal);
        EvmAllocator a{minimal ? AllocatorConfig::minimal() : AllocatorConfig::optimized()};
        for (int call = 0; call < 3; ++call)
        {
            auto frame = evmalloc::StackFrame<>::init(code, table, a.frames(), a.analyses());
            REQUIRE(frame.has_value());
            CHECK(frame->analysis().is_jumpdest(2));
            CHECK(a.analyses().pinned() ==
                  (minimal && call == 0 ? 0u : 1u));  // not admitted: unpinned
        }
        const auto s = a.statistics();
        // optimized(): analysed once, then found; minimal(): nothing kept, every call analyses
        // (on the per-frame path when not admitted, or in an entry freed when its frame goes).
        CHECK(s.analysis_cache.misses + a.analyses().not_admitted() == (minimal ? 3u : 1u));
        CHECK(s.analysis_cache.hits == (minimal ? 0u : 2u));
        CHECK(s.analysis_cache.entries == (minimal ? 0u : 1u));
        CHECK(s.analysis_cache.bytes == a.analyses().bytes());
        CHECK(s.analysis_cache.evictions == (minimal ? s.analysis_cache.misses : 0u));
        CHECK(a.analyses().pinned() == 0);
    }
}
