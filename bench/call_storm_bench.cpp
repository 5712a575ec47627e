// Workload 5, the call storm: transactions of nested calls, end to end.
//
// Each call does what the memory layer sees of a real call: a frame for its code (init +
// prepare: analysis, ops, metadata), memory growth in a few MSTORE-like steps, its nested
// calls, then transaction data: the callee's return data copied in (RETURNDATACOPY), logs
// (topics + data), journal entries (storage writes), and its own return data. Everything
// that lives as long as the transaction is freed when it ends.
//
//   evmalloc       StackFrame + FramePool (+ pooled Memory) from one EvmAllocator; transaction
//                  data in EvmAllocator::arena(), reset_arena() after each transaction
//   naive_frame    baseline_frames.hpp's naive frame (one heap allocation per component);
//   evmone_frame   its evmone-style frame (stack reused per depth, analysis per call);
//                  both keep transaction data in std::vector (return data, logs, journal)
//
// The schedule is drawn once, seeded, outside the timing loop; every implementation runs the
// same one, and one iteration runs all of it (so every iteration does the same work, which
// `bench/run --instructions` relies on). Mixes:
//   mainnet  64 transactions: call depth p50 1, p99.9 8 (a geometric tail, cut at 16); 0-3
//            sibling calls per caller; memory per call p50 128 B, p99 4 KiB, p99.9 16 KiB,
//            rarely up to 579 KiB (DESIGN §1); code drawn uniformly from the code set (its
//            real contracts when the corpus is there)
//   deep64   the occasional transaction 64 calls deep, on its own (inside the mainnet mix one
//            such transaction would be a third of the calls): one chain of 64 nested calls
//
// call_storm_zipf/<case>/<impl>: the same transactions (1,000 of them, the mainnet mix's depths,
// memory and transaction data), but the called code drawn with realistic reuse: a Zipf-like
// popularity (exponent 1) over a large code set, the corpus's real contracts plus 2,000
// generated ones with mainnet-like sizes (support/mainnet_codes.hpp; its size distribution is an
// assumption, written there), popularity ranks shuffled so size and popularity are independent.
//   evmalloc            StackFrame::init(code, hash, table, id, pool, cache): the shared analysis by
//                       the trusted key (a stand-in hash, support/stand_in_hash.hpp), one
//                       AnalysisCache whose budget (case name: 64 MiB, the default, and 16 MiB)
//                       holds only part of the code set, so there are hits, misses and
//                       evictions (budget_share: the budget over what every entry would take)
//   evmalloc.per_frame  the per-frame path, as `evmalloc` in call_storm above
//   naive_frame, evmone_frame  as above
// Counters also: hit_rate, misses_per_tx and evictions_per_tx of the cache in steady state.
// Counters: items = calls; calls_per_tx; allocs_per_tx = global operator new calls per
// transaction in steady state (one pass over the schedule warms every implementation first).
// evmalloc's Memory grows through operator new (its pool's upstream), so every one of its
// allocations is counted; the baselines' evmone-style Memory uses malloc/realloc, which the
// counter does not see, so their counts are lower bounds.
#include "support/alloc_counter.hpp"
#include "support/baseline_frames.hpp"
#include "support/mainnet_codes.hpp"
#include "support/stand_in_hash.hpp"
#include "support/workload_code.hpp"

#include <benchmark/benchmark.h>
#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/evm_allocator.hpp>
#include <evmalloc/stack_frame.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace
{
using evmalloc::Word;
using Code = std::span<const std::uint8_t>;

// ---------------------------------------------------------------------------------------------
// The schedule

struct Call
{
    std::uint32_t contract;               ///< index into the mix's code list
    std::array<std::uint32_t, 3> memory;  ///< memory size after each growth step (bytes, % 32 == 0)
    std::uint32_t return_bytes;           ///< <= memory[2]
    std::uint32_t log_bytes;              ///< data bytes per log, <= memory[2]
    std::uint8_t logs;                    ///< LOGn calls
    std::uint8_t topics;                  ///< topics per log (0-4)
    std::uint8_t journal;                 ///< storage writes
    std::uint32_t first_child;            ///< children are calls[first_child, +child_count)
    std::uint32_t child_count;
};

struct Mix
{
    std::vector<Code> code;                           ///< the contracts calls are drawn from
    std::vector<Call> calls;                          ///< every call of every transaction
    std::vector<std::uint32_t> txs;                   ///< the root call of each transaction
    std::size_t cache_bytes = std::size_t{64} << 20;  ///< the shared analysis's budget
};

/// Memory a call uses: p50 128 B, p99 4 KiB, p99.9 16 KiB, max 579 KiB; log-uniform
/// between those points.
std::uint32_t draw_memory(std::mt19937_64& rng)
{
    const double u = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
    const double v = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
    const auto between = [v](double lo, double hi) { return lo * std::pow(hi / lo, v); };
    double bytes = u < 0.5     ? between(64, 128)
                   : u < 0.99  ? between(128, 4096)
                   : u < 0.999 ? between(4096, 16384)
                               : between(16384, 579.0 * 1024);
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(bytes) + 31) / 32 * 32);
}

