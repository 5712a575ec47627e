#include "catch.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/buffer_pool.hpp>
#include <evmalloc/sanitizer.hpp>
#include <evmalloc/slot_pool.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <vector>

using evmalloc::SlotPool;
using evmalloc::test::RecordingResource;

namespace
{
bool aligned(const void* p, std::size_t a)
{
    return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

// Random acquire/release against a model: a set of live slots and the capacity the growth rule
// predicts (the pool grows only when every slot it owns is in use, by first, 2*first, 4*first …).
template <std::size_t Size, std::size_t Align>
void run_model(std::uint32_t seed, std::size_t initial_capacity)
{
    using Pool = SlotPool<Size, Align>;
    RecordingResource upstream;
    {
        Pool pool{&upstream, initial_capacity};
        std::size_t next_chunk =
            initial_capacity != 0 ? initial_capacity : Pool::default_first_chunk;
        std::size_t model_capacity = 0;
        std::size_t model_chunks = 0;
        if (initial_capacity != 0)
        {
            model_capacity = next_chunk;
            next_chunk *= 2;
            model_chunks = 1;
        }

        std::vector<std::byte*> live;
        std::set<std::byte*> live_set;
        std::mt19937 rng{seed};
        std::uint8_t stamp = 0;
        for (int step = 0; step < 20000; ++step)
        {
            const bool grow_phase = (step / 2500) % 2 == 0;
            const bool do_acquire = live.empty() || rng() % 100 < (grow_phase ? 70U : 30U);
            if (do_acquire)
            {
                if (live.size() == model_capacity)
                {
                    model_capacity += next_chunk;
                    next_chunk *= 2;
                    ++model_chunks;
                }
                auto* p = static_cast<std::byte*>(pool.acquire());
                REQUIRE(aligned(p, Pool::slot_alignment));
                REQUIRE(Align <= Pool::slot_alignment);
                REQUIRE(live_set.insert(p).second);  // never handed out twice
                REQUIRE(pool.owns(p));
                // Fill the whole slot with a stamp; an overlap with another live slot would
                // break that slot's stamp, checked at its release.
                ++stamp;
                std::memset(p, stamp, Size);
                live.push_back(p);
            }
            else
            {
                const std::size_t i = rng() % live.size();
                std::byte* p = live[i];
                REQUIRE(
                    std::all_of(p, p + Size, [first = p[0]](std::byte b) { return b == first; }));
                live[i] = live.back();
                live.pop_back();
                live_set.erase(p);
                pool.release(p);
            }
            REQUIRE(pool.in_use() == live.size());
            REQUIRE(pool.capacity() == model_capacity);
            REQUIRE(pool.available() == model_capacity - live.size());
            REQUIRE(upstream.live_count() == model_chunks);
            REQUIRE(pool.bytes_reserved() == upstream.live_bytes());
        }
        for (std::byte* p : live)
            pool.release(p);
        CHECK(pool.in_use() == 0);
        CHECK(pool.available() == pool.capacity());
    }
    CHECK(upstream.report() == "");
    CHECK(upstream.deallocations() == upstream.allocations());
}
}  // namespace

TEST_CASE("SlotPool rounds slots up to hold the free-list link", "[slot_pool]")
{
    STATIC_REQUIRE(SlotPool<1, 1>::slot_size == sizeof(void*));
    STATIC_REQUIRE(SlotPool<1, 1>::slot_alignment == alignof(void*));
    STATIC_REQUIRE(SlotPool<20, 1>::slot_size == 24);
    STATIC_REQUIRE(SlotPool<32, 32>::slot_size == 32);
    STATIC_REQUIRE(SlotPool<33, 32>::slot_size == 64);
    STATIC_REQUIRE(SlotPool<100, 64>::slot_size == 128);
    STATIC_REQUIRE(SlotPool<4096, 64>::slot_size == 4096);
    STATIC_REQUIRE(SlotPool<4096, 64>::default_first_chunk == 8);
    STATIC_REQUIRE(sizeof(evmalloc::detail::ChunkHeader) == 2 * sizeof(void*));
}

TEST_CASE("SlotPool moves the free-list link only in slots of a multiple of 4 KiB", "[slot_pool]")
{
    STATIC_REQUIRE_FALSE(SlotPool<32, 32>::spread_links);
    STATIC_REQUIRE_FALSE(SlotPool<256, 64>::spread_links);
    STATIC_REQUIRE_FALSE(SlotPool<1024, 64>::spread_links);
    STATIC_REQUIRE_FALSE(SlotPool<4000, 8>::spread_links);
    STATIC_REQUIRE(SlotPool<4096, 64>::spread_links);
    STATIC_REQUIRE(SlotPool<4096, 8>::spread_links);
    STATIC_REQUIRE(SlotPool<8192, 64>::spread_links);
    STATIC_REQUIRE(SlotPool<12288, 64>::spread_links);
}

namespace
{
struct Links
{
    std::vector<std::size_t> offsets;  ///< per slot: where its link was written
    std::set<std::size_t> sets;        ///< the L1 sets (address bits 6..11) of the links
    std::set<std::size_t> slot_sets;   ///< the L1 sets of the slots' first bytes
};

/// Releases 64 slots filled with 0xAA and finds, per slot, the offset of the first byte the
/// release changed: where the pool wrote the free-list link. Under ASan also checks that a
/// released slot is poisoned whole and an acquired one addressable whole.
template <std::size_t Size, std::size_t Align>
Links link_offsets(std::size_t initial_capacity)
{
    SlotPool<Size, Align> pool{std::pmr::new_delete_resource(), initial_capacity};
    std::vector<std::byte*> slots;
    for (int i = 0; i < 64; ++i)
    {
        auto* p = static_cast<std::byte*>(pool.acquire());
        std::memset(p, 0xAA, Size);
        slots.push_back(p);
    }
    for (std::byte* p : slots)
        pool.release(p);

    Links links;
    for (std::byte* p : slots)
    {
#if EVMALLOC_HAS_ASAN
        for (std::size_t i = 0; i < Size; i += 8)
            REQUIRE(__asan_address_is_poisoned(p + i));
#endif
        EVMALLOC_UNPOISON(p, Size);
        std::size_t i = 0;
        while (i < Size && p[i] == std::byte{0xAA})
            ++i;
        EVMALLOC_POISON(p, Size);
        links.offsets.push_back(i);
        links.sets.insert((reinterpret_cast<std::uintptr_t>(p) + i) / 64 % 64);
        links.slot_sets.insert(reinterpret_cast<std::uintptr_t>(p) / 64 % 64);
    }
    // Handed out again (LIFO: in reverse), each slot is addressable whole and works.
    for (std::size_t k = slots.size(); k-- > 0;)
    {
        auto* p = static_cast<std::byte*>(pool.acquire());
        REQUIRE(p == slots[k]);
#if EVMALLOC_HAS_ASAN
        REQUIRE(__asan_region_is_poisoned(p, Size) == nullptr);
#endif
        std::memset(p, 0x11, Size);
    }
    for (std::byte* p : slots)
        pool.release(p);
    return links;
}
}  // namespace

TEST_CASE("free-list links of 4 KiB slots move from slot to slot; small slots keep offset 0",
    "[slot_pool]")
{
    SECTION("64 consecutive 4096-byte slots (one chunk): 64 different L1 sets")
    {
        const Links links = link_offsets<4096, 64>(64);
        for (const std::size_t off : links.offsets)
        {
            CHECK(off % 64 == 0);  // at the start of a cache line inside the slot
            CHECK(off + sizeof(void*) <= 4096);
        }
        CHECK(links.slot_sets.size() == 1);  // the slots' first bytes all share one set
        CHECK(links.sets.size() == 64);
    }
    SECTION("4096-byte slots over several chunks: the link still moves")
    {
        CHECK(link_offsets<4096, 64>(0).sets.size() >= 32);  // the 32-slot chunk alone gives 32
    }
    SECTION("small slots keep the link at offset 0")
    {
        for (const std::size_t off : link_offsets<256, 64>(0).offsets)
            CHECK(off == 0);
        for (const std::size_t off : link_offsets<1024, 64>(64).offsets)
            CHECK(off == 0);
    }
}

TEST_CASE("SlotPool random acquire/release matches the model", "[slot_pool]")
{
    run_model<1, 1>(1, 0);
    run_model<20, 1>(2, 0);
    run_model<24, 8>(3, 5);
    run_model<32, 32>(4, 0);
    run_model<64, 64>(5, 1);
    run_model<256, 64>(6, 0);
    run_model<4096, 64>(7, 0);
}

TEST_CASE("SlotPool grows geometrically, one chunk at a time", "[slot_pool]")
{
    RecordingResource upstream;
    {
        SlotPool<32, 32> pool{&upstream, 10};
        CHECK(pool.capacity() == 10);
        CHECK(upstream.allocations() == 1);
        std::vector<void*> held;
        for (int i = 0; i < 10 + 20 + 40 + 1; ++i)
            held.push_back(pool.acquire());
        CHECK(pool.capacity() == 10 + 20 + 40 + 80);
        const auto log = upstream.log();
        REQUIRE(log.size() == 4);
        for (std::size_t i = 1; i < log.size(); ++i)
        {
            CHECK(log[i].allocate);
            CHECK(log[i].alignment == 32);
            // Each chunk's slots double; the header (and debug bitmap) is small beside them.
            CHECK(log[i].bytes > 2 * (log[i - 1].bytes - 64));
            CHECK(log[i].bytes < 2 * log[i - 1].bytes + 64);
        }
        for (void* p : held)
            pool.release(p);
    }
    CHECK(upstream.check());
}

TEST_CASE("SlotPool hands out the slot released last first", "[slot_pool]")
{
    SlotPool<64, 64> pool{std::pmr::new_delete_resource()};
    void* a = pool.acquire();
    void* b = pool.acquire();
    pool.release(a);
    pool.release(b);
    CHECK(pool.acquire() == b);
    CHECK(pool.acquire() == a);
    pool.release(a);
    pool.release(b);
}

TEST_CASE("SlotPool takes nothing upstream until asked", "[slot_pool]")
{
    RecordingResource upstream;
    {
        SlotPool<16, 16> pool{&upstream};
        CHECK(pool.capacity() == 0);
        CHECK(pool.utilization() == 0.0);
        CHECK(pool.bytes_reserved() == 0);
        CHECK(upstream.allocations() == 0);
        void* p = pool.acquire();
        CHECK(pool.capacity() == SlotPool<16, 16>::default_first_chunk);
        CHECK(pool.utilization() == Approx(1.0 / static_cast<double>(pool.capacity())));
        pool.release(p);
    }
    CHECK(upstream.check());
}

TEST_CASE("try_acquire: only a released slot, never upstream", "[slot_pool]")
{
    RecordingResource upstream;
    {
        SlotPool<64, 64> pool{&upstream};
        CHECK(pool.try_acquire() == nullptr);  // nothing released yet: no growth either
        CHECK(upstream.allocations() == 0);
        CHECK(pool.in_use() == 0);

        void* a = pool.acquire();  // grows: one chunk, slots still to carve
        void* b = pool.acquire();
        CHECK(pool.try_acquire() == nullptr);  // carving is acquire()'s work
        CHECK(pool.in_use() == 2);

        pool.release(a);
        pool.release(b);
        const std::size_t capacity = pool.capacity();
        void* c = pool.try_acquire();
        CHECK(c == b);             // LIFO, like acquire()
        std::memset(c, 0x5A, 64);  // unpoisoned and writable (ASan would report otherwise)
        CHECK(pool.try_acquire() == a);
        CHECK(pool.try_acquire() == nullptr);
        CHECK(pool.in_use() == 2);
        CHECK(pool.capacity() == capacity);
        CHECK(upstream.allocations() == 1);

        // A slot from try_acquire is in use like any other (releasing it twice aborts in debug
        // builds: tests/death/contracts.cpp).
        pool.release(c);
        pool.release(a);
        CHECK(pool.in_use() == 0);
    }
    CHECK(upstream.check());
}

TEST_CASE("try_acquire through a BufferPool", "[slot_pool]")
{
    RecordingResource upstream;
    {
        evmalloc::BufferPool<256> pool{&upstream, 4};
        CHECK(pool.try_acquire() == nullptr);  // four slots, none released yet
        std::byte* p = pool.acquire();
        pool.release(p);
        CHECK(pool.try_acquire() == p);
        CHECK(pool.in_use() == 1);
        pool.release(p);
    }
    CHECK(upstream.check());
}
