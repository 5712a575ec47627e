#include "catch.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/buffer_pool.hpp>
#include <evmalloc/sanitizer.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <new>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using evmalloc::BufferPool;
using evmalloc::test::RecordingResource;

namespace
{
bool aligned(const void* p, std::size_t a)
{
    return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

template <std::size_t N>
void check_blocks(std::uint32_t seed)
{
    using Pool = BufferPool<N>;
    STATIC_REQUIRE(Pool::block_size == N);
    STATIC_REQUIRE(Pool::alignment == (N >= 64 ? 64 : 16));
    STATIC_REQUIRE(Pool::slot_size >= N);
    RecordingResource upstream;
    {
        Pool pool{&upstream};
        std::mt19937 rng{seed};
        std::vector<std::pair<std::byte*, std::uint8_t>> live;
        std::set<std::byte*> live_set;
        for (int step = 0; step < 4000; ++step)
        {
            if (live.empty() || rng() % 100 < 55)
            {
                std::byte* p = pool.acquire();
                REQUIRE(aligned(p, Pool::alignment));
                REQUIRE(live_set.insert(p).second);
                const auto stamp = static_cast<std::uint8_t>(rng());
                std::memset(p, stamp, N);  // all N bytes are usable
                live.emplace_back(p, stamp);
            }
            else
            {
                const std::size_t i = rng() % live.size();
                const auto [p, stamp] = live[i];
                REQUIRE(
                    std::all_of(p, p + N, [s = std::byte{stamp}](std::byte b) { return b == s; }));
                live[i] = live.back();
                live.pop_back();
                live_set.erase(p);
                pool.release(p);
            }
            REQUIRE(pool.in_use() == live.size());
            REQUIRE(pool.available() == pool.capacity() - live.size());
            REQUIRE(pool.bytes_reserved() == upstream.live_bytes());
        }
        for (const auto& entry : live)
            pool.release(entry.first);
        CHECK(pool.in_use() == 0);
    }
    CHECK(upstream.report() == "");
}
}  // namespace

TEST_CASE("BufferPool standard sizes", "[buffer_pool]")
{
    STATIC_REQUIRE(evmalloc::standard_buffer_sizes.size() == 3);
    STATIC_REQUIRE(evmalloc::standard_buffer_sizes[0] == 256);
    STATIC_REQUIRE(evmalloc::standard_buffer_sizes[1] == 1024);
    STATIC_REQUIRE(evmalloc::standard_buffer_sizes[2] == 4096);
}

TEST_CASE("BufferPool blocks: aligned, distinct, whole, counts exact", "[buffer_pool]")
{
    check_blocks<1>(1);
    check_blocks<24>(2);
    check_blocks<63>(3);
    check_blocks<64>(4);
    check_blocks<100>(5);
    check_blocks<256>(6);
    check_blocks<1024>(7);
    check_blocks<4096>(8);
}

#if defined(__cpp_exceptions)
TEST_CASE("BufferPool survives upstream failure mid-growth", "[buffer_pool]")
{
    RecordingResource upstream;
    {
        BufferPool<1024> pool{&upstream};
        std::vector<std::byte*> held;
        held.push_back(pool.acquire());
        const auto first = pool.capacity();
        for (std::size_t i = 1; i < first; ++i)
            held.push_back(pool.acquire());
        const auto reserved = pool.bytes_reserved();
        upstream.set_failing(true);
        CHECK_THROWS_AS(pool.acquire(), std::bad_alloc);
        CHECK_THROWS_AS(pool.allocate(1024, 64), std::bad_alloc);
        CHECK(pool.capacity() == first);
        CHECK(pool.in_use() == first);
        CHECK(pool.bytes_reserved() == reserved);
        pool.release(held.back());
        held.back() = pool.acquire();  // served from the free list, no upstream needed
        upstream.set_failing(false);
        held.push_back(pool.acquire());
        CHECK(pool.capacity() == 3 * first);
        for (std::byte* p : held)
            pool.release(p);
    }
    CHECK(upstream.report() == "");
}
#endif

TEST_CASE(
    "BufferPool pmr face: fitting requests from the pool, others upstream", "[buffer_pool][pmr]")
{
    RecordingResource upstream;
    {
        BufferPool<256> pool{&upstream, 8};
        std::pmr::memory_resource& mr = pool;
        const auto chunks = upstream.allocations();
        void* a = mr.allocate(256, 64);
        void* b = mr.allocate(1, 1);
        void* c = mr.allocate(200, 16);
        CHECK(pool.in_use() == 3);
        CHECK(upstream.allocations() == chunks);
        void* big = mr.allocate(257, 16);
        void* over = mr.allocate(64, 128);
        CHECK(upstream.allocations() == chunks + 2);
        CHECK(upstream.is_live(big));
        CHECK(upstream.is_live(over));
        CHECK(aligned(over, 128));
        mr.deallocate(big, 257, 16);
        mr.deallocate(over, 64, 128);
        mr.deallocate(c, 200, 16);
        mr.deallocate(b, 1, 1);
        mr.deallocate(a, 256, 64);
        CHECK(pool.in_use() == 0);
        CHECK(upstream.errors().empty());

        // A pmr string of a few hundred bytes lives in the upstream, one of 200 in the pool.
        std::pmr::string s{&pool};
        s.assign(200, 'x');
        CHECK(pool.in_use() == 1);
        s.assign(300, 'y');
        CHECK(pool.in_use() == 0);
        CHECK(std::string_view{s} == std::string(300, 'y'));
    }
    CHECK(upstream.report() == "");
}

// A bad release (off a block boundary, outside the pool, twice) aborts in debug builds:
// tests/death/contracts.cpp.

#if EVMALLOC_HAS_ASAN
TEST_CASE("BufferPool poisons free blocks", "[buffer_pool][asan]")
{
    BufferPool<1024> pool;
    std::byte* a = pool.acquire();
    CHECK_FALSE(__asan_address_is_poisoned(a));
    CHECK_FALSE(__asan_address_is_poisoned(a + 1023));
    CHECK(__asan_address_is_poisoned(a + 1024));
    pool.release(a);
    CHECK(__asan_address_is_poisoned(a));
    CHECK(__asan_address_is_poisoned(a + 512));
}
#endif
