// TransactionArena: the first chunk kept across reset(), geometric growth, alignment, requests
// larger than any chunk, upstream failure with nothing changed, zero-byte requests, owns(), the
// std::pmr face, the debug check of foreign deallocations and (under ASan) poisoning; a
// recording upstream sees every chunk come back.
#include <evmalloc/sanitizer.hpp>
#include <evmalloc/transaction_arena.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory_resource>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support/recording_resource.hpp"

using evmalloc::TransactionArena;
using evmalloc::test::RecordingResource;

namespace
{
bool aligned(const void* p, std::size_t alignment)
{
    return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}
}  // namespace

TEST_CASE("TransactionArena: first chunk kept, growth geometric, failure leaves it unchanged",
    "[transaction_arena]")
{
    RecordingResource up;
    {
        TransactionArena arena{4096, &up};
        CHECK(arena.reserved() == 4096);
        CHECK(arena.retained_size() == 4096);
        CHECK(up.live_count() == 1);
        void* p = arena.allocate(1000, 8);
        CHECK(aligned(p, 8));
        void* q = arena.allocate(64, 64);
        CHECK(aligned(q, 64));
        CHECK(arena.owns(p));
        CHECK(arena.chunk_count() == 1);

        // Spill: the next chunk is twice the first, the one after twice that.
        static_cast<void>(arena.allocate(4000, 8));
        CHECK(arena.chunk_count() == 2);
        CHECK(arena.reserved() == 4096 + 8192);
        static_cast<void>(arena.allocate(8000, 8));
        CHECK(arena.chunk_count() == 3);
        CHECK(arena.reserved() == 4096 + 8192 + 16384);
        // A request larger than the next step gets a chunk of its own size.
        void* huge = arena.allocate(100000, 4096);
        CHECK(aligned(huge, 4096));
        CHECK(arena.chunk_count() == 4);
        const std::size_t used = arena.used();
        const std::size_t reserved = arena.reserved();

#if defined(__cpp_exceptions)
        up.set_failing(true);
        CHECK_THROWS_AS(arena.allocate(1u << 20, 8), std::bad_alloc);
        up.set_failing(false);
#endif
        CHECK(arena.used() == used);
        CHECK(arena.reserved() == reserved);
        CHECK(arena.chunk_count() == 4);
        CHECK(up.live_count() == 4);

        arena.reset();
        CHECK(arena.chunk_count() == 1);
        CHECK(arena.reserved() == 4096);
        CHECK(arena.used() == 0);
        CHECK(up.live_count() == 1);
        void* again = arena.allocate(1000, 8);
        CHECK(again == p);  // the kept chunk, from its start
    }
    CHECK(up.check());
}

TEST_CASE("TransactionArena: reset keeps the first chunk, and the next reset grows from it again",
    "[transaction_arena]")
{
    RecordingResource up;
    {
        TransactionArena arena{8192, &up};
        const std::size_t first_live = up.live_count();
        for (int round = 0; round < 3; ++round)
        {
            auto* a = static_cast<std::byte*>(arena.allocate(100, 16));
            std::memset(a, 0x5A, 100);
            // Spill twice: chunks of 16 KiB (twice the first) and 32 KiB, each round alike
            // (8100 bytes do not fit the 8192-byte first chunk after its header and the 100).
            static_cast<void>(arena.allocate(8100, 8));
            static_cast<void>(arena.allocate(10000, 8));
            CHECK(arena.chunk_count() == 3);
            CHECK(arena.reserved() == 8192 + 16384 + 32768);
            CHECK(up.live_count() == first_live + 2);
            arena.reset();
            CHECK(arena.chunk_count() == 1);
            CHECK(arena.reserved() == 8192);
            CHECK(arena.retained_size() == 8192);
            CHECK(up.live_count() == first_live);
        }
    }
    CHECK(up.check());
}

TEST_CASE(
    "TransactionArena: without a first chunk, reset gives every chunk back", "[transaction_arena]")
{
    RecordingResource up;
    {
        TransactionArena arena{0, &up};
        CHECK(arena.reserved() == 0);
        CHECK(arena.retained_size() == 0);
        CHECK(up.allocations() == 0);
        void* p = arena.allocate(10, 1);
        CHECK(arena.chunk_count() == 1);
        CHECK(arena.reserved() == TransactionArena::min_chunk_size);
        CHECK(arena.owns(p));
        arena.reset();
        CHECK(arena.chunk_count() == 0);
        CHECK(arena.reserved() == 0);
        CHECK(up.live_count() == 0);
        CHECK_FALSE(arena.owns(p));
    }
    CHECK(up.check());
}

