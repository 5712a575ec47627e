// ConcurrentAnalysisCache: threads each with their own FramePool share one cache; every frame
// shows the per-frame path's analysis while others evict; two threads missing on the same code
// leave one entry; the counters agree with the upstream at the end.
#include "catch.hpp"
#include "support/cache_check.hpp"
#include "support/op_table.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/stack_frame.hpp>

#include <atomic>
#include <barrier>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <thread>
#include <vector>

using evmalloc::CodeHash;
using evmalloc::ConcurrentAnalysisCache;
using evmalloc::DefaultTraits;
using evmalloc::FramePool;
using evmalloc::JumpdestTraits;
using evmalloc::StackFrame;
using evmalloc::test::entry_bytes;
using evmalloc::test::FrameImage;
using evmalloc::test::image_of;
using evmalloc::test::live_blocks;
using evmalloc::test::random_code;
using evmalloc::test::RecordingResource;
using evmalloc::test::reference_image;

namespace
{
using Code = std::vector<std::uint8_t>;
constexpr std::size_t entry_alignment = evmalloc::frame_buffer_alignment;

CodeHash hash_of(std::size_t n)
{
    CodeHash h{};
    for (std::size_t i = 0; i < h.bytes.size(); ++i)
        h.bytes[i] = static_cast<std::uint8_t>((n * 131 + i * 7) & 0xff);
    return h;
}

struct Shared
{
    std::vector<Code> codes;
    std::vector<CodeHash> hashes;
    std::vector<FrameImage> references;
};

// One thread's calls: nested up to 4 deep, random codes under both keys; every frame compared
// with its reference. Catch2 is not thread-safe: failures are counted, checked after the join.
template <class Traits, class Cache>
void run_calls(const Shared& shared, Cache& cache, std::uint32_t seed, std::size_t calls,
    std::atomic<std::size_t>& mismatches, std::atomic<std::size_t>& errors)
{
    FramePool<Traits> pool;
    std::mt19937 rng{seed};
    std::uniform_int_distribution<std::size_t> pick{0, shared.codes.size() - 1};
    std::vector<StackFrame<Traits>> frames;
    for (std::size_t n = 0; n < calls; ++n)
    {
        const std::size_t i = pick(rng);
        const bool trusted = (rng() & 1) != 0;
        evmalloc::Result<StackFrame<Traits>> f = evmalloc::Errc::out_of_memory;
        if constexpr (evmalloc::is_instruction_frame<Traits>)
        {
            const auto& table = evmalloc::test::distinct_op_table();
            f = trusted ? StackFrame<Traits>::init(
                              shared.codes[i], shared.hashes[i], table, pool, cache)
                        : StackFrame<Traits>::init(shared.codes[i], table, pool, cache);
        }
        else
        {
            f = trusted ? StackFrame<Traits>::init(shared.codes[i], shared.hashes[i], pool, cache)
                        : StackFrame<Traits>::init(shared.codes[i], pool, cache);
        }
        if (!f)
        {
            ++errors;
            continue;
        }
        if (!(image_of(*f) == shared.references[i]))
            ++mismatches;
        frames.push_back(std::move(*f));
        if (frames.size() == 4 || (rng() & 3) == 0)
        {
            // Read the older frames again while others evict, then unwind.
            for (std::size_t k = 0; k + 1 < frames.size(); ++k)
            {
                if (frames[k].analysis().code().size() + evmalloc::PaddedCode::padding !=
                    image_of(frames[k]).padded_code.size())
                    ++mismatches;
            }
            frames.clear();
        }
    }
}

template <class Traits>
Shared make_shared_codes()
{
    Shared s;
    const std::size_t sizes[] = {
        0, 33, 500, 1024, 3000, 4096, 4097, 7000, 12000, 20000, 24576, 30000};
    std::uint32_t seed = 100;
    for (const std::size_t size : sizes)
    {
        s.codes.push_back(random_code(size, seed++));
        s.hashes.push_back(hash_of(s.codes.size()));
        if constexpr (evmalloc::is_instruction_frame<Traits>)
            s.references.push_back(
                reference_image<Traits>(s.codes.back(), evmalloc::test::distinct_op_table()));
        else
            s.references.push_back(reference_image<Traits>(s.codes.back()));
    }
    return s;
}

template <class Traits>
void four_threads_with_evictions()
{
    const Shared shared = make_shared_codes<Traits>();
    RecordingResource upstream;  // thread-safe
    // Room for about three of the larger entries: far fewer than 12 codes under 2 keys.
    const std::size_t budget = 3 * entry_bytes<Traits>(20000);
    ConcurrentAnalysisCache<Traits> cache{
        &upstream, evmalloc::AnalysisCacheConfig{.max_bytes = budget}};
    std::atomic<std::size_t> mismatches{0}, errors{0};
    constexpr std::size_t calls = 400;
    {
        std::vector<std::thread> threads;
        for (std::uint32_t t = 0; t < 4; ++t)
        {
            threads.emplace_back(
                [&, t] { run_calls<Traits>(shared, cache, 1000 + t, calls, mismatches, errors); });
        }
        for (auto& th : threads)
            th.join();
    }
    CHECK(mismatches.load() == 0);
    CHECK(errors.load() == 0);
    CHECK(cache.pinned() == 0);
    CHECK(cache.hits() + cache.misses() + cache.not_admitted() == 4 * calls);
    CHECK(cache.evictions() > 0);
    CHECK(cache.hits() > 0);
    const auto blocks = live_blocks(upstream, entry_alignment);
    CHECK(cache.entries() == blocks.count);
    CHECK(cache.bytes() == blocks.bytes);
    CHECK(cache.bytes() <= budget);
    CHECK(cache.misses() == cache.entries() + cache.evictions());
    CHECK(upstream.errors().empty());
    cache.clear();  // every entry is unpinned (see analysis_cache_test for what clear() may leave)
    const auto after = live_blocks(upstream, entry_alignment);
    CHECK(cache.entries() == after.count);
    CHECK(cache.bytes() == after.bytes);
    CHECK(cache.entries() < blocks.count);
}
}  // namespace