/// Depth of a transaction's call chain: 1 for half of them, then a geometric tail with
/// P(depth > 8) = 0.001, cut at 16.
std::uint32_t draw_depth(std::mt19937_64& rng)
{
    const double u = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
    if (u < 0.55)
        return 1;
    // P(depth > k) = 0.45 * r^(k-1) with 0.45 * r^7 = 0.001
    const double r = std::pow(0.001 / 0.45, 1.0 / 7.0);
    std::uint32_t depth = 2;
    double tail = 0.45 * r;
    while (depth < 16 && 1.0 - u < tail)
    {
        ++depth;
        tail *= r;
    }
    return depth;
}

Call draw_call(std::mt19937_64& rng, std::size_t contracts)
{
    std::uniform_int_distribution<std::uint32_t> contract{
        0, static_cast<std::uint32_t>(contracts - 1)};
    std::uniform_int_distribution<int> percent{0, 99};
    Call c{};
    c.contract = contract(rng);
    const std::uint32_t mem = std::max<std::uint32_t>(draw_memory(rng), 64);
    c.memory = {std::min<std::uint32_t>(mem, 96), std::max<std::uint32_t>(mem / 64 * 32, 32), mem};
    std::sort(c.memory.begin(), c.memory.end());
    c.return_bytes = std::min<std::uint32_t>(
        mem, percent(rng) < 70 ? 32 : 32 * static_cast<std::uint32_t>(1 + percent(rng) % 8));
    const int logs = percent(rng);
    c.logs = static_cast<std::uint8_t>(logs < 70 ? 0 : logs < 95 ? 1 : 3);
    c.topics = static_cast<std::uint8_t>(1 + percent(rng) % 4);
    c.log_bytes =
        std::min<std::uint32_t>(mem, 32 * static_cast<std::uint32_t>(1 + percent(rng) % 4));
    const int writes = percent(rng);
    c.journal = static_cast<std::uint8_t>(writes < 50 ? 0 : writes < 85 ? 1 : 4);
    return c;
}

/// Appends the call tree of one transaction, a chain `depth` deep whose callers make 0-3 extra
/// leaf calls when `siblings`; returns its root.
std::uint32_t draw_transaction(Mix& mix, std::mt19937_64& rng, std::uint32_t depth, bool siblings)
{
    std::uniform_int_distribution<int> percent{0, 99};
    const auto root = static_cast<std::uint32_t>(mix.calls.size());
    mix.calls.push_back(draw_call(rng, mix.code.size()));
    std::uint32_t caller = root;
    for (std::uint32_t level = 1; level < depth; ++level)
    {
        const int p = percent(rng);
        const std::uint32_t extra = !siblings ? 0 : p < 75 ? 0 : p < 95 ? 1 : 3;
        const auto first = static_cast<std::uint32_t>(mix.calls.size());
        for (std::uint32_t k = 0; k <= extra; ++k)
            mix.calls.push_back(draw_call(rng, mix.code.size()));
        mix.calls[caller].first_child = first;
        mix.calls[caller].child_count = extra + 1;
        caller = first;  // the chain goes on through the first child
    }
    mix.txs.push_back(root);
    return root;
}

std::vector<Code> mix_code()
{
    const auto& all = evmalloc::bench::workload_code();
    std::vector<Code> real, every;
    for (const auto& c : all)
    {
        every.emplace_back(c.code);
        if (!c.synthetic)
            real.emplace_back(c.code);
    }
    return real.empty() ? every : real;
}

