// The shared analysis under attack (admission.hpp, keyed_hash.hpp): a sweep of code seen once
// between the hot set's calls, and hits among codes that collide under the unkeyed fingerprint.
//
// sweep/budget<B>MiB/<k>_per_hot/<impl>: one iteration is one hot call (a Zipf-drawn contract,
//   exponent 1, of a hot set of 200 mainnet-like generated contracts, support/mainnet_codes.hpp)
//   and then k calls of 64 KiB contracts never seen before (the devnet-8 shape: JUMPDESTs, a
//   unique head; 1.6 MiB per entry in an instruction frame), all by the trusted key (stand-in
//   hashes) in instruction frames, on one AnalysisCache of B MiB, warmed by one pass first.
//     tiny_lfu   Admission::tiny_lfu (the default)
//     always     Admission::always (0.2.0's LRU)
//     per_frame  every call on the per-frame path (init(size) + prepare), no cache
//   Counters: hot_hit_rate (hits among the hot calls), not_admitted and evictions per iteration,
//   budget_share (the budget over what the hot set's entries take). Fixed iterations (2,000 hot
//   calls with a sweep, 200,000 without), after a warm-up of 1,500.
// sweep_call/budget<B>MiB/<impl>: one unique 64 KiB call per iteration, on the cache the sweep
//   left (k = 4 warm-up): what a sweep call costs against the per-frame path.
// collision_hit/<codes>/<fingerprint>: a verified-key hit, walking 64 codes of 24 KiB that all
//   have an entry or ran, codes `colliding` (one appended 32-byte block makes their
//   code_fingerprint equal) or `random`; fingerprint `keyed` (the default, keyed_code_hash) or
//   `unkeyed` (code_fingerprint, whose chain CacheCore::max_compared bounds: the codes past it
//   run on the per-frame path, counted in not_admitted_per_iter).
#include "support/alloc_counter.hpp"
#include "support/counters.hpp"
#include "support/mainnet_codes.hpp"
#include "support/op_table.hpp"
#include "support/stand_in_hash.hpp"
#include "support/workload_code.hpp"

