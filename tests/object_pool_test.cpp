#include "catch.hpp"
#include "support/assert_capture.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/object_pool.hpp>
#include <evmalloc/sanitizer.hpp>
#include <evmalloc/traits.hpp>

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <memory_resource>
#include <new>
#include <random>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

using evmalloc::ObjectPool;
using evmalloc::Word;
using evmalloc::test::AssertCapture;
using evmalloc::test::RecordingResource;

namespace
{
bool aligned(const void* p, std::size_t a)
{
    return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

struct Address
{
    std::array<std::uint8_t, 20> bytes;
};

template <std::size_t Align, std::size_t Size>
struct alignas(Align) Blob
{
    std::array<unsigned char, Size> bytes;
};

// Counts live instances; throws from the constructor when asked to (where exceptions are on).
struct Tracked
{
    static inline int alive = 0;
    std::uint64_t value;
    explicit Tracked(std::uint64_t v, bool fail = false) : value{v}
    {
#if defined(__cpp_exceptions)
        if (fail)
            throw std::runtime_error("constructor failed");
#else
        static_cast<void>(fail);
#endif
        ++alive;
    }
    Tracked(const Tracked&) = delete;
    Tracked& operator=(const Tracked&) = delete;
    ~Tracked()
    {
        --alive;
    }
};

template <class T>
void check_alignment(std::size_t count)
{
    RecordingResource upstream;
    {
        ObjectPool<T> pool{&upstream};
        std::vector<T*> held;
        for (std::size_t i = 0; i < count; ++i)
        {
            T* p = pool.acquire();
            REQUIRE(aligned(p, alignof(T)));
            held.push_back(p);
        }
        // Through the pmr face too, with the type's own alignment.
        void* q = pool.allocate(sizeof(T), alignof(T));
        CHECK(aligned(q, alignof(T)));
        CHECK(pool.owns(q));
        pool.deallocate(q, sizeof(T), alignof(T));
        for (T* p : held)
            pool.release(p);
        CHECK(pool.in_use() == 0);
    }
    CHECK(upstream.report() == "");
}
}  // namespace

TEST_CASE("ObjectPool hands out slots aligned for every alignment 1..64", "[object_pool]")
{
    check_alignment<Blob<1, 1>>(1000);
    check_alignment<Blob<2, 6>>(1000);
    check_alignment<Blob<4, 12>>(1000);
    check_alignment<Blob<8, 8>>(1000);
    check_alignment<Blob<16, 48>>(1000);
    check_alignment<Blob<32, 32>>(1000);
    check_alignment<Blob<64, 64>>(500);
    check_alignment<Blob<64, 200>>(300);
    check_alignment<Address>(1000);
    check_alignment<Word>(1000);
}

TEST_CASE("ObjectPool random acquire/release: no slot twice, counts exact", "[object_pool]")
{
    RecordingResource upstream;
    {
        ObjectPool<Word> pool{&upstream};
        std::mt19937_64 rng{42};
        std::vector<std::pair<Word*, std::uint64_t>> live;
        std::set<Word*> live_set;
        for (int step = 0; step < 20000; ++step)
        {
            if (live.empty() || rng() % 100 < 55)
            {
                const std::uint64_t value = rng();
                Word* p = pool.create(Word::from(value));
                REQUIRE(aligned(p, alignof(Word)));
                REQUIRE(live_set.insert(p).second);
                live.emplace_back(p, value);
            }
            else
            {
                const auto i = static_cast<std::size_t>(rng() % live.size());
                const auto [p, value] = live[i];
                REQUIRE(*p == Word::from(value));  // no other slot overlapped it
                live[i] = live.back();
                live.pop_back();
                live_set.erase(p);
                pool.destroy(p);
            }
            REQUIRE(pool.in_use() == live.size());
            REQUIRE(pool.available() == pool.capacity() - live.size());
            REQUIRE(pool.bytes_reserved() == upstream.live_bytes());
        }
        for (const auto& [p, value] : live)
        {
            CHECK(*p == Word::from(value));
            pool.destroy(p);
        }
        CHECK(pool.in_use() == 0);
        CHECK(pool.available() == pool.capacity());
        CHECK(pool.utilization() == 0.0);
    }
    CHECK(upstream.report() == "");
}

TEST_CASE("ObjectPool create constructs, destroy destroys", "[object_pool]")
{
    ObjectPool<Tracked> pool;
    Tracked::alive = 0;
    Tracked* a = pool.create(7U);
    Tracked* b = pool.create(8U);
    CHECK(Tracked::alive == 2);
    CHECK(a->value == 7);
    CHECK(b->value == 8);
    pool.destroy(a);
    CHECK(Tracked::alive == 1);
    CHECK(pool.in_use() == 1);
    pool.destroy(b);
    CHECK(Tracked::alive == 0);
    CHECK(pool.in_use() == 0);
}

#if defined(__cpp_exceptions)
TEST_CASE("ObjectPool create gives the slot back when the constructor throws", "[object_pool]")
{
    ObjectPool<Tracked> pool;
    Tracked::alive = 0;
    Tracked* a = pool.create(1U);
    const auto capacity = pool.capacity();
    CHECK_THROWS_AS(pool.create(2U, true), std::runtime_error);
    CHECK(pool.in_use() == 1);
    CHECK(pool.capacity() == capacity);
    CHECK(Tracked::alive == 1);
    Tracked* b = pool.create(3U);
    CHECK(b != a);
    CHECK(b->value == 3);
    pool.destroy(a);
    pool.destroy(b);
    CHECK(Tracked::alive == 0);
}
#endif

#if defined(__cpp_exceptions)
TEST_CASE("ObjectPool survives upstream failure mid-growth", "[object_pool]")
{
    RecordingResource upstream;
    {
        ObjectPool<Word> pool{&upstream, 4};
        REQUIRE(pool.capacity() == 4);
        std::vector<Word*> held;
        for (int i = 0; i < 4; ++i)
            held.push_back(pool.create(Word::from(static_cast<std::uint64_t>(i))));
        const auto reserved = pool.bytes_reserved();

        upstream.set_failing(true);
        CHECK_THROWS_AS(pool.acquire(), std::bad_alloc);
        CHECK_THROWS_AS(pool.create(Word::from(9)), std::bad_alloc);
        CHECK_THROWS_AS(pool.allocate(1000, 8), std::bad_alloc);  // forwarded request
        CHECK(upstream.failures() == 3);
        CHECK(pool.in_use() == 4);
        CHECK(pool.capacity() == 4);
        CHECK(pool.bytes_reserved() == reserved);
        CHECK(upstream.live_count() == 1);

        // Still usable while upstream is down: released slots come back.
        pool.destroy(held.back());
        held.pop_back();
        Word* again = pool.create(Word::from(77));
        CHECK(again->limbs[0] == 77);
        held.push_back(again);
        CHECK(pool.in_use() == 4);

        // After upstream recovers the pool grows (by twice the first chunk).
        upstream.stop_failing();
        for (int i = 0; i < 5; ++i)
            held.push_back(pool.create(Word::from(100 + static_cast<std::uint64_t>(i))));
        CHECK(pool.capacity() == 4 + 8);
        CHECK(pool.in_use() == 9);
        for (std::size_t i = 0; i < 3; ++i)
            CHECK(held[i]->limbs[0] == i);
        for (Word* p : held)
            pool.destroy(p);
    }
    CHECK(upstream.report() == "");
}
#endif

#if defined(__cpp_exceptions)
TEST_CASE(
    "ObjectPool: upstream failing the initial chunk throws and leaks nothing", "[object_pool]")
{
    RecordingResource upstream;
    upstream.fail_after(0);
    CHECK_THROWS_AS(ObjectPool<Word>(&upstream, 16), std::bad_alloc);
    CHECK(upstream.allocations() == 0);
    upstream.stop_failing();
    {
        ObjectPool<Word> pool{&upstream, 16};
        CHECK(pool.capacity() == 16);
    }
    CHECK(upstream.report() == "");
}
#endif

#if defined(__cpp_exceptions)
TEST_CASE("ObjectPool: failure after some successes leaves the grown part intact", "[object_pool]")
{
    RecordingResource upstream;
    {
        ObjectPool<Address> pool{&upstream, 2};
        upstream.fail_after(1);  // the second chunk succeeds, the third fails
        std::vector<Address*> held;
        for (int i = 0; i < 6; ++i)
            held.push_back(pool.acquire());
        CHECK(pool.capacity() == 6);
        CHECK_THROWS_AS(pool.acquire(), std::bad_alloc);
        CHECK(pool.capacity() == 6);
        CHECK(pool.in_use() == 6);
        upstream.stop_failing();
        held.push_back(pool.acquire());
        CHECK(pool.capacity() == 14);
        for (Address* p : held)
            pool.release(p);
    }
    CHECK(upstream.report() == "");
}
#endif

TEST_CASE(
    "ObjectPool pmr face: fitting requests from the pool, others upstream", "[object_pool][pmr]")
{
    RecordingResource upstream;
    {
        ObjectPool<Word> pool{&upstream};
        std::pmr::memory_resource& mr = pool;
        void* warm = mr.allocate(32, 32);
        const auto chunks = upstream.allocations();
        CHECK(pool.in_use() == 1);

        void* small = mr.allocate(8, 8);    // fits: smaller and less aligned
        void* exact = mr.allocate(32, 32);  // fits exactly
        CHECK(pool.owns(small));
        CHECK(pool.owns(exact));
        CHECK(pool.in_use() == 3);
        CHECK(upstream.allocations() == chunks);

        void* big = mr.allocate(33, 8);    // too big
        void* over = mr.allocate(16, 64);  // too aligned
        CHECK_FALSE(pool.owns(big));
        CHECK_FALSE(pool.owns(over));
        CHECK(upstream.is_live(big));
        CHECK(upstream.is_live(over));
        const auto log = upstream.log();
        REQUIRE(log.size() >= 2);
        CHECK(log[log.size() - 2].bytes == 33);
        CHECK(log[log.size() - 2].alignment == 8);
        CHECK(log.back().bytes == 16);
        CHECK(log.back().alignment == 64);
        CHECK(pool.in_use() == 3);

        mr.deallocate(over, 16, 64);
        mr.deallocate(big, 33, 8);
        CHECK_FALSE(upstream.is_live(big));
        mr.deallocate(exact, 32, 32);
        mr.deallocate(small, 8, 8);
        mr.deallocate(warm, 32, 32);
        CHECK(pool.in_use() == 0);
        CHECK(upstream.errors().empty());
        CHECK(mr.is_equal(pool));
        ObjectPool<Word> other{&upstream};
        CHECK_FALSE(mr.is_equal(other));
        CHECK(pool.upstream() == &upstream);
    }
    CHECK(upstream.report() == "");
}

TEST_CASE("ObjectPool backs pmr containers", "[object_pool][pmr]")
{
    RecordingResource upstream;
    {
        // List and map nodes (three pointers and a small value) fit a 64-byte slot.
        ObjectPool<std::array<std::uint64_t, 8>> pool{&upstream};
        {
            std::pmr::list<std::uint64_t> list{&pool};
            for (std::uint64_t i = 0; i < 1000; ++i)
                list.push_back(i);
            CHECK(pool.in_use() == 1000);
            std::pmr::map<int, int> map{&pool};
            for (int i = 0; i < 500; ++i)
                map[i] = 2 * i;
            CHECK(pool.in_use() == 1500);
            list.remove_if([](std::uint64_t v) { return v % 2 == 0; });
            CHECK(pool.in_use() == 1000);
            std::uint64_t expect = 1;
            for (std::uint64_t v : list)
            {
                CHECK(v == expect);
                expect += 2;
            }
            CHECK(map.at(499) == 998);

            // A vector's buffer is too big for a slot: it goes upstream.
            const auto before = upstream.allocations();
            std::pmr::vector<std::uint64_t> vec{&pool};
            vec.resize(100);
            CHECK(upstream.allocations() == before + 1);
            CHECK(pool.in_use() == 1000);
        }
        CHECK(pool.in_use() == 0);
    }
    CHECK(upstream.report() == "");
}

// A double release, a release of a foreign pointer and a destroy() of a bad pointer abort in
// debug builds: tests/death/contracts.cpp.

TEST_CASE(
    "ObjectPool debug checks: objects in use at destruction are reported", "[object_pool][debug]")
{
    if constexpr (!evmalloc::enable_asserts)
        EVMALLOC_SKIP("assertions are compiled out");
    RecordingResource upstream;
    {
        AssertCapture capture;
        {
            ObjectPool<Word> pool{&upstream};
            [[maybe_unused]] Word* leaked = pool.acquire();
            CHECK(capture.count() == 0);
        }
        CHECK(capture.count() == 1);
        REQUIRE(capture.count() == 1);
        CHECK(capture.messages()[0].find("in use") != std::string::npos);
    }
    // The pool's memory went back upstream all the same.
    CHECK(upstream.report() == "");
    {
        AssertCapture capture;
        {
            ObjectPool<Word> pool{&upstream};
            pool.release(pool.acquire());
        }
        CHECK(capture.count() == 0);  // a clean pool reports nothing
    }
}

#if EVMALLOC_HAS_ASAN
TEST_CASE("ObjectPool poisons free slots", "[object_pool][asan]")
{
    ObjectPool<Word> pool;
    Word* a = pool.acquire();
    Word* b = pool.acquire();
    CHECK_FALSE(__asan_address_is_poisoned(a));
    CHECK_FALSE(__asan_address_is_poisoned(reinterpret_cast<std::byte*>(a) + 31));
    CHECK(__asan_address_is_poisoned(b + 1));  // not carved yet
    pool.release(a);
    CHECK(__asan_address_is_poisoned(a));
    CHECK(__asan_address_is_poisoned(reinterpret_cast<std::byte*>(a) + 31));
    Word* c = pool.acquire();
    REQUIRE(c == a);
    CHECK_FALSE(__asan_address_is_poisoned(c));
    pool.release(b);
    pool.release(c);
}
#endif