TEST_CASE("four threads share one concurrent cache under evictions: every frame is right",
    "[concurrent_analysis_cache][analysis_cache][threads]")
{
    SECTION("instruction frame")
    {
        four_threads_with_evictions<DefaultTraits>();
    }
    SECTION("jumpdest frame")
    {
        four_threads_with_evictions<JumpdestTraits>();
    }
}

TEST_CASE("two threads missing on the same code at once leave one entry",
    "[concurrent_analysis_cache][analysis_cache][threads]")
{
    const Code code = random_code(131072, 77);  // long to analyse: the two builds overlap
    const auto& table = evmalloc::test::distinct_op_table();
    const FrameImage reference = reference_image<DefaultTraits>(code, table);
    const CodeHash h = hash_of(5);
    for (int round = 0; round < 6; ++round)
    {
        INFO("round " << round);
        const bool trusted = round % 2 == 1;
        RecordingResource upstream;
        ConcurrentAnalysisCache<> cache{&upstream};
        FramePool<> pools[2];
        std::barrier sync{2};
        std::optional<StackFrame<>> frames[2];
        std::atomic<std::size_t> errors{0};
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < 2; ++t)
        {
            threads.emplace_back([&, t] {
                sync.arrive_and_wait();
                auto f = trusted ? StackFrame<>::init(code, h, table, pools[t], cache)
                                 : StackFrame<>::init(code, table, pools[t], cache);
                if (f)
                    frames[t].emplace(std::move(*f));
                else
                    ++errors;
                sync.arrive_and_wait();  // both frames alive at once
            });
        }
        for (auto& th : threads)
            th.join();
        REQUIRE(errors.load() == 0);
        REQUIRE(frames[0].has_value());
        REQUIRE(frames[1].has_value());
        CHECK(frames[0]->analysis().code().data() == frames[1]->analysis().code().data());
        CHECK(image_of(*frames[0]) == reference);
        CHECK(cache.entries() == 1);
        CHECK(cache.misses() == 1);
        CHECK(cache.hits() == 1);
        CHECK(cache.pinned() == 1);
        CHECK(live_blocks(upstream, entry_alignment).count == 1);  // the loser's build was freed
        CHECK(cache.bytes() == live_blocks(upstream, entry_alignment).bytes);
        frames[0].reset();
        frames[1].reset();
        CHECK(cache.pinned() == 0);
        CHECK(cache.entries() == 1);
    }
}