Mix make_mainnet_mix()
{
    Mix mix;
    mix.code = mix_code();
    std::mt19937_64 rng{0x5eed'ca11};
    for (std::size_t t = 0; t < 64; ++t)
        draw_transaction(mix, rng, draw_depth(rng), true);
    return mix;
}

Mix make_deep_mix()
{
    Mix mix;
    mix.code = mix_code();
    std::mt19937_64 rng{0xdeeb'64};
    draw_transaction(mix, rng, 64, false);
    return mix;
}

/// The Zipf mix: 1,000 transactions shaped like the mainnet mix's, each call's code drawn by
/// popularity rank from the corpus's real contracts plus 2,000 generated ones.
Mix make_zipf_mix(std::size_t cache_bytes)
{
    static const std::vector<evmalloc::bench::WorkloadContract> generated =
        evmalloc::bench::mainnet_like_codes(2000, 0x2000'c0de);
    Mix mix;
    mix.code = mix_code();
    for (const auto& c : generated)
        mix.code.emplace_back(c.code);
    mix.cache_bytes = cache_bytes;
    std::mt19937_64 rng{0x21bf'0001};
    std::vector<std::uint32_t> by_rank(mix.code.size());
    for (std::uint32_t i = 0; i < by_rank.size(); ++i)
        by_rank[i] = i;
    std::shuffle(by_rank.begin(), by_rank.end(), rng);
    const evmalloc::bench::ZipfSampler zipf{by_rank.size(), 1.0};
    for (std::size_t t = 0; t < 1000; ++t)
        draw_transaction(mix, rng, draw_depth(rng), true);
    for (Call& c : mix.calls)
        c.contract = by_rank[zipf(rng)];
    return mix;
}

const std::array<const void*, 256>& op_table()
{
    static const std::array<const void*, 256> table = [] {
        static std::array<char, 256> handlers{};
        std::array<const void*, 256> t{};
        for (std::size_t i = 0; i < t.size(); ++i)
            t[i] = &handlers[i];
        return t;
    }();
    return table;
}

evmalloc::TableId op_table_id()
{
    static const evmalloc::TableId id = evmalloc::table_id(op_table());
    return id;
}

Word topic(std::uint32_t n) noexcept
{
    return Word::from(0x7ddf'252a'd1be'2c89u + n);
}

// ---------------------------------------------------------------------------------------------
// evmalloc: frames from the EvmAllocator's FramePool, transaction data in its arena; with
// Shared, the frames' code part from an AnalysisCache (trusted key)

template <bool Shared>
class EvmallocStormWith
{
public:
    explicit EvmallocStormWith(const Mix& mix)
      : mix_{mix}, cache_{std::pmr::new_delete_resource(), {mix.cache_bytes}}
    {
        if constexpr (Shared)
        {
            for (const Code code : mix.code)
                hashes_.push_back(evmalloc::bench::stand_in_hash(code));
        }
    }

    [[nodiscard]] const evmalloc::AnalysisCache<>& cache() const noexcept requires Shared
    {
        return cache_;
    }

    void transaction(std::uint32_t root)
    {
        {
            TxData tx{alloc_.arena()};
            call(mix_.calls[root], tx);
            benchmark::DoNotOptimize(tx.logs.data());
            benchmark::DoNotOptimize(tx.journal.data());
        }
        alloc_.reset_arena();
    }

private:
    struct LogRecord
    {
        const Word* topics;
        const std::uint8_t* data;
        std::uint32_t topic_count;
        std::uint32_t size;
    };
    struct JournalEntry
    {
        Word key;
        Word previous;
    };
    struct TxData
    {
        explicit TxData(std::pmr::memory_resource& arena) : logs{&arena}, journal{&arena} {}
        std::pmr::vector<LogRecord> logs;
        std::pmr::vector<JournalEntry> journal;
    };

    std::span<const std::uint8_t> call(const Call& c, TxData& tx)
    {
        auto frame = make_frame(c.contract);
        evmalloc::Memory& memory = frame.memory();
        for (const std::uint32_t end : c.memory)
        {
            if (!memory.expand(0, end))
                std::abort();
            std::memset(memory.data() + end - 32, 0xA5, 32);
        }
        evmalloc::TransactionArena& arena = alloc_.arena();
        for (std::uint32_t k = 0; k < c.child_count; ++k)
        {
            const std::span<const std::uint8_t> ret = call(mix_.calls[c.first_child + k], tx);
            std::memcpy(memory.data(), ret.data(), std::min<std::size_t>(ret.size(), 32));
        }
        for (std::uint32_t l = 0; l < c.logs; ++l)
        {
            auto* topics =
                static_cast<Word*>(arena.allocate_bytes(c.topics * sizeof(Word), alignof(Word)));
            for (std::uint32_t t = 0; t < c.topics; ++t)
                topics[t] = topic(t);
            auto* data = static_cast<std::uint8_t*>(arena.allocate_bytes(c.log_bytes, 1));
            std::memcpy(data, memory.data(), c.log_bytes);
            tx.logs.push_back({topics, data, c.topics, c.log_bytes});
        }
        for (std::uint32_t j = 0; j < c.journal; ++j)
            tx.journal.push_back({topic(j), Word{}});
        auto* ret = static_cast<std::uint8_t*>(arena.allocate_bytes(c.return_bytes, 1));
        std::memcpy(ret, memory.data(), c.return_bytes);
        return {ret, c.return_bytes};
    }

    evmalloc::StackFrame<> make_frame(std::uint32_t contract)
    {
        const Code code = mix_.code[contract];
        if constexpr (Shared)
        {
            auto frame = evmalloc::StackFrame<>::init(
                code, hashes_[contract], op_table(), op_table_id(), alloc_.frames(), cache_);
            if (!frame)
                std::abort();
            return std::move(*frame);
        }
        else
        {
            auto frame = evmalloc::StackFrame<>::init(code.size(), alloc_.frames());
            if (!frame || !frame->prepare(code, op_table()))
                std::abort();
            return std::move(*frame);
        }
    }

    const Mix& mix_;
    std::vector<evmalloc::CodeHash> hashes_;
    evmalloc::AnalysisCache<> cache_;  // declared before alloc_: outlives its frames' pool
    evmalloc::EvmAllocator alloc_{evmalloc::AllocatorConfig::optimized()};
};

using EvmallocStorm = EvmallocStormWith<false>;
using EvmallocSharedStorm = EvmallocStormWith<true>;

// ---------------------------------------------------------------------------------------------
// Baselines: a frame type from baseline_frames.hpp, transaction data in std::vector

template <class Frames>
class BaselineStorm
{
public:
    explicit BaselineStorm(const Mix& mix) : mix_{mix} {}

    void transaction(std::uint32_t root)
    {
        TxData tx;
        const std::vector<std::uint8_t> ret = call(mix_.calls[root], tx, 0);
        benchmark::DoNotOptimize(ret.data());
        benchmark::DoNotOptimize(tx.logs.data());
        benchmark::DoNotOptimize(tx.journal.data());
    }

private:
    struct LogRecord
    {
        std::vector<Word> topics;
        std::vector<std::uint8_t> data;
    };
    struct JournalEntry
    {
        Word key;
        Word previous;
    };
    struct TxData
    {
        std::vector<LogRecord> logs;
        std::vector<JournalEntry> journal;
    };

    std::vector<std::uint8_t> call(const Call& c, TxData& tx, std::size_t depth)
    {
        const Code code = mix_.code[c.contract];
        auto frame = frames_.make(code, depth);
        if (!frame.prepare(code, op_table()))
            std::abort();
        evmalloc::bench::EvmoneMemory& memory = frame.memory();
        for (const std::uint32_t end : c.memory)
        {
            if (memory.expand(0, end) < 0)
                std::abort();
            std::memset(memory.data() + end - 32, 0xA5, 32);
        }
        for (std::uint32_t k = 0; k < c.child_count; ++k)
        {
            const std::vector<std::uint8_t> ret =
                call(mix_.calls[c.first_child + k], tx, depth + 1);
            std::memcpy(memory.data(), ret.data(), std::min<std::size_t>(ret.size(), 32));
        }
        for (std::uint32_t l = 0; l < c.logs; ++l)
        {
            LogRecord log;
            for (std::uint32_t t = 0; t < c.topics; ++t)
                log.topics.push_back(topic(t));
            log.data.assign(memory.data(), memory.data() + c.log_bytes);
            tx.logs.push_back(std::move(log));
        }
        for (std::uint32_t j = 0; j < c.journal; ++j)
            tx.journal.push_back({topic(j), Word{}});
        return std::vector<std::uint8_t>(memory.data(), memory.data() + c.return_bytes);
    }

    const Mix& mix_;
    Frames frames_;
};

/// One heap allocation per component, per call.
struct NaiveFrames
{
    evmalloc::bench::NaiveFrame make(Code code, std::size_t /*depth*/)
    {
        return evmalloc::bench::NaiveFrame{code.size()};
    }
};

/// Stack and Memory reused per depth, analysis allocated per call.
struct EvmoneFrames
{
    evmalloc::bench::EvmoneFrame make(Code code, std::size_t depth)
    {
        return evmalloc::bench::EvmoneFrame{states, depth, code.size()};
    }
    evmalloc::bench::EvmoneFrameStates states;
};

// ---------------------------------------------------------------------------------------------

std::int64_t count_calls(const Mix& mix, std::uint32_t call)
{
    const Call& c = mix.calls[call];
    std::int64_t n = 1;
    for (std::uint32_t k = 0; k < c.child_count; ++k)
        n += count_calls(mix, c.first_child + k);
    return n;
}

template <class Storm>
void run_storm(benchmark::State& state, const Mix* mix)
{
    std::int64_t calls = 0;
    for (const std::uint32_t root : mix->txs)
        calls += count_calls(*mix, root);

    Storm storm{*mix};
    for (const std::uint32_t root : mix->txs)  // warm-up: steady state from the first iteration
        storm.transaction(root);

    std::array<std::size_t, 3> cache_before{};  // hits, misses, evictions
    if constexpr (requires { storm.cache(); })
        cache_before = {storm.cache().hits(), storm.cache().misses(), storm.cache().evictions()};
    const std::uint64_t allocs_before = evmalloc::bench::new_calls();
    for (auto _ : state)
    {
        for (const std::uint32_t root : mix->txs)
            storm.transaction(root);
    }
    const std::uint64_t allocs = evmalloc::bench::new_calls() - allocs_before;
    const double txs =
        static_cast<double>(state.iterations()) * static_cast<double>(mix->txs.size());
    if constexpr (requires { storm.cache(); })
    {
        const auto hits = static_cast<double>(storm.cache().hits() - cache_before[0]);
        const auto misses = static_cast<double>(storm.cache().misses() - cache_before[1]);
        state.counters["codes"] = static_cast<double>(mix->code.size());
        state.counters["hit_rate"] = hits + misses == 0 ? 0.0 : hits / (hits + misses);
        state.counters["misses_per_tx"] = misses / txs;
        state.counters["evictions_per_tx"] =
            static_cast<double>(storm.cache().evictions() - cache_before[2]) / txs;
    }
    state.SetItemsProcessed(state.iterations() * calls);
    state.counters["allocs_per_tx"] = benchmark::Counter(static_cast<double>(allocs) / txs);
    state.counters["calls_per_tx"] =
        benchmark::Counter(static_cast<double>(calls) / static_cast<double>(mix->txs.size()));
}

/// The Zipf mix under a cache budget of `mib` MiB (64: AnalysisCacheConfig's default).
template <std::size_t Mib>
const Mix& zipf_mix()
{
    static const Mix mix = make_zipf_mix(Mib << 20);
    return mix;
}

/// What the whole code set would take in the cache: every entry's block.
double code_set_cache_bytes(const Mix& mix)
{
    double bytes = 0;
    for (const Code code : mix.code)
        bytes += static_cast<double>(
            evmalloc::detail::CacheEntry<evmalloc::DefaultTraits>::code_part_offset() +
            evmalloc::code_part_bytes<>(code.size()));
    return bytes;
}

template <class Storm, std::size_t Mib>
void run_zipf_storm(benchmark::State& state)
{
    const Mix& mix = zipf_mix<Mib>();
    run_storm<Storm>(state, &mix);
    state.counters["budget_share"] =
        static_cast<double>(mix.cache_bytes) / code_set_cache_bytes(mix);
}

template <std::size_t Mib>
void register_zipf()
{
    const std::string zipf = "call_storm_zipf/zipf1_budget" + std::to_string(Mib) + "MiB/";
    benchmark::RegisterBenchmark(
        (zipf + "evmalloc").c_str(), run_zipf_storm<EvmallocSharedStorm, Mib>);
    benchmark::RegisterBenchmark(
        (zipf + "evmalloc.per_frame").c_str(), run_zipf_storm<EvmallocStorm, Mib>);
    benchmark::RegisterBenchmark(
        (zipf + "naive_frame").c_str(), run_zipf_storm<BaselineStorm<NaiveFrames>, Mib>);
    benchmark::RegisterBenchmark(
        (zipf + "evmone_frame").c_str(), run_zipf_storm<BaselineStorm<EvmoneFrames>, Mib>);
}

[[maybe_unused]] const bool registered = [] {
    static const Mix mainnet = make_mainnet_mix();
    static const Mix deep = make_deep_mix();
    for (const auto& [name, mix] : {std::pair{"mainnet", &mainnet}, std::pair{"deep64", &deep}})
    {
        const std::string base = std::string{"call_storm/"} + name + "/";
        benchmark::RegisterBenchmark((base + "evmalloc").c_str(), run_storm<EvmallocStorm>, mix);
        benchmark::RegisterBenchmark(
            (base + "naive_frame").c_str(), run_storm<BaselineStorm<NaiveFrames>>, mix);
        benchmark::RegisterBenchmark(
            (base + "evmone_frame").c_str(), run_storm<BaselineStorm<EvmoneFrames>>, mix);
    }
    // The Zipf mix is built on first use (2,000 generated contracts): not when filtered out.
    register_zipf<64>();
    register_zipf<16>();
    return true;
}();
}  // namespace
