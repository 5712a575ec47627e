// Workload 6: EvmAllocator behind std::pmr containers, against the resources it replaces.
//
//   allocator/vector_strings/<impl>   a pmr::vector<pmr::string> grows to 256 strings of seeded
//                                     lengths (1..300 bytes), then is destroyed
//   allocator/map_churn/<impl>        a pmr::map<u64, pmr::string>: 256 seeded inserts, 128
//                                     seeded erases, then destroyed
//   allocator/pool_loop/<impl>        64 requests of 24/32/200/800 bytes through a
//                                     memory_resource*, then 64 deallocations in reverse
//   allocator/minimal_overhead/<impl> the same loop, where minimal() sends everything upstream
//
// impl: evmalloc (EvmAllocator, optimized(): statistics counted), evmalloc.stats_off (the
// runtime flag off: one branch per request), evmalloc.stats_compiled_out
// (EvmAllocatorWithoutStatistics: no statistics code at all), evmalloc.minimal (minimal():
// everything upstream), evmalloc.bare_pool (pool_loop only: the BufferPools' own pmr faces,
// no EvmAllocator routing), and the baselines new_delete_resource, pmr_unsync_pool
// (std::pmr::unsynchronized_pool_resource), mimalloc (a pmr resource over mi_malloc/mi_free),
// direct_upstream (minimal_overhead only: new_delete_resource() called directly).
// Every resource is built, and warmed by one untimed pass, before the timed loop.
// Counter allocs_per_iter: global operator new calls per iteration.
#include "support/alloc_counter.hpp"
#include "support/mimalloc.hpp"

#include <benchmark/benchmark.h>
#include <evmalloc/buffer_pool.hpp>
#include <evmalloc/evm_allocator.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <memory_resource>
#include <new>
#include <random>
#include <string>
#include <vector>

namespace
{
/// std::pmr face over mimalloc's mi_malloc / mi_malloc_aligned / mi_free.
class MimallocResource final : public std::pmr::memory_resource
{
public:
    explicit MimallocResource(const evmalloc::bench::Mimalloc& mi) : mi_{mi} {}

private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        void* p = alignment <= alignof(std::max_align_t) ? mi_.malloc_fn(bytes)
                                                         : mi_.malloc_aligned_fn(bytes, alignment);
        if (p == nullptr)
            throw std::bad_alloc();
        return p;
    }
    void do_deallocate(void* p, std::size_t, std::size_t) override { mi_.free_fn(p); }
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }
    const evmalloc::bench::Mimalloc& mi_;
};

// ---- seeded inputs, computed once, outside every timed loop --------------------------------

constexpr std::size_t strings_per_iter = 256;
constexpr std::size_t map_inserts = 256;
constexpr std::size_t map_erases = 128;
constexpr std::size_t loop_batch = 64;

const std::vector<std::size_t>& string_lengths()
{
    static const std::vector<std::size_t> lengths = [] {
        std::mt19937_64 rng{0xE7A110C};
        std::uniform_int_distribution<std::size_t> len{1, 300};
        std::vector<std::size_t> v(strings_per_iter);
        for (auto& n : v)
            n = len(rng);
        return v;
    }();
    return lengths;
}

struct MapOps
{
    std::vector<std::uint64_t> insert_keys;
    std::vector<std::size_t> value_lengths;
    std::vector<std::uint64_t> erase_keys;
};

const MapOps& map_ops()
{
    static const MapOps ops = [] {
        std::mt19937_64 rng{0x3A9C4E};
        MapOps o;
        std::uniform_int_distribution<std::uint64_t> key{0, 4095};
        std::uniform_int_distribution<std::size_t> len{0, 120};
        for (std::size_t i = 0; i < map_inserts; ++i)
        {
            o.insert_keys.push_back(key(rng));
            o.value_lengths.push_back(len(rng));
        }
        std::uniform_int_distribution<std::size_t> pick{0, map_inserts - 1};
        for (std::size_t i = 0; i < map_erases; ++i)
            o.erase_keys.push_back(o.insert_keys[pick(rng)]);
        return o;
    }();
    return ops;
}

constexpr std::array<std::size_t, 4> loop_sizes{24, 32, 200, 800};

// ---- the workloads ----------------------------------------------------------------------------

std::size_t vector_strings(std::pmr::memory_resource* mr)
{
    std::pmr::vector<std::pmr::string> v{mr};
    for (const std::size_t n : string_lengths())
        v.emplace_back(n, 'x');
    benchmark::DoNotOptimize(v.data());
    return v.size();
}

std::size_t map_churn(std::pmr::memory_resource* mr)
{
    const MapOps& ops = map_ops();
    std::pmr::map<std::uint64_t, std::pmr::string> m{mr};
    for (std::size_t i = 0; i < map_inserts; ++i)
        m.insert_or_assign(ops.insert_keys[i], std::pmr::string(ops.value_lengths[i], 'v', mr));
    for (const std::uint64_t k : ops.erase_keys)
        m.erase(k);
    benchmark::DoNotOptimize(m.size());
    return map_inserts + map_erases;
}