#include <benchmark/benchmark.h>
#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/stack_frame.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace
{
using Frame = evmalloc::StackFrame<>;
using Pool = evmalloc::FramePool<>;
using evmalloc::Admission;

const Frame::OpTable& op_table()
{
    return evmalloc::test::distinct_op_table();
}

evmalloc::TableId op_table_id()
{
    return evmalloc::test::distinct_op_table_id();
}

struct HotSet
{
    std::vector<std::vector<std::uint8_t>> codes;
    std::vector<evmalloc::CodeHash> hashes;
    std::vector<std::uint32_t> schedule;  // the hot calls, drawn once
    double entry_bytes = 0;
};

const HotSet& hot_set()
{
    static const HotSet set = [] {
        HotSet s;
        for (auto& c : evmalloc::bench::mainnet_like_codes(200, 0x5eeb'0200))
        {
            s.hashes.push_back(evmalloc::bench::stand_in_hash(c.code));
            s.entry_bytes += static_cast<double>(
                evmalloc::detail::CacheCore<evmalloc::DefaultTraits>::entry_bytes(c.code.size()));
            s.codes.push_back(std::move(c.code));
        }
        std::mt19937_64 rng{0x5eeb'0001};
        std::vector<std::uint32_t> by_rank(s.codes.size());
        for (std::uint32_t i = 0; i < by_rank.size(); ++i)
            by_rank[i] = i;
        std::shuffle(by_rank.begin(), by_rank.end(), rng);
        const evmalloc::bench::ZipfSampler zipf{by_rank.size(), 1.0};
        s.schedule.resize(1 << 16);
        for (auto& r : s.schedule)
            r = by_rank[zipf(rng)];
        return s;
    }();
    return set;
}

/// Unique 64 KiB JUMPDEST contracts: one buffer whose head (and hash) change per call.
class SweepCodes
{
public:
    SweepCodes() : code_(65536, 0x5B) {}
    std::uint64_t next()
    {
        ++serial_;
        std::memcpy(code_.data() + 1, &serial_, sizeof(serial_));
        code_[0] = 0x60;  // PUSH1 over the first byte of the serial: a valid head
        return serial_;
    }
    const std::vector<std::uint8_t>& code() const { return code_; }
    evmalloc::CodeHash hash() const
    {
        evmalloc::CodeHash h{};
        std::memcpy(h.bytes.data(), &serial_, sizeof(serial_));
        h.bytes[31] = 0x5e;
        return h;
    }

private:
    std::vector<std::uint8_t> code_;
    std::uint64_t serial_ = 0;
};

class Caller
{
public:
    Caller(bool cached, Admission policy, std::size_t budget)
      : cached_{cached},
        cache_{std::pmr::new_delete_resource(),
            evmalloc::AnalysisCacheConfig{.max_bytes = budget, .admission = policy}}
    {}

    /// \returns true on a cache hit.
    bool call(const std::vector<std::uint8_t>& code, const evmalloc::CodeHash& hash)
    {
        if (!cached_)
        {
            auto f = Frame::init(code.size(), pool_);
            if (!f || !f->prepare(code, op_table()))
                std::abort();
            benchmark::DoNotOptimize(f->ops().data());
            return false;
        }
        const std::size_t hits = cache_.hits();
        auto f = Frame::init(code, hash, op_table(), op_table_id(), pool_, cache_);
        if (!f)
            std::abort();
        benchmark::DoNotOptimize(f->ops().data());
        return cache_.hits() != hits;
    }
    const evmalloc::AnalysisCache<>& cache() const { return cache_; }

private:
    bool cached_;
    Pool pool_;
    evmalloc::AnalysisCache<> cache_;
};

void sweep_round(
    Caller& caller, SweepCodes& sweep, std::size_t k, std::size_t& at, std::size_t& hot_hits)
{
    const HotSet& hot = hot_set();
    const std::uint32_t c = hot.schedule[at];
    at = at + 1 == hot.schedule.size() ? 0 : at + 1;
    hot_hits += caller.call(hot.codes[c], hot.hashes[c]) ? 1U : 0U;
    for (std::size_t j = 0; j < k; ++j)
    {
        sweep.next();
        caller.call(sweep.code(), sweep.hash());
    }
}

template <int Impl>  // 0 tiny_lfu, 1 always, 2 per_frame
void sweep_bench(benchmark::State& state, std::size_t k, std::size_t mib)
{
    Caller caller{Impl != 2, Impl == 0 ? Admission::tiny_lfu : Admission::always, mib << 20};
    SweepCodes sweep;
    std::size_t at = 0, hot_hits = 0;
    for (std::size_t i = 0; i < 1500; ++i)  // warm-up: the steady state
        sweep_round(caller, sweep, k, at, hot_hits);
    hot_hits = 0;
    const std::size_t not_admitted = caller.cache().not_admitted();
    const std::size_t evictions = caller.cache().evictions();
    for (auto _ : state)
        sweep_round(caller, sweep, k, at, hot_hits);
    const auto n = static_cast<double>(state.iterations());
    state.counters["hot_hit_rate"] = static_cast<double>(hot_hits) / n;
    state.counters["not_admitted_per_iter"] =
        static_cast<double>(caller.cache().not_admitted() - not_admitted) / n;
    state.counters["evictions_per_iter"] =
        static_cast<double>(caller.cache().evictions() - evictions) / n;
    state.counters["budget_share"] = static_cast<double>(mib << 20) / hot_set().entry_bytes;
}

template <int Impl>
void sweep_call_bench(benchmark::State& state, std::size_t mib)
{
    Caller caller{Impl != 2, Impl == 0 ? Admission::tiny_lfu : Admission::always, mib << 20};
    SweepCodes sweep;
    std::size_t at = 0, hot_hits = 0;
    for (std::size_t i = 0; i < 1500; ++i)
        sweep_round(caller, sweep, 4, at, hot_hits);
    for (auto _ : state)
    {
        sweep.next();
        caller.call(sweep.code(), sweep.hash());
    }
}

// --- collision_hit -------------------------------------------------------------------------

struct UnkeyedFingerprint
{
    std::uint64_t operator()(std::span<const std::uint8_t> code) const noexcept
    {
        return evmalloc::code_fingerprint(code);
    }
};

/// 64 codes of 24 KiB; `colliding`: each ends in the block that sets code_fingerprint's four
/// lanes to one state, so all 64 share one code_fingerprint.
std::vector<std::vector<std::uint8_t>> collision_codes(bool colliding)
{
    constexpr std::uint64_t k = 0x9e3779b97f4a7c15ULL;
    std::vector<std::vector<std::uint8_t>> out;
    for (std::uint32_t i = 0; i < 64; ++i)
    {
        auto code = evmalloc::bench::detail::generate_code(24576 - 32, 7000 + i);
        std::uint64_t lanes[4] = {k, k * 3, k * 5, k * 7};
        for (std::size_t at = 0; at + 32 <= code.size(); at += 32)
        {
            for (std::size_t l = 0; l < 4; ++l)
            {
                std::uint64_t w;
                std::memcpy(&w, code.data() + at + 8 * l, 8);
                const std::uint64_t v = lanes[l] ^ w;
                lanes[l] = (v ^ (v >> 29)) * k;
            }
        }
        for (std::size_t l = 0; l < 4; ++l)
        {
            const std::uint64_t w = colliding ? lanes[l] ^ 0x0123456789abcdefULL : i * 977 + l;
            const auto* b = reinterpret_cast<const std::uint8_t*>(&w);
            code.insert(code.end(), b, b + 8);
        }
        out.push_back(std::move(code));
    }
    return out;
}

template <class Fingerprint>
void collision_hit(benchmark::State& state, bool colliding)
{
    static const auto colliding_codes = collision_codes(true);
    static const auto random_codes = collision_codes(false);
    const auto& codes = colliding ? colliding_codes : random_codes;
    Pool pool;
    evmalloc::AnalysisCache<evmalloc::DefaultTraits, Fingerprint> cache;
    for (int pass = 0; pass < 2; ++pass)
    {
        for (const auto& c : codes)
        {
            if (!Frame::init(c, op_table(), op_table_id(), pool, cache))
                state.SkipWithError("init failed");
        }
    }
    // Only the codes that hit are walked (past the bound, codes run on the per-frame path).
    std::vector<const std::vector<std::uint8_t>*> cached;
    for (const auto& c : codes)
    {
        const std::size_t hits = cache.hits();
        if (Frame::init(c, op_table(), op_table_id(), pool, cache) && cache.hits() != hits)
            cached.push_back(&c);
    }
    std::size_t i = 0;
    for (auto _ : state)
    {
        auto f = Frame::init(*cached[i], op_table(), op_table_id(), pool, cache);
        benchmark::DoNotOptimize(f);
        i = i + 1 == cached.size() ? 0 : i + 1;
    }
    state.counters["cached_codes"] = static_cast<double>(cached.size());
}

[[maybe_unused]] const bool registered = [] {
    for (const std::size_t mib : {16U, 64U})
    {
        for (const std::size_t k : {0U, 1U, 4U, 16U})
        {
            const std::string base =
                "sweep/budget" + std::to_string(mib) + "MiB/" + std::to_string(k) + "_per_hot/";
            // Enough hot calls for the hit rate (not fewer than 1000 however slow the sweep).
            const auto iterations = static_cast<benchmark::IterationCount>(k == 0 ? 200000 : 2000);
            benchmark::RegisterBenchmark((base + "tiny_lfu").c_str(), sweep_bench<0>, k, mib)
                ->Iterations(iterations);
            benchmark::RegisterBenchmark((base + "always").c_str(), sweep_bench<1>, k, mib)
                ->Iterations(iterations);
            benchmark::RegisterBenchmark((base + "per_frame").c_str(), sweep_bench<2>, k, mib)
                ->Iterations(iterations);
        }
        const std::string call = "sweep_call/budget" + std::to_string(mib) + "MiB/";
        benchmark::RegisterBenchmark((call + "tiny_lfu").c_str(), sweep_call_bench<0>, mib);
        benchmark::RegisterBenchmark((call + "always").c_str(), sweep_call_bench<1>, mib);
        benchmark::RegisterBenchmark((call + "per_frame").c_str(), sweep_call_bench<2>, mib);
    }
    for (const bool colliding : {true, false})
    {
        const std::string base =
            std::string{"collision_hit/"} + (colliding ? "colliding" : "random") + "/";
        benchmark::RegisterBenchmark(
            (base + "keyed").c_str(), collision_hit<evmalloc::CodeFingerprint>, colliding);
        benchmark::RegisterBenchmark(
            (base + "unkeyed").c_str(), collision_hit<UnkeyedFingerprint>, colliding);
    }
    return true;
}();
}  // namespace
