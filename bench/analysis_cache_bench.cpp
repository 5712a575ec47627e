// The shared analysis (analysis_cache.hpp): what a call to code seen before costs, what a miss
// costs, what a deep recursion holds, and how hits scale over threads.
//
// shared_hit/<contract>/<impl>, per contract of the code set (support/workload_code.hpp) and
// for generated code of 128 KiB (gen_131072), instruction frames (DefaultTraits), warm pool:
//   trusted       StackFrame::init(code, hash, table, id, pool, cache) on a warm AnalysisCache
//                 + release: the hot call of a client that has the code hash
//   verified      StackFrame::init(code, table, id, pool, cache) on a warm cache + release: the
//                 fingerprint of the bytes and one comparison of them (an EVMC VM's hot call)
//   init_prepare  the per-frame path: init(code.size(), pool) + prepare(code, table) + release
//   bare_init     init(code.size(), pool) + release, no prepare: the least a call can cost
// shared_miss/<contract>/<impl>:
//   evmalloc      the verified key on a cache with max_bytes 0: every call misses, builds an
//                 entry (one upstream block, the analysis), and frees it at release
//   evmalloc.pooled_upstream  the same with a std::pmr::unsynchronized_pool_resource as the
//                 cache's upstream: the miss without the C allocator's round trip per entry
//   init_prepare  as above, measured again beside it
// footprint/<tier>/<impl>: a self-recursion 1025 frames deep on generated code of the tier's
//   capacity; counters (not time) from an upstream that counts the bytes it has handed out,
//   read at the deepest point: bytes_held (pool buffers, Memory slots, cache entry and bucket
//   array), bytes_per_frame = bytes_held / 1025.
//   per_frame     init(code.size(), pool) per frame (prepare does not change what is held: the
//                 buffer is the tier's, taken at init; it is left out so the larger tiers do
//                 not write gigabytes)
//   shared        init(code, hash, table, id, pool, cache): stack-only buffers and one entry
//   The time column is the time of the whole 1025-deep setup and teardown (one iteration).
// cache_threads/<key>/threads:N: ConcurrentAnalysisCache hit throughput, N = 1 and 2 threads,
//   each with its own FramePool, all on one warm cache of the code set's contracts, each thread
//   walking the contracts from its own starting point; items = calls, real time.
//   verified_one: every thread calls the code set's largest contract by the verified key (the
//   hot contract whose bytes every hit compares); verified_one_floor: the same hash and comparison
//   with no cache, each thread on its own copy (what two threads cost on this machine anyway).
// Counter allocs_per_iter: operator new calls per iteration (0 is the target on a hit).
#include "support/alloc_counter.hpp"
#include "support/counters.hpp"
#include "support/op_table.hpp"
#include "support/stand_in_hash.hpp"
#include "support/workload_code.hpp"

#include <benchmark/benchmark.h>
#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/stack_frame.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <string>
#include <vector>