TEST_CASE("TransactionArena: every alignment honoured, across chunks, nothing overlaps",
    "[transaction_arena]")
{
    RecordingResource up;
    {
        TransactionArena arena{4096, &up};
        std::mt19937_64 rng{0x7A4E};
        std::uniform_int_distribution<std::size_t> size{0, 700};
        std::uniform_int_distribution<int> shift{0, 12};
        struct Block
        {
            std::byte* p;
            std::size_t n;
            std::uint8_t fill;
        };
        std::vector<Block> blocks;
        for (int i = 0; i < 2000; ++i)
        {
            const std::size_t alignment = std::size_t{1} << shift(rng);
            const std::size_t n = size(rng);
            auto* p = static_cast<std::byte*>(arena.allocate(n, alignment));
            REQUIRE(p != nullptr);
            CHECK(aligned(p, alignment));
            CHECK(arena.owns(p));
            const auto fill = static_cast<std::uint8_t>(i);
            std::memset(p, fill, n);
            blocks.push_back({p, n, fill});
        }
        CHECK(arena.chunk_count() > 1);
        // Every block still holds its own bytes: no two overlapped.
        for (const Block& b : blocks)
        {
            for (std::size_t k = 0; k < b.n; ++k)
                REQUIRE(b.p[k] == std::byte{b.fill});
        }
        // used() covers at least what was asked for, and no more than was reserved.
        std::size_t asked = 0;
        for (const Block& b : blocks)
            asked += b.n;
        CHECK(arena.used() >= asked);
        CHECK(arena.used() <= arena.reserved());
    }
    CHECK(up.check());
}

TEST_CASE("TransactionArena: large requests get a chunk that fits them", "[transaction_arena]")
{
    RecordingResource up;
    {
        TransactionArena arena{4096, &up};
        // Larger than the first chunk and than the next growth step (8 KiB).
        for (const std::size_t n : {std::size_t{5000}, std::size_t{100000}, std::size_t{3} << 20})
        {
            const std::size_t chunks = arena.chunk_count();
            auto* p = static_cast<std::byte*>(arena.allocate(n, 64));
            CHECK(aligned(p, 64));
            CHECK(arena.chunk_count() == chunks + 1);
            std::memset(p, 0xC3, n);  // all of it is usable
            CHECK(arena.owns(p));
            CHECK(arena.owns(p + n));  // the end counts
        }
        // Too large to describe: bad_alloc, nothing taken.
        const std::size_t reserved = arena.reserved();
        const std::size_t chunks = arena.chunk_count();
#if defined(__cpp_exceptions)
        CHECK_THROWS_AS(
            static_cast<void>(arena.allocate_bytes(static_cast<std::size_t>(-1) - 100, 8)),
            std::bad_alloc);
#endif
        CHECK(arena.reserved() == reserved);
        CHECK(arena.chunk_count() == chunks);
        arena.reset();
        CHECK(arena.reserved() == 4096);
    }
    CHECK(up.check());
}

TEST_CASE("TransactionArena: zero-byte requests", "[transaction_arena]")
{
    RecordingResource up;
    {
        TransactionArena arena{0, &up};
        void* z = arena.allocate(0, 1);
        CHECK(z != nullptr);
        CHECK(arena.chunk_count() == 1);
        void* z2 = arena.allocate(0, 64);
        CHECK(aligned(z2, 64));
        CHECK(arena.chunk_count() == 1);
#if defined(__cpp_exceptions)
        CHECK_THROWS_AS(
            static_cast<void>(arena.allocate_bytes(static_cast<std::size_t>(-1) - 100, 8)),
            std::bad_alloc);
#endif
        CHECK(arena.chunk_count() == 1);
        arena.reset();
        CHECK(arena.chunk_count() == 0);
        CHECK(arena.used() == 0);
    }
    CHECK(up.check());
}

TEST_CASE("TransactionArena as a std::pmr resource backs containers", "[transaction_arena][pmr]")
{
    RecordingResource up;
    {
        TransactionArena arena{16 * 1024, &up};
        for (int tx = 0; tx < 50; ++tx)
        {
            {
                std::pmr::vector<std::pmr::string> logs{&arena};
                std::pmr::map<int, std::pmr::vector<std::uint8_t>> return_data{&arena};
                const int n = (tx % 10 == 9) ? 2000 : 20;  // every tenth transaction spills
                for (int i = 0; i < n; ++i)
                {
                    logs.emplace_back(static_cast<std::size_t>(i % 50 + 1), 'l');
                    return_data[i].assign(
                        static_cast<std::size_t>(i % 64), static_cast<std::uint8_t>(i));
                }
                CHECK(logs.size() == static_cast<std::size_t>(n));
                CHECK(logs.back() ==
                      std::pmr::string(static_cast<std::size_t>((n - 1) % 50 + 1), 'l'));
                CHECK(return_data.at(n - 1).size() == static_cast<std::size_t>((n - 1) % 64));
                if (n > 20)
                    CHECK(arena.chunk_count() > 1);
            }
            // Deallocation does nothing: the containers are gone, the bytes still counted.
            CHECK(arena.used() > 0);
            arena.reset();
            CHECK(arena.used() == 0);
            CHECK(arena.chunk_count() == 1);
        }
        TransactionArena other{0, &up};
        CHECK(arena.is_equal(arena));
        CHECK_FALSE(arena.is_equal(other));
    }
    CHECK(up.check());
}

// A deallocation of a pointer it did not hand out aborts in debug builds: tests/death/contracts.cpp.

#if EVMALLOC_HAS_ASAN
TEST_CASE("TransactionArena poisons what it has not handed out", "[transaction_arena][asan]")
{
    TransactionArena arena{4096};
    auto* p = static_cast<std::byte*>(arena.allocate(64, 64));
    CHECK_FALSE(__asan_address_is_poisoned(p));
    CHECK_FALSE(__asan_address_is_poisoned(p + 63));
    CHECK(__asan_address_is_poisoned(p + 64));
    arena.reset();
    CHECK(__asan_address_is_poisoned(p));
}
#endif