TEST_CASE("the concurrent cache: bad input and a failing upstream change nothing",
    "[concurrent_analysis_cache][analysis_cache]")
{
    RecordingResource upstream;
    ConcurrentAnalysisCache<DefaultTraits, evmalloc::test::AlwaysSameHash> cache{&upstream};
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    const Code a = random_code(3000, 1), b = random_code(3001, 2);
    Code a2 = a;
    a2[10] ^= 0x40;
    const CodeHash h = hash_of(9);
    {
        auto f = StackFrame<>::init(a, h, table, pool, cache);
        REQUIRE(f.has_value());
    }
    const auto before = evmalloc::test::cache_state(cache);
    const std::size_t live = upstream.live_bytes();
    // A trusted hash cached for code of another size.
    CHECK(
        StackFrame<>::init(b, h, table, pool, cache).error() == evmalloc::Errc::code_hash_mismatch);
    // The entry's block refused by the upstream (a miss under the verified key).
    upstream.set_failing(true);
    CHECK(StackFrame<>::init(b, table, pool, cache).error() == evmalloc::Errc::out_of_memory);
    upstream.set_failing(false);
    CHECK(evmalloc::test::cache_state(cache) == before);
    CHECK(upstream.live_bytes() == live);
    CHECK(pool.active() == 0);
    // Colliding fingerprints under the verified key: each code its own entry and analysis.
    auto fa = StackFrame<>::init(a, table, pool, cache);
    auto fa2 = StackFrame<>::init(a2, table, pool, cache);
    REQUIRE(fa.has_value());
    REQUIRE(fa2.has_value());
    CHECK(image_of(*fa) == reference_image<DefaultTraits>(a, table));
    CHECK(image_of(*fa2) == reference_image<DefaultTraits>(a2, table));
    CHECK(cache.entries() == 3);
    CHECK(cache.bytes() == live_blocks(upstream, entry_alignment).bytes);
}

TEST_CASE("four threads: TinyLFU admission and eviction race with pins and clear()",
    "[concurrent_analysis_cache][analysis_cache][threads]")
{
    const auto& table = evmalloc::test::distinct_op_table();
    std::vector<Code> codes;
    std::vector<FrameImage> refs;
    for (std::uint32_t i = 0; i < 40; ++i)
    {
        codes.push_back(random_code(200 + 150 * (i % 9), 300 + i));
        refs.push_back(reference_image<DefaultTraits>(codes.back(), table));
    }
    RecordingResource upstream;
    ConcurrentAnalysisCache<> cache{
        &upstream, evmalloc::AnalysisCacheConfig{.max_bytes = 6 * entry_bytes<DefaultTraits>(1000),
                       .admission = evmalloc::Admission::tiny_lfu}};
    std::atomic<std::size_t> mismatches{0}, errors{0};
    constexpr std::size_t calls = 600;
    {
        std::vector<std::thread> threads;
        for (std::uint32_t t = 0; t < 4; ++t)
        {
            threads.emplace_back([&, t] {
                FramePool<> pool;
                std::mt19937 rng{77 + t};
                std::geometric_distribution<std::size_t> pick{0.15};
                std::vector<StackFrame<>> kept;
                for (std::size_t c = 0; c < calls; ++c)
                {
                    if (t == 0 && c % 25 == 0)
                        cache.clear();
                    const std::size_t i = std::min<std::size_t>(pick(rng), codes.size() - 1);
                    auto f = StackFrame<>::init(codes[i], table, pool, cache);
                    if (!f)
                    {
                        ++errors;
                        continue;
                    }
                    if (image_of(*f) != refs[i])
                        ++mismatches;
                    if (rng() % 3 == 0)
                        kept.push_back(std::move(*f));
                    if (kept.size() > 3 || rng() % 4 == 0)
                        kept.clear();
                }
            });
        }
        for (auto& th : threads)
            th.join();
    }
    CHECK(mismatches.load() == 0);
    CHECK(errors.load() == 0);
    CHECK(cache.pinned() == 0);
    CHECK(cache.hits() + cache.misses() + cache.not_admitted() == 4 * calls);
    CHECK(cache.not_admitted() > 0);
    CHECK(cache.hits() > 0);
    const auto blocks = live_blocks(upstream, entry_alignment);
    CHECK(cache.entries() == blocks.count);
    CHECK(cache.bytes() == blocks.bytes);
    CHECK(cache.misses() == cache.entries() + cache.evictions());
    CHECK(upstream.errors().empty());
}

