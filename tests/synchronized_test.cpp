#include "catch.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/buffer_pool.hpp>
#include <evmalloc/monotonic_arena.hpp>
#include <evmalloc/object_pool.hpp>
#include <evmalloc/synchronized.hpp>
#include <evmalloc/traits.hpp>

#include <array>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

using evmalloc::BufferPool;
using evmalloc::MonotonicArena;
using evmalloc::ObjectPool;
using evmalloc::Synchronized;
using evmalloc::Word;
using evmalloc::test::RecordingResource;

TEST_CASE("Synchronized forwards its constructor arguments", "[synchronized]")
{
    RecordingResource upstream;
    {
        Synchronized<ObjectPool<Word>> pool{&upstream, std::size_t{32}};
        CHECK(pool.with_lock([](const ObjectPool<Word>& p) { return p.capacity(); }) == 32);
        CHECK(pool.with_lock([](ObjectPool<Word>& p) { return p.upstream(); }) == &upstream);

        Synchronized<BufferPool<256>> buffers;
        CHECK(buffers.with_lock([](auto& p) { return p.upstream(); }) ==
              std::pmr::new_delete_resource());

        alignas(64) std::array<std::byte, 256> storage{};
        Synchronized<MonotonicArena> arena{std::span<std::byte>{storage}};
        void* p = arena.allocate(64, 64);
        CHECK(p == storage.data());
        CHECK(arena.with_lock([](const MonotonicArena& a) { return a.used(); }) == 64);
#if defined(__cpp_exceptions)
        CHECK_THROWS_AS(arena.allocate(512, 8), std::bad_alloc);
#endif
        CHECK(arena.is_equal(arena));
        CHECK_FALSE(arena.is_equal(buffers));
    }
    CHECK(upstream.report() == "");
}

TEST_CASE("Synchronized pool hammered from 4 threads keeps exact counts", "[synchronized][threads]")
{
    constexpr int threads = 4;
    constexpr int rounds = 3000;
    constexpr std::size_t hold = 16;  // each thread holds this many at the barrier
    RecordingResource upstream;
    {
        Synchronized<ObjectPool<Word>> pool{&upstream};
        std::pmr::memory_resource& mr = pool;
        std::barrier sync{threads};
        std::atomic<std::size_t> in_use_at_barrier{0};
        std::atomic<int> corrupted{0};

        auto worker = [&](int id) {
            std::mt19937 rng{static_cast<std::uint32_t>(id) + 1};
            std::vector<std::pair<Word*, std::uint64_t>> typed;
            std::vector<void*> pmr_slots;
            std::vector<void*> forwarded;
            for (int r = 0; r < rounds; ++r)
            {
                const auto value =
                    (static_cast<std::uint64_t>(id) << 32) | static_cast<std::uint64_t>(r);
                switch (rng() % 6)
                {
                case 0:
                case 1:
                    typed.emplace_back(
                        pool.with_lock([&](auto& p) { return p.create(Word::from(value)); }),
                        value);
                    break;
                case 2:
                    pmr_slots.push_back(mr.allocate(32, 32));
                    break;
                case 3:
                    forwarded.push_back(mr.allocate(100, 8));
                    break;
                default:
                    if (!typed.empty())
                    {
                        auto [p, v] = typed.back();
                        typed.pop_back();
                        if (*p != Word::from(v))
                            ++corrupted;
                        pool.with_lock([p = p](auto& pl) { pl.destroy(p); });
                    }
                    if (!pmr_slots.empty())
                    {
                        mr.deallocate(pmr_slots.back(), 32, 32);
                        pmr_slots.pop_back();
                    }
                    if (!forwarded.empty())
                    {
                        mr.deallocate(forwarded.back(), 100, 8);
                        forwarded.pop_back();
                    }
                }
            }
            // Trim to exactly `hold` pool slots per thread, then meet the others.
            while (typed.size() + pmr_slots.size() > hold)
            {
                if (!typed.empty())
                {
                    auto [p, v] = typed.back();
                    typed.pop_back();
                    if (*p != Word::from(v))
                        ++corrupted;
                    pool.with_lock([p = p](auto& pl) { pl.destroy(p); });
                }
                else
                {
                    mr.deallocate(pmr_slots.back(), 32, 32);
                    pmr_slots.pop_back();
                }
            }
            while (typed.size() + pmr_slots.size() < hold)
                pmr_slots.push_back(mr.allocate(32, 32));
            sync.arrive_and_wait();
            if (id == 0)
                in_use_at_barrier = pool.with_lock([](const auto& p) { return p.in_use(); });
            sync.arrive_and_wait();
            for (auto [p, v] : typed)
            {
                if (*p != Word::from(v))
                    ++corrupted;
                pool.with_lock([p = p](auto& pl) { pl.destroy(p); });
            }
            for (void* p : pmr_slots)
                mr.deallocate(p, 32, 32);
            for (void* p : forwarded)
                mr.deallocate(p, 100, 8);
        };

        std::vector<std::thread> pool_threads;
        for (int i = 0; i < threads; ++i)
            pool_threads.emplace_back(worker, i);
        for (auto& t : pool_threads)
            t.join();

        CHECK(corrupted == 0);
        CHECK(in_use_at_barrier == threads * hold);
        pool.with_lock([&](const ObjectPool<Word>& p) {
            CHECK(p.in_use() == 0);
            CHECK(p.available() == p.capacity());
        });
        // Only the pool's chunks are left upstream: every forwarded request came back.
        const auto chunks = upstream.live_count();
        const auto log = upstream.log();
        std::size_t forwarded_allocs = 0;
        for (const auto& e : log)
            if (e.allocate && e.bytes == 100)
                ++forwarded_allocs;
        CHECK(forwarded_allocs > 0);
        CHECK(upstream.allocations() - upstream.deallocations() == chunks);
        CHECK(pool.with_lock([](const auto& p) { return p.bytes_reserved(); }) ==
              upstream.live_bytes());
    }
    CHECK(upstream.report() == "");
}