namespace
{
using Frame = evmalloc::StackFrame<>;
using Pool = evmalloc::FramePool<>;
using Cache = evmalloc::AnalysisCache<>;
using evmalloc::bench::new_calls;
using evmalloc::bench::WorkloadContract;

const Frame::OpTable& op_table()
{
    return evmalloc::test::distinct_op_table();
}

evmalloc::TableId op_table_id()
{
    return evmalloc::test::distinct_op_table_id();
}

/// The code set, plus 128 KiB of generated code (the largest a default pool takes).
const std::vector<WorkloadContract>& hit_codes()
{
    static const std::vector<WorkloadContract> codes = [] {
        std::vector<WorkloadContract> out = evmalloc::bench::workload_code();
        out.push_back({"gen_131072", evmalloc::bench::detail::generate_code(131072, 131072), true});
        return out;
    }();
    return codes;
}

// --- shared_hit, shared_miss -------------------------------------------------------------------

enum class Key
{
    trusted,
    verified
};

template <Key K, class C>
evmalloc::Result<Frame> shared_init(
    const std::vector<std::uint8_t>& code, const evmalloc::CodeHash& hash, Pool& pool, C& cache)
{
    if constexpr (K == Key::trusted)
        return Frame::init(code, hash, op_table(), op_table_id(), pool, cache);
    else
        return Frame::init(code, op_table(), op_table_id(), pool, cache);
}

template <Key K>
void shared_hit(benchmark::State& state, const WorkloadContract* contract)
{
    const std::vector<std::uint8_t>& code = contract->code;
    const evmalloc::CodeHash hash = evmalloc::bench::stand_in_hash(code);
    Pool pool;
    Cache cache;
    {
        auto warm = shared_init<K>(code, hash, pool, cache);  // the entry and a stack-only buffer
        if (!warm)
            state.SkipWithError("init failed");
    }
    const auto before = new_calls();
    for (auto _ : state)
    {
        auto frame = shared_init<K>(code, hash, pool, cache);
        benchmark::DoNotOptimize(frame);
    }
    evmalloc::bench::set_call_setup_counters(state, before, code);
    if (cache.misses() != 1 || cache.entries() != 1)
        state.SkipWithError("not every timed call was a hit");
}

void init_prepare(benchmark::State& state, const WorkloadContract* contract)
{
    const std::vector<std::uint8_t>& code = contract->code;
    Pool pool;
    {
        auto warm = Frame::init(code.size(), pool);
        if (!warm || !warm->prepare(code, op_table()))
            state.SkipWithError("init or prepare failed");
    }
    const auto before = new_calls();
    for (auto _ : state)
    {
        auto frame = Frame::init(code.size(), pool);
        const auto prepared = frame->prepare(code, op_table());
        benchmark::DoNotOptimize(prepared);
        benchmark::DoNotOptimize(frame->metadata().data());
    }
    evmalloc::bench::set_call_setup_counters(state, before, code);
}

void bare_init(benchmark::State& state, const WorkloadContract* contract)
{
    const std::vector<std::uint8_t>& code = contract->code;
    Pool pool;
    {
        auto warm = Frame::init(code.size(), pool);
        if (!warm)
            state.SkipWithError("init failed");
    }
    const auto before = new_calls();
    for (auto _ : state)
    {
        auto frame = Frame::init(code.size(), pool);
        benchmark::DoNotOptimize(frame);
    }
    evmalloc::bench::set_call_setup_counters(state, before, code);
}

template <bool PooledUpstream>
void shared_miss(benchmark::State& state, const WorkloadContract* contract)
{
    const std::vector<std::uint8_t>& code = contract->code;
    const evmalloc::CodeHash hash = evmalloc::bench::stand_in_hash(code);
    Pool pool;
    std::pmr::unsynchronized_pool_resource pooled{
        {.max_blocks_per_chunk = 4, .largest_required_pool_block = std::size_t{4} << 20}};
    Cache cache{PooledUpstream ? static_cast<std::pmr::memory_resource*>(&pooled)
                               : std::pmr::new_delete_resource(),
        {.max_bytes = 0}};
    {
        auto warm = shared_init<Key::verified>(code, hash, pool, cache);  // the stack-only buffer
        if (!warm)
            state.SkipWithError("init failed");
    }
    const auto before = new_calls();
    for (auto _ : state)
    {
        auto frame = shared_init<Key::verified>(code, hash, pool, cache);
        benchmark::DoNotOptimize(frame);
    }
    evmalloc::bench::set_call_setup_counters(state, before, code);
    if (cache.hits() != 0 || cache.entries() != 0)
        state.SkipWithError("a call hit: max_bytes 0 should keep nothing");
}

// --- footprint -----------------------------------------------------------------------------

/// new_delete_resource, counting the bytes handed out and not yet given back.
class CountingResource final : public std::pmr::memory_resource
{
public:
    [[nodiscard]] std::size_t held() const noexcept { return held_; }

private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        void* const p = std::pmr::new_delete_resource()->allocate(bytes, alignment);
        held_ += bytes;
        return p;
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override
    {
        held_ -= bytes;
        std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
    }
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }

    std::size_t held_ = 0;
};

constexpr std::size_t recursion_frames = 1025;

template <bool Shared>
void footprint(benchmark::State& state, evmalloc::Tier tier)
{
    const std::vector<std::uint8_t> code =
        evmalloc::bench::detail::generate_code(evmalloc::code_capacity(tier), 24576);
    const evmalloc::CodeHash hash = evmalloc::bench::stand_in_hash(code);
    CountingResource upstream;
    std::vector<Frame> frames;
    frames.reserve(recursion_frames);
    std::size_t held = 0, cache_bytes = 0;
    {
        Cache cache{&upstream};
        Pool pool{&upstream};
        for (auto _ : state)
        {
            for (std::size_t depth = 0; depth < recursion_frames; ++depth)
            {
                auto frame = Shared
                                 ? Frame::init(code, hash, op_table(), op_table_id(), pool, cache)
                                 : Frame::init(code.size(), pool);
                if (!frame)
                {
                    state.SkipWithError("init failed");
                    break;
                }
                frames.push_back(std::move(*frame));
            }
            held = upstream.held();
            cache_bytes = cache.bytes();
            while (!frames.empty())
                frames.pop_back();  // the innermost call returns first
        }
    }
    state.counters["bytes_held"] = static_cast<double>(held);
    state.counters["bytes_per_frame"] =
        static_cast<double>(held) / static_cast<double>(recursion_frames);
    state.counters["cache_bytes"] = static_cast<double>(cache_bytes);
}

// --- cache_threads -------------------------------------------------------------------------

using SharedCache = evmalloc::ConcurrentAnalysisCache<>;