namespace
{
// Codes whose verified key collides in groups of three (the id in their first 8 bytes, divided
// by 3): lookups meet candidates without their bytes, never more than max_compared.
struct GroupsOfThree
{
    std::uint64_t operator()(std::span<const std::uint8_t> code) const noexcept
    {
        std::uint64_t id = 0;
        std::memcpy(&id, code.data(), sizeof(id));
        return (id / 3 + 1) * 0x9e3779b97f4a7c15ULL;
    }
};

// One call of both caches: the same code, the same key; \returns the two frames (or errors).
template <class Cache>
evmalloc::Result<StackFrame<JumpdestTraits>> call(
    Cache& cache, FramePool<JumpdestTraits>& pool, const Code& code, const CodeHash* hash)
{
    return hash != nullptr ? StackFrame<JumpdestTraits>::init(code, *hash, pool, cache)
                           : StackFrame<JumpdestTraits>::init(code, pool, cache);
}
}  // namespace

TEST_CASE("the concurrent cache evicts in one global LRU order: the single cache's, call for call",
    "[concurrent_analysis_cache]")
{
    // 0.2.0's concurrent cache evicted the inserting shard's entries first, so the most recently
    // used entry could go while older ones stayed in other shards. One thread here: the order of
    // releases is the same in both caches, so with one global LRU every hit, miss and eviction is.
    constexpr std::size_t codes = 48;
    std::vector<Code> code(codes);
    std::vector<CodeHash> hashes(codes);
    for (std::size_t i = 0; i < codes; ++i)
    {
        code[i] = random_code(40 + 211 * (i % 9), static_cast<std::uint32_t>(i + 7));
        const std::uint64_t id = i;
        std::memcpy(code[i].data(), &id, sizeof(id));
        hashes[i] = hash_of(i + 1);
    }
    for (const std::size_t budget_entries : {std::size_t{0}, std::size_t{3}, std::size_t{8}})
    {
        INFO("budget " << budget_entries << " entries");
        const evmalloc::AnalysisCacheConfig config{
            .max_bytes = budget_entries * entry_bytes<JumpdestTraits>(900),
            .admission = evmalloc::Admission::always};
        evmalloc::AnalysisCache<JumpdestTraits, GroupsOfThree> single{
            std::pmr::new_delete_resource(), config};
        ConcurrentAnalysisCache<JumpdestTraits, GroupsOfThree> shared{
            std::pmr::new_delete_resource(), config};
        FramePool<JumpdestTraits> pool_a;
        FramePool<JumpdestTraits> pool_b;
        std::vector<StackFrame<JumpdestTraits>> live_a;
        std::vector<StackFrame<JumpdestTraits>> live_b;
        std::mt19937 rng{static_cast<std::uint32_t>(budget_entries + 1)};
        std::size_t differences = 0;
        for (std::size_t step = 0; step < 4000; ++step)
        {
            if (live_a.size() < 6 && (rng() % 10) < 6)
            {
                const std::size_t i = rng() % codes;
                const CodeHash* const hash = (rng() & 1) != 0 ? &hashes[i] : nullptr;
                auto a = call(single, pool_a, code[i], hash);
                auto b = call(shared, pool_b, code[i], hash);
                REQUIRE(a.has_value());
                REQUIRE(b.has_value());
                REQUIRE(image_of(*b) == image_of(*a));
                live_a.push_back(std::move(*a));
                live_b.push_back(std::move(*b));
            }
            else if (!live_a.empty())
            {
                const std::size_t k = rng() % live_a.size();  // any frame may go first
                live_a.erase(live_a.begin() + static_cast<std::ptrdiff_t>(k));
                live_b.erase(live_b.begin() + static_cast<std::ptrdiff_t>(k));
            }
            const bool same =
                single.hits() == shared.hits() && single.misses() == shared.misses() &&
                single.evictions() == shared.evictions() && single.entries() == shared.entries() &&
                single.bytes() == shared.bytes() && single.pinned() == shared.pinned();
            if (!same)
                ++differences;
        }
        CHECK(differences == 0);
        CHECK(shared.evictions() > 0);
        CHECK(shared.hits() > 0);
        live_a.clear();
        live_b.clear();
        CHECK(shared.pinned() == 0);
        CHECK(shared.bytes() <= config.max_bytes);
    }
}