std::size_t pool_loop(std::pmr::memory_resource* mr)
{
    std::array<void*, loop_batch> held{};
    for (std::size_t i = 0; i < loop_batch; ++i)
    {
        held[i] = mr->allocate(loop_sizes[i % loop_sizes.size()], 8);
        benchmark::DoNotOptimize(held[i]);
    }
    benchmark::ClobberMemory();
    for (std::size_t i = loop_batch; i-- > 0;)
        mr->deallocate(held[i], loop_sizes[i % loop_sizes.size()], 8);
    return loop_batch;
}

using Workload = std::size_t (*)(std::pmr::memory_resource*);

void run(benchmark::State& state, Workload work, std::pmr::memory_resource* mr)
{
    work(mr);  // warm: pools and free lists filled, as in steady state
    std::size_t items = 0;
    const std::uint64_t news = evmalloc::bench::new_calls();
    for (auto _ : state)
        items += work(mr);
    state.SetItemsProcessed(static_cast<std::int64_t>(items));
    state.counters["allocs_per_iter"] =
        benchmark::Counter(static_cast<double>(evmalloc::bench::new_calls() - news) /
                           static_cast<double>(state.iterations()));
}

/// The resource for one impl, built when the benchmark runs (not at registration).
using Factory = std::function<std::shared_ptr<std::pmr::memory_resource>()>;

/// Routes to three BufferPools by size through their own pmr faces: what EvmAllocator's
/// routing adds to a bare pool is the difference to this.
class BarePools final : public std::pmr::memory_resource
{
    evmalloc::BufferPool<32> small_;
    evmalloc::BufferPool<256> medium_;
    evmalloc::BufferPool<1024> large_;
    std::pmr::memory_resource& pick(std::size_t n)
    {
        if (n <= 32)
            return small_;
        return n <= 256 ? static_cast<std::pmr::memory_resource&>(medium_) : large_;
    }
    void* do_allocate(std::size_t n, std::size_t a) override { return pick(n).allocate(n, a); }
    void do_deallocate(void* p, std::size_t n, std::size_t a) override
    {
        pick(n).deallocate(p, n, a);
    }
    bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override
    {
        return this == &o;
    }
};

struct NonOwning
{
    void operator()(std::pmr::memory_resource*) const noexcept {}
};

void register_case(const std::string& name, Workload work,
    const std::vector<std::pair<std::string, Factory>>& impls)
{
    for (const auto& [impl, factory] : impls)
    {
        benchmark::RegisterBenchmark(("allocator/" + name + "/" + impl).c_str(),
            [work, make = factory, impl_name = impl](benchmark::State& state) {
                if (impl_name == "mimalloc" && !evmalloc::bench::Mimalloc::get().available())
                {
                    state.SkipWithError(evmalloc::bench::Mimalloc::get().error());
                    return;
                }
                const auto mr = make();
                run(state, work, mr.get());
            });
    }
}

Factory evm(evmalloc::AllocatorConfig config)
{
    return [config] { return std::make_shared<evmalloc::EvmAllocator>(config); };
}

evmalloc::AllocatorConfig stats_off()
{
    auto c = evmalloc::AllocatorConfig::optimized();
    c.enable_statistics = false;
    return c;
}

[[maybe_unused]] const bool registered = [] {
    const Factory compiled_out = [] {
        return std::make_shared<evmalloc::EvmAllocatorWithoutStatistics>(
            evmalloc::AllocatorConfig::optimized());
    };
    const Factory new_delete = [] {
        return std::shared_ptr<std::pmr::memory_resource>(
            std::pmr::new_delete_resource(), NonOwning{});
    };
    const Factory unsync_pool = [] {
        return std::make_shared<std::pmr::unsynchronized_pool_resource>();
    };
    const Factory mimalloc = [] {
        return std::make_shared<MimallocResource>(evmalloc::bench::Mimalloc::get());
    };

    const std::vector<std::pair<std::string, Factory>> churn_impls{
        {"evmalloc", evm(evmalloc::AllocatorConfig::optimized())},
        {"evmalloc.stats_off", evm(stats_off())},
        {"evmalloc.stats_compiled_out", compiled_out},
        {"new_delete_resource", new_delete},
        {"pmr_unsync_pool", unsync_pool},
        {"mimalloc", mimalloc},
    };
    register_case("vector_strings", &vector_strings, churn_impls);
    register_case("map_churn", &map_churn, churn_impls);

    register_case("pool_loop", &pool_loop,
        {
            {"evmalloc", evm(evmalloc::AllocatorConfig::optimized())},
            {"evmalloc.stats_off", evm(stats_off())},
            {"evmalloc.stats_compiled_out", compiled_out},
            {"evmalloc.bare_pool", [] { return std::make_shared<BarePools>(); }},
            {"pmr_unsync_pool", unsync_pool},
        });

    register_case("minimal_overhead", &pool_loop,
        {
            {"evmalloc", evm(evmalloc::AllocatorConfig::optimized())},
            {"evmalloc.minimal", evm(evmalloc::AllocatorConfig::minimal())},
            {"direct_upstream", new_delete},
        });
    return true;
}();
}  // namespace