struct ThreadsSet
{
    std::vector<const std::vector<std::uint8_t>*> codes;
    std::vector<evmalloc::CodeHash> hashes;
    SharedCache cache;
};

/// The contracts of the code set, each already in the shared cache.
ThreadsSet& threads_set()
{
    static ThreadsSet set;
    static const bool warmed = [] {
        Pool pool;
        for (const auto& c : evmalloc::bench::workload_code())
        {
            set.codes.push_back(&c.code);
            set.hashes.push_back(evmalloc::bench::stand_in_hash(c.code));
            auto t =
                Frame::init(c.code, set.hashes.back(), op_table(), op_table_id(), pool, set.cache);
            auto v = Frame::init(c.code, op_table(), op_table_id(), pool, set.cache);
            if (!t || !v)
                return false;
        }
        return true;
    }();
    (void)warmed;
    return set;
}

/// The largest contract of the code set (the one hot contract of cache_threads/<key>_one).
std::size_t largest_code(const ThreadsSet& set)
{
    std::size_t largest = 0;
    for (std::size_t i = 1; i < set.codes.size(); ++i)
        largest = set.codes[i]->size() > set.codes[largest]->size() ? i : largest;
    return largest;
}

template <Key K, bool One>
void cache_threads(benchmark::State& state)
{
    ThreadsSet& set = threads_set();  // thread-safe: function-local statics
    Pool pool;
    const std::size_t n = set.codes.size();
    const std::size_t one = largest_code(set);
    std::size_t next = One ? one : static_cast<std::size_t>(state.thread_index()) * (n / 2);
    const auto before = new_calls();
    for (auto _ : state)
    {
        const std::size_t i = next;
        if constexpr (!One)
            next = next + 1 == n ? 0 : next + 1;
        auto frame = shared_init<K>(*set.codes[i], set.hashes[i], pool, set.cache);
        benchmark::DoNotOptimize(frame);
    }
    if (One)
        state.SetLabel(std::to_string(set.codes[one]->size()) + " bytes");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    const auto iterations = static_cast<double>(state.iterations());
    const double allocs =
        iterations == 0 ? 0.0 : static_cast<double>(new_calls() - before) / iterations;
    state.counters["allocs_per_iter"] = benchmark::Counter(allocs, benchmark::Counter::kAvgThreads);
}

/// The noise floor of cache_threads/verified_one: a verified hit's own work (the keyed hash of
/// the code and one comparison with a copy of it, each thread its own copy), no cache.
void cache_threads_floor(benchmark::State& state)
{
    ThreadsSet& set = threads_set();
    const std::vector<std::uint8_t>& code = *set.codes[largest_code(set)];
    const std::vector<std::uint8_t> copy = code;
    for (auto _ : state)
    {
        std::uint64_t h = evmalloc::keyed_code_hash(code);
        h += static_cast<std::uint64_t>(std::memcmp(copy.data(), code.data(), code.size()));
        benchmark::DoNotOptimize(h);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetLabel(std::to_string(code.size()) + " bytes");
}

[[maybe_unused]] const bool registered = [] {
    for (const auto& contract : hit_codes())
    {
        const std::string hit = "shared_hit/" + contract.name + "/";
        benchmark::RegisterBenchmark(
            (hit + "trusted").c_str(), shared_hit<Key::trusted>, &contract);
        benchmark::RegisterBenchmark(
            (hit + "verified").c_str(), shared_hit<Key::verified>, &contract);
        benchmark::RegisterBenchmark((hit + "init_prepare").c_str(), init_prepare, &contract);
        benchmark::RegisterBenchmark((hit + "bare_init").c_str(), bare_init, &contract);
    }
    for (const auto& contract : hit_codes())
    {
        const std::string miss = "shared_miss/" + contract.name + "/";
        benchmark::RegisterBenchmark((miss + "evmalloc").c_str(), shared_miss<false>, &contract);
        benchmark::RegisterBenchmark(
            (miss + "evmalloc.pooled_upstream").c_str(), shared_miss<true>, &contract);
        benchmark::RegisterBenchmark((miss + "init_prepare").c_str(), init_prepare, &contract);
    }
    for (const evmalloc::Tier tier : evmalloc::all_tiers)
    {
        const std::string prefix = "footprint/" + std::string{evmalloc::tier_name(tier)} + "/";
        benchmark::RegisterBenchmark((prefix + "per_frame").c_str(), footprint<false>, tier)
            ->Iterations(1);
        benchmark::RegisterBenchmark((prefix + "shared").c_str(), footprint<true>, tier)
            ->Iterations(1);
    }
    benchmark::RegisterBenchmark("cache_threads/trusted", cache_threads<Key::trusted, false>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("cache_threads/verified", cache_threads<Key::verified, false>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("cache_threads/verified_one", cache_threads<Key::verified, true>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("cache_threads/verified_one_floor", cache_threads_floor)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    return true;
}();
}  // namespace