TEST_CASE("four threads: verified hits on colliding codes, compared outside the lock, race with "
          "eviction and clear()",
    "[concurrent_analysis_cache][threads]")
{
    // Every lookup pins candidates under the lock and compares their bytes without it; other
    // threads evict, clear and release the same entries meanwhile.
    std::vector<Code> codes;
    std::vector<FrameImage> refs;
    for (std::uint32_t i = 0; i < 24; ++i)
    {
        codes.push_back(random_code(100 + 97 * (i % 5), 900 + i));
        const std::uint64_t id = i;
        std::memcpy(codes.back().data(), &id, sizeof(id));
        refs.push_back(reference_image<JumpdestTraits>(codes.back()));
    }
    RecordingResource upstream;
    ConcurrentAnalysisCache<JumpdestTraits, GroupsOfThree> cache{
        &upstream, evmalloc::AnalysisCacheConfig{.max_bytes = 5 * entry_bytes<JumpdestTraits>(300),
                       .admission = evmalloc::Admission::always}};
    std::atomic<std::size_t> mismatches{0}, errors{0};
    constexpr std::size_t calls = 800;
    {
        std::vector<std::thread> threads;
        for (std::uint32_t t = 0; t < 4; ++t)
        {
            threads.emplace_back([&, t] {
                FramePool<JumpdestTraits> pool;
                std::mt19937 rng{501 + t};
                std::vector<StackFrame<JumpdestTraits>> kept;
                for (std::size_t c = 0; c < calls; ++c)
                {
                    if (t == 1 && c % 40 == 0)
                        cache.clear();
                    const std::size_t i = rng() % codes.size();
                    auto f = StackFrame<JumpdestTraits>::init(codes[i], pool, cache);
                    if (!f)
                    {
                        ++errors;
                        continue;
                    }
                    if (image_of(*f) != refs[i])
                        ++mismatches;
                    kept.push_back(std::move(*f));
                    if (kept.size() > 3 || rng() % 3 == 0)
                        kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(rng() % kept.size()));
                }
            });
        }
        for (auto& th : threads)
            th.join();
    }
    CHECK(mismatches.load() == 0);
    CHECK(errors.load() == 0);
    CHECK(cache.pinned() == 0);
    CHECK(cache.hits() + cache.misses() + cache.not_admitted() == 4 * calls);
    CHECK(cache.hits() > 0);
    CHECK(cache.evictions() > 0);
    const auto blocks = live_blocks(upstream, entry_alignment);
    CHECK(cache.entries() == blocks.count);
    CHECK(cache.bytes() == blocks.bytes);
    CHECK(cache.bytes() <= 5 * entry_bytes<JumpdestTraits>(300));
    CHECK(cache.misses() == cache.entries() + cache.evictions());
    CHECK(upstream.errors().empty());
}
