// EvmAllocator and threads: one allocator per executing thread needs no lock; a shared one
// goes behind Synchronized. Run under ThreadSanitizer (the tsan preset) to see no race.
#include <evmalloc/evm_allocator.hpp>
#include <evmalloc/synchronized.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory_resource>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "support/recording_resource.hpp"

using evmalloc::AllocationStatistics;
using evmalloc::AllocatorConfig;
using evmalloc::EvmAllocator;
using evmalloc::Synchronized;
using evmalloc::test::RecordingResource;

namespace
{
struct Outcome
{
    std::uint64_t requests = 0;  ///< allocations this thread made through the pmr face
    std::uint64_t checksum = 0;  ///< of what it read back
    std::uint64_t expected = 0;  ///< of what it wrote
};

/// Counts the requests it passes on, so an allocator's statistics can be checked against
/// what one thread asked for, exactly.
class Counting : public std::pmr::memory_resource
{
public:
    explicit Counting(std::pmr::memory_resource* inner) : inner_{inner} {}
    std::uint64_t allocations = 0;
    std::uint64_t bytes = 0;

private:
    void* do_allocate(std::size_t n, std::size_t a) override
    {
        void* p = inner_->allocate(n, a);
        ++allocations;
        bytes += n;
        return p;
    }
    void do_deallocate(void* p, std::size_t n, std::size_t a) override
    {
        inner_->deallocate(p, n, a);
    }
    bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override
    {
        return this == &o;
    }
    std::pmr::memory_resource* inner_;
};

/// `rounds` transactions' worth of container churn on `mr`, seeded.
void churn(std::pmr::memory_resource* mr, unsigned seed, int rounds, Outcome& out)
{
    Counting counting{mr};
    for (int round = 0; round < rounds; ++round)
    {
        std::pmr::vector<std::pmr::string> names{&counting};
        std::pmr::map<std::uint32_t, std::pmr::vector<std::uint64_t>> table{&counting};
        std::uint32_t x = seed + static_cast<unsigned>(round) * 2654435761U;
        for (int i = 0; i < 64; ++i)
        {
            x = x * 1664525U + 1013904223U;
            names.emplace_back(
                static_cast<std::size_t>(x % 80 + 1), static_cast<char>('a' + x % 26));
            auto& v = table[x % 128];
            v.push_back(x);
            out.expected += x;
        }
        for (const auto& [k, v] : table)
            for (const std::uint64_t e : v)
                out.checksum += e;
        for (std::uint32_t k = 0; k < 128; k += 2)
            table.erase(k);
    }
    out.requests = counting.allocations;
}
}  // namespace

TEST_CASE("two EvmAllocators used from two threads at once",
    "[evm_allocator_threads][evm_allocator][threads]")
{
    RecordingResource up0;
    RecordingResource up1;
    {
        EvmAllocator a0{AllocatorConfig::optimized(), &up0};
        EvmAllocator a1{AllocatorConfig::optimized(), &up1};
        Outcome o0;
        Outcome o1;
        std::thread t0{[&] {
            churn(&a0, 1, 60, o0);
            std::pmr::vector<int> logs{&a0.arena()};
            logs.assign(1000, 7);
            a0.reset_arena();
        }};
        std::thread t1{[&] {
            churn(&a1, 2, 60, o1);
            std::pmr::vector<int> logs{&a1.arena()};
            logs.assign(1000, 9);
            a1.reset_arena();
        }};
        t0.join();
        t1.join();

        CHECK(o0.checksum == o0.expected);
        CHECK(o1.checksum == o1.expected);
        // Each allocator counted its own thread's requests, exactly.
        const AllocationStatistics s0 = a0.statistics();
        const AllocationStatistics s1 = a1.statistics();
        CHECK(s0.total_allocations == o0.requests);
        CHECK(s1.total_allocations == o1.requests);
        CHECK(s0.total_allocations == s0.total_deallocations);
        CHECK(s1.current_bytes == 0);
    }
    CHECK(up0.check());
    CHECK(up1.check());
}

TEST_CASE("Synchronized<EvmAllocator> shared by four threads",
    "[evm_allocator_threads][evm_allocator][threads]")
{
    RecordingResource up;
    {
        Synchronized<EvmAllocator> shared{AllocatorConfig::optimized(), &up};
        constexpr int threads = 4;
        std::vector<Outcome> outcomes(threads);
        std::atomic<int> ready{0};
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
        {
            pool.emplace_back([&, t] {
                ready.fetch_add(1);
                while (ready.load() < threads)
                {}
                churn(&shared, static_cast<unsigned>(t) * 77U + 5U, 40,
                    outcomes[static_cast<std::size_t>(t)]);
                // Typed calls and consistent reads go through with_lock.
                shared.with_lock([](EvmAllocator& a) {
                    evmalloc::Word* w = a.word_pool().create(evmalloc::Word::from(42));
                    a.word_pool().destroy(w);
                });
            });
        }
        for (auto& th : pool)
            th.join();

        std::uint64_t requests = 0;
        for (const Outcome& o : outcomes)
        {
            CHECK(o.checksum == o.expected);
            requests += o.requests;
        }
        const AllocationStatistics s =
            shared.with_lock([](const EvmAllocator& a) { return a.statistics(); });
        CHECK(s.total_allocations == requests);
        CHECK(s.total_deallocations == requests);
        CHECK(s.current_bytes == 0);
        CHECK(s.reserved_bytes == 0);
        CHECK(s.peak_bytes > 0);
        for (std::size_t i = 0; i < s.pool_count; ++i)
            CHECK(s.pools[i].in_use == 0);
    }
    CHECK(up.check());
}
