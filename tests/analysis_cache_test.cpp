// The shared analysis (analysis_cache.hpp, StackFrame::init on a cache): the same analysis, ops
// and metadata as the per-frame path; one entry per (key, table); counters and upstream blocks
// that agree; every bad input and upstream failure an Errc with nothing lost; pins that follow
// the frames; the footprint of a deep self-recursion.
#include "catch.hpp"
#include "support/cache_check.hpp"
#include "support/corpus.hpp"
#include "support/op_table.hpp"
#include "support/pool_state.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/stack_frame.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <set>
#include <span>
#include <utility>
#include <vector>

using evmalloc::Admission;
using evmalloc::AnalysisCache;
using evmalloc::AnalysisCacheConfig;
using evmalloc::CodeHash;
using evmalloc::DefaultTraits;
using evmalloc::Errc;
using evmalloc::FramePool;
using evmalloc::FramePoolConfig;
using evmalloc::JumpdestTraits;
using evmalloc::StackFrame;
using evmalloc::test::AlwaysSameHash;
using evmalloc::test::cache_state;
using evmalloc::test::entry_bytes;
using evmalloc::test::image_of;
using evmalloc::test::live_blocks;
using evmalloc::test::NarrowTraits;
using evmalloc::test::random_code;
using evmalloc::test::RecordingResource;
using evmalloc::test::reference_image;
using evmalloc::test::state_of;

namespace
{
using Code = std::vector<std::uint8_t>;
constexpr std::size_t entry_alignment = evmalloc::frame_buffer_alignment;
constexpr std::size_t unlimited = std::size_t{1} << 40;

/// A code hash for tests: distinct per `n` (the cache never checks it against the bytes).
CodeHash hash_of(std::size_t n)
{
    CodeHash h{};
    for (std::size_t i = 0; i < h.bytes.size(); ++i)
        h.bytes[i] = static_cast<std::uint8_t>((n >> (8 * (i % 8))) ^ (i * 37));
    return h;
}

/// The table a test uses for Traits (none for a jumpdest frame).
template <class Traits>
const auto& table_for()
{
    if constexpr (std::is_same_v<Traits, DefaultTraits>)
        return evmalloc::test::distinct_op_table();
    else if constexpr (evmalloc::is_instruction_frame<Traits>)
    {
        static const auto t = evmalloc::test::distinct_table<Traits>(7);
        return t;
    }
    else
    {
        static const int none = 0;
        return none;
    }
}

/// A cached frame of `code` by the verified key (hash == nullptr) or the trusted one.
template <class Traits, class Cache>
evmalloc::Result<StackFrame<Traits>> init_cached(
    std::span<const std::uint8_t> code, const CodeHash* hash, FramePool<Traits>& pool, Cache& cache)
{
    if constexpr (evmalloc::is_instruction_frame<Traits>)
    {
        if (hash != nullptr)
            return StackFrame<Traits>::init(code, *hash, table_for<Traits>(), pool, cache);
        return StackFrame<Traits>::init(code, table_for<Traits>(), pool, cache);
    }
    else
    {
        if (hash != nullptr)
            return StackFrame<Traits>::init(code, *hash, pool, cache);
        return StackFrame<Traits>::init(code, pool, cache);
    }
}

template <class Traits>
evmalloc::test::FrameImage reference_of(std::span<const std::uint8_t> code)
{
    if constexpr (evmalloc::is_instruction_frame<Traits>)
        return reference_image<Traits>(code, table_for<Traits>());
    else
        return reference_image<Traits>(code);
}

/// For each code: the cached frame equals the per-frame path's, under both keys; a second frame
/// of the same code shares the entry; the trusted and the verified entries are two; counters
/// and the upstream's blocks exact after every step.
template <class Traits>
void check_codes_against_per_frame(const std::vector<Code>& codes)
{
    RecordingResource cache_upstream;
    RecordingResource pool_upstream;
    AnalysisCache<Traits> cache{&cache_upstream, AnalysisCacheConfig{.max_bytes = unlimited}};
    FramePool<Traits> pool{&pool_upstream};
    std::size_t entries = 0, bytes = 0, hits = 0, misses = 0;
    for (std::size_t i = 0; i < codes.size(); ++i)
    {
        const Code& code = codes[i];
        INFO("code " << i << " of " << code.size() << " bytes");
        const auto reference = reference_of<Traits>(code);
        REQUIRE(reference.padded_code.size() == code.size() + evmalloc::PaddedCode::padding);
        const CodeHash hash = hash_of(i);
        for (const CodeHash* key : {static_cast<const CodeHash*>(nullptr), &hash})
        {
            INFO((key == nullptr ? "verified key" : "trusted key"));
            auto first = init_cached<Traits>(code, key, pool, cache);
            REQUIRE(first.has_value());
            ++entries;
            ++misses;
            bytes += entry_bytes<Traits>(code.size());
            CHECK(first->is_prepared());
            CHECK(first->buffer_size() == evmalloc::stack_buffer_size<Traits>());
            CHECK(first->code_capacity() == 0);
            CHECK(image_of(*first) == reference);
            auto second = init_cached<Traits>(code, key, pool, cache);
            REQUIRE(second.has_value());
            ++hits;
            CHECK(second->analysis().code().data() == first->analysis().code().data());
            CHECK(image_of(*second) == reference);
            CHECK(cache.entries() == entries);
            CHECK(cache.bytes() == bytes);
            CHECK(cache.hits() == hits);
            CHECK(cache.misses() == misses);
            CHECK(cache.pinned() == 1);
            CHECK(cache.evictions() == 0);
            const auto blocks = live_blocks(cache_upstream, entry_alignment);
            CHECK(blocks.count == entries);
            CHECK(blocks.bytes == bytes);
            CHECK(pool.active() == 2);
        }
        CHECK(cache.pinned() == 0);
    }
    // The entries outlive their frames, and a later frame finds them all.
    for (std::size_t i = 0; i < codes.size(); ++i)
    {
        auto frame = init_cached<Traits>(codes[i], nullptr, pool, cache);
        REQUIRE(frame.has_value());
        CHECK(frame->analysis().code().size() == codes[i].size());
    }
    CHECK(cache.hits() == hits + codes.size());
    CHECK(cache.misses() == misses);
    CHECK(cache.entries() == entries);
    cache.clear();
    CHECK(cache.entries() == 0);
    CHECK(cache.bytes() == 0);
    CHECK(live_blocks(cache_upstream, entry_alignment).count == 0);
    CHECK(cache_upstream.errors().empty());
}

// The check above for both frame shapes and an instruction frame with narrow types, each in
// a section of its own (a fresh pool and cache each).
void check_codes_in_every_shape(const std::vector<Code>& codes)
{
    SECTION("instruction frame, DefaultTraits")
    {
        check_codes_against_per_frame<DefaultTraits>(codes);
    }
    SECTION("instruction frame, 16-bit ops and 32-bit metadata")
    {
        check_codes_against_per_frame<NarrowTraits>(codes);
    }
    SECTION("jumpdest frame")
    {
        check_codes_against_per_frame<JumpdestTraits>(codes);
    }
}

std::vector<Code> boundary_codes()
{
    std::vector<Code> codes;
    std::uint32_t seed = 1;
    for (const std::size_t size : evmalloc::test::tier_boundary_sizes())
        codes.push_back(random_code(size, seed++));
    return codes;
}
}  // namespace

TEST_CASE("tier boundary sizes are the ones the issue lists", "[analysis_cache]")
{
    const auto sizes = evmalloc::test::tier_boundary_sizes();
    for (const std::size_t s :
        {0UL, 1UL, 4095UL, 4096UL, 4097UL, 8192UL, 8193UL, 131071UL, 131072UL})
        CHECK(std::count(sizes.begin(), sizes.end(), s) == 1);
    CHECK(sizes.back() == evmalloc::max_code_size);
}

TEST_CASE("cached frames equal the per-frame path at every tier boundary", "[analysis_cache]")
{
    const auto codes = boundary_codes();
    check_codes_in_every_shape(codes);
}

TEST_CASE("cached frames equal the per-frame path on every corpus contract", "[analysis_cache]")
{
    const auto dir = evmalloc::test::corpus_dir();
    if (!dir)
        EVMALLOC_SKIP("corpus folder not found (../shared/corpus or $EVMALLOC_CORPUS): corpus "
                      "checks skipped");
    std::vector<Code> codes;
    std::set<Code> seen;  // a contract listed twice would hit, not miss
    for (auto& e : evmalloc::test::load_corpus(*dir))
    {
        if (seen.insert(e.code).second)
            codes.push_back(std::move(e.code));
    }
    REQUIRE(!codes.empty());
    check_codes_in_every_shape(codes);
}

TEST_CASE("a table is named by its contents or its id, never by its address", "[analysis_cache]")
{
    RecordingResource upstream;
    AnalysisCache<> cache{&upstream};
    FramePool<> pool{&upstream};
    const Code code = random_code(3000, 5);
    const StackFrame<>::OpTable table_a = evmalloc::test::distinct_op_table();
    const StackFrame<>::OpTable table_b = table_a;  // another object, the same contents
    StackFrame<>::OpTable table_c = table_a;
    std::swap(table_c[0x01], table_c[0x02]);  // other contents
    CHECK(evmalloc::table_id(table_a) == evmalloc::table_id(table_b));
    CHECK(evmalloc::table_id(table_a) != evmalloc::table_id(table_c));
    CHECK(evmalloc::table_id(table_a) != evmalloc::TableId{});

    auto a = StackFrame<>::init(code, table_a, pool, cache);
    auto b = StackFrame<>::init(code, table_b, pool, cache);  // equal contents: the same entry
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    CHECK(cache.entries() == 1);
    CHECK(cache.hits() == 1);
    CHECK(b->ops().data() == a->ops().data());
    auto c = StackFrame<>::init(code, table_c, pool, cache);  // other contents: another entry
    REQUIRE(c.has_value());
    CHECK(cache.entries() == 2);
    CHECK(c->ops().data() != a->ops().data());
    CHECK(image_of(*c) != image_of(*a));

    // Given ids: one id, one entry, whatever the table object; another id, another entry.
    const evmalloc::TableId seven{7};
    auto d = StackFrame<>::init(code, table_a, seven, pool, cache);
    auto d2 = StackFrame<>::init(code, table_b, seven, pool, cache);
    auto e = StackFrame<>::init(code, table_a, evmalloc::TableId{8}, pool, cache);
    REQUIRE(d.has_value());
    REQUIRE(d2.has_value());
    REQUIRE(e.has_value());
    CHECK(cache.entries() == 4);
    CHECK(d2->ops().data() == d->ops().data());
    CHECK(d->ops().data() != a->ops().data());
    CHECK(e->ops().data() != d->ops().data());
    CHECK(image_of(*d) == image_of(*a));
    // The trusted key is keyed by the table too.
    const CodeHash h = hash_of(1);
    auto t1 = StackFrame<>::init(code, h, table_a, seven, pool, cache);
    auto t2 = StackFrame<>::init(code, h, table_c, pool, cache);
    REQUIRE(t1.has_value());
    REQUIRE(t2.has_value());
    CHECK(t1->ops().data() != t2->ops().data());
    CHECK(image_of(*t1) == image_of(*a));
    CHECK(image_of(*t2) == image_of(*c));
}

TEST_CASE("a new table at a destroyed table's address gets its own handlers", "[analysis_cache]")
{
    // 0.2.0 keyed entries by the table's address: the second table, built where the first one
    // was, got the first one's handlers back.
    AnalysisCache<> cache;
    FramePool<> pool;
    const Code code = random_code(2000, 6);
    alignas(StackFrame<>::OpTable) std::byte storage[sizeof(StackFrame<>::OpTable)];
    const StackFrame<>::OpTable reference = evmalloc::test::distinct_op_table();
    auto* const first = ::new (storage) StackFrame<>::OpTable{reference};
    {
        auto f = StackFrame<>::init(code, *first, pool, cache);
        REQUIRE(f.has_value());
        CHECK(f->ops()[0] == reference[code[0]]);
    }
    first->~array();
    StackFrame<>::OpTable shifted{};
    for (std::size_t i = 0; i < shifted.size(); ++i)
        shifted[i] = reference[(i + 1) % reference.size()];
    auto* const second = ::new (storage) StackFrame<>::OpTable{shifted};
    REQUIRE(static_cast<void*>(second) == static_cast<void*>(first));
    auto f = StackFrame<>::init(code, *second, pool, cache);
    REQUIRE(f.has_value());
    CHECK(cache.entries() == 2);
    CHECK(cache.hits() == 0);
    const auto ops = f->ops();
    for (std::size_t i = 0; i + 1 < ops.size(); ++i)
        REQUIRE(ops[i] == shifted[code[f->analysis().inst_to_pc(i)]]);
    second->~array();
}

TEST_CASE("entry bytes follow the code's real length, not its tier", "[analysis_cache]")
{
    // 4097 bytes is in the 8 KiB tier; the entry is sized for 4097.
    STATIC_REQUIRE(evmalloc::code_part_bytes<DefaultTraits>(4097) <
                   evmalloc::code_part_bytes<DefaultTraits>(8192));
    RecordingResource upstream;
    AnalysisCache<> cache{&upstream};
    FramePool<> pool;
    const Code code = random_code(4097, 9);
    auto f = StackFrame<>::init(code, evmalloc::test::distinct_op_table(), pool, cache);
    REQUIRE(f.has_value());
    CHECK(cache.bytes() == entry_bytes<DefaultTraits>(4097));
    CHECK(upstream.live_bytes() > entry_bytes<DefaultTraits>(4097));  // plus the bucket array
    CHECK(live_blocks(upstream, entry_alignment).bytes == entry_bytes<DefaultTraits>(4097));
    // The padding after the code copy reads as zeros.
    const auto* end = f->analysis().code().data() + code.size();
    for (std::size_t i = 0; i < evmalloc::PaddedCode::padding; ++i)
        CHECK(end[i] == 0);
}

// ---- bad input ----

TEST_CASE("code above the pool's max_code_size: code_too_large, nothing inserted, pool unchanged",
    "[analysis_cache]")
{
    RecordingResource upstream;
    AnalysisCache<> cache{&upstream};
    FramePool<> pool{&upstream, FramePoolConfig{.max_code_size = 4096}};
    const Code small = random_code(100, 1);
    auto keep = StackFrame<>::init(small, evmalloc::test::distinct_op_table(), pool, cache);
    REQUIRE(keep.has_value());
    const auto cache_before = cache_state(cache);
    const auto pool_before = state_of(pool);
    const std::size_t allocations = upstream.allocations();
    const Code big = random_code(4097, 2);
    const CodeHash h = hash_of(2);
    CHECK(StackFrame<>::init(big, evmalloc::test::distinct_op_table(), pool, cache).error() ==
          Errc::code_too_large);
    CHECK(StackFrame<>::init(big, h, evmalloc::test::distinct_op_table(), pool, cache).error() ==
          Errc::code_too_large);
    FramePool<JumpdestTraits> jpool{&upstream, FramePoolConfig{.max_code_size = 4096}};
    AnalysisCache<JumpdestTraits> jcache{&upstream};
    CHECK(StackFrame<JumpdestTraits>::init(big, jpool, jcache).error() == Errc::code_too_large);
    CHECK(StackFrame<JumpdestTraits>::init(big, h, jpool, jcache).error() == Errc::code_too_large);
    CHECK(cache_state(cache) == cache_before);
    CHECK(state_of(pool) == pool_before);
    CHECK(jcache.entries() == 0);
    CHECK(jcache.misses() == 0);
    CHECK(jpool.active() == 0);
    CHECK(upstream.allocations() == allocations);
    // 4096 still runs.
    auto fits =
        StackFrame<>::init(random_code(4096, 3), evmalloc::test::distinct_op_table(), pool, cache);
    CHECK(fits.has_value());
}

namespace
{
/// Address space that no one may read (PROT_NONE): a code span of `n` bytes that faults on any
/// access, to show a path never reads the code.
class Unreadable
{
public:
    explicit Unreadable(std::size_t n)
      : n_{n}, p_{::mmap(nullptr, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)}
    {
        REQUIRE(p_ != MAP_FAILED);
    }
    ~Unreadable() { ::munmap(p_, n_); }
    Unreadable(const Unreadable&) = delete;
    Unreadable& operator=(const Unreadable&) = delete;
    std::span<const std::uint8_t> first(std::size_t n) const
    {
        return {static_cast<const std::uint8_t*>(p_), n};
    }

private:
    std::size_t n_;
    void* p_;
};

template <class Traits, class Cache>
void check_code_above_analysable(const Unreadable& code)
{
    constexpr std::size_t top = evmalloc::Analysis::max_analysable_size;
    RecordingResource upstream;
    upstream.fail_above(std::size_t{1} << 30);  // no test machine gives ~100 GiB
    Cache cache{&upstream};
    FramePool<Traits> pool{&upstream, FramePoolConfig{.max_code_size = SIZE_MAX}};
    REQUIRE(pool.config().max_code_size == top);  // clamped
    const CodeHash h = hash_of(9);
    for (const std::size_t n : {top + 1, top + 2})
    {
        INFO(n);
        CHECK(init_cached<Traits>(code.first(n), &h, pool, cache).error() == Errc::code_too_large);
        CHECK(init_cached<Traits>(code.first(n), nullptr, pool, cache).error() ==
              Errc::code_too_large);
        // The cache checks on its own too (a caller without a pool).
        const auto pinned = [&] {
            if constexpr (evmalloc::is_instruction_frame<Traits>)
                return cache.pin(code.first(n), &h, evmalloc::table_id(table_for<Traits>()),
                    table_for<Traits>());
            else
                return cache.pin(code.first(n), &h, evmalloc::TableId{});
        }();
        CHECK(pinned.error() == Errc::code_too_large);
    }
    CHECK(cache.entries() == 0);
    CHECK(cache.misses() == 0);
    CHECK(pool.active() == 0);
    CHECK(upstream.allocations() == 0);
    CHECK(upstream.failures() == 0);
}
}  // namespace

TEST_CASE("code above 2^32 - 2: code_too_large before a byte is read or anything allocated, "
          "whatever max_code_size says",
    "[analysis_cache]")
{
    const Unreadable code{evmalloc::Analysis::max_analysable_size + 2};
    check_code_above_analysable<DefaultTraits, AnalysisCache<DefaultTraits>>(code);
    check_code_above_analysable<JumpdestTraits, AnalysisCache<JumpdestTraits>>(code);
    check_code_above_analysable<DefaultTraits, evmalloc::ConcurrentAnalysisCache<DefaultTraits>>(
        code);
}

TEST_CASE(
    "what a lookup reads of an entry lies in the header's first cache line", "[analysis_cache]")
{
    const auto check = []<class Traits>(Traits*) {
        using Entry = evmalloc::detail::CacheEntry<Traits>;
        STATIC_REQUIRE(Entry::lookup_fits_one_line());
        CHECK(offsetof(Entry, bucket_hash) + sizeof(Entry::bucket_hash) <= 64);
        CHECK(offsetof(Entry, chain) + sizeof(Entry::chain) <= 64);
        CHECK(offsetof(Entry, table) + sizeof(Entry::table) <= 64);
        CHECK(offsetof(Entry, code_size) + sizeof(Entry::code_size) <= 64);
        CHECK(offsetof(Entry, trusted) + sizeof(Entry::trusted) <= 64);
        CHECK(offsetof(Entry, code_hash) + sizeof(CodeHash) <= 64);
        CHECK(offsetof(Entry, pins) + sizeof(Entry::pins) <= 64);
        // The header holds the code part's view: an instruction entry's (Analysis, ops,
        // metadata) fills 192 bytes, a jumpdest entry's (a JumpdestAnalysis) 128.
        CHECK(Entry::code_part_offset() == (evmalloc::is_instruction_frame<Traits> ? 192U : 128U));
    };
    check(static_cast<DefaultTraits*>(nullptr));
    check(static_cast<JumpdestTraits*>(nullptr));
}

TEST_CASE("a trusted hash cached for code of another size: code_hash_mismatch, nothing changed",
    "[analysis_cache]")
{
    RecordingResource upstream;
    AnalysisCache<> cache{&upstream};
    FramePool<> pool{&upstream};
    const auto& table = evmalloc::test::distinct_op_table();
    const Code code = random_code(500, 1);
    const CodeHash h = hash_of(77);
    const auto reference = reference_image<DefaultTraits>(code, table);
    {
        auto f = StackFrame<>::init(code, h, table, pool, cache);
        REQUIRE(f.has_value());
    }
    const Code other = random_code(501, 2);
    for (const bool pinned : {false, true})
    {
        INFO((pinned ? "while a frame pins the entry" : "while no frame pins it"));
        std::optional<StackFrame<>> holder;
        if (pinned)
            holder.emplace(*StackFrame<>::init(code, h, table, pool, cache));
        const auto cache_before = cache_state(cache);
        const auto pool_before = state_of(pool);
        const std::size_t allocations = upstream.allocations();
        const std::size_t live = upstream.live_bytes();
        auto bad = StackFrame<>::init(other, h, table, pool, cache);
        REQUIRE(!bad.has_value());
        CHECK(bad.error() == Errc::code_hash_mismatch);
        CHECK(cache_state(cache) == cache_before);
        CHECK(state_of(pool) == pool_before);
        CHECK(upstream.allocations() == allocations);
        CHECK(upstream.live_bytes() == live);
    }
    // The entry is intact and still answers its code.
    auto again = StackFrame<>::init(code, h, table, pool, cache);
    REQUIRE(again.has_value());
    CHECK(image_of(*again) == reference);
    // Jumpdest frames too.
    AnalysisCache<JumpdestTraits> jcache{&upstream};
    FramePool<JumpdestTraits> jpool{&upstream};
    {
        auto f = StackFrame<JumpdestTraits>::init(code, h, jpool, jcache);
        REQUIRE(f.has_value());
    }
    const auto before = cache_state(jcache);
    CHECK(StackFrame<JumpdestTraits>::init(other, h, jpool, jcache).error() ==
          Errc::code_hash_mismatch);
    CHECK(cache_state(jcache) == before);
    CHECK(jpool.active() == 0);
}

TEST_CASE(
    "debug builds: a trusted hash cached for other bytes of the same size is code_hash_mismatch",
    "[analysis_cache]")
{
    if (!evmalloc::enable_asserts)
        EVMALLOC_SKIP("release build: the trusted key does not compare the bytes (by contract)");
    AnalysisCache<> cache;
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    const Code code = random_code(300, 1);
    Code other = code;
    other[150] ^= 0x01;
    const CodeHash h = hash_of(3);
    {
        auto f = StackFrame<>::init(code, h, table, pool, cache);
        REQUIRE(f.has_value());
    }
    const auto before = cache_state(cache);
    CHECK(StackFrame<>::init(other, h, table, pool, cache).error() == Errc::code_hash_mismatch);
    CHECK(cache_state(cache) == before);
    CHECK(pool.active() == 0);
}

TEST_CASE("verified key with a forced-colliding fingerprint: each code gets its own analysis",
    "[analysis_cache]")
{
    RecordingResource upstream;
    AnalysisCache<DefaultTraits, AlwaysSameHash> cache{&upstream};
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    // Same size, one byte apart; and a third of another size.
    const Code a = random_code(2000, 11);
    Code b = a;
    b[1000] = static_cast<std::uint8_t>(b[1000] == 0x5b ? 0x00 : 0x5b);
    const Code c = random_code(2001, 12);
    const std::vector<const Code*> codes{&a, &b, &c};
    std::vector<evmalloc::test::FrameImage> references;
    for (const Code* code : codes)
        references.push_back(reference_image<DefaultTraits>(*code, table));
    REQUIRE(references[0] != references[1]);
    for (int round = 0; round < 2; ++round)
    {
        for (std::size_t i = 0; i < codes.size(); ++i)
        {
            INFO("round " << round << ", code " << i);
            auto f = StackFrame<>::init(*codes[i], table, pool, cache);
            REQUIRE(f.has_value());
            CHECK(image_of(*f) == references[i]);
        }
    }
    CHECK(cache.entries() == 3);
    CHECK(cache.misses() == 3);
    CHECK(cache.hits() == 3);
    // Jumpdest frames too.
    AnalysisCache<JumpdestTraits, AlwaysSameHash> jcache;
    FramePool<JumpdestTraits> jpool;
    for (int round = 0; round < 2; ++round)
    {
        for (std::size_t i = 0; i < codes.size(); ++i)
        {
            auto f = StackFrame<JumpdestTraits>::init(*codes[i], jpool, jcache);
            REQUIRE(f.has_value());
            CHECK(image_of(*f) == reference_image<JumpdestTraits>(*codes[i]));
        }
    }
    CHECK(jcache.entries() == 3);
    CHECK(jcache.hits() == 3);
}

TEST_CASE("trusted and verified entries never answer each other", "[analysis_cache]")
{
    AnalysisCache<> cache;
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    const Code code = random_code(700, 4);
    // The trusted hash whose first 8 bytes equal the fingerprint: the same 64-bit bucket input.
    CodeHash h{};
    const std::uint64_t fp = evmalloc::code_fingerprint(code);
    for (std::size_t i = 0; i < 8; ++i)
        h.bytes[i] = static_cast<std::uint8_t>(fp >> (8 * i));
    {
        auto t = StackFrame<>::init(code, h, table, pool, cache);
        REQUIRE(t.has_value());
        auto v = StackFrame<>::init(code, table, pool, cache);
        REQUIRE(v.has_value());
        CHECK(t->analysis().code().data() != v->analysis().code().data());
    }
    CHECK(cache.entries() == 2);
    CHECK(cache.misses() == 2);
    CHECK(cache.hits() == 0);
    {
        auto v = StackFrame<>::init(code, table, pool, cache);
        auto t = StackFrame<>::init(code, h, table, pool, cache);
        REQUIRE(v.has_value());
        REQUIRE(t.has_value());
    }
    CHECK(cache.entries() == 2);
    CHECK(cache.hits() == 2);
}

// ---- upstream failures at every allocation point ----

namespace
{
struct Step
{
    const Code* code;
    const CodeHash* hash;  // nullptr: verified key
};

// A scenario of nested calls (each step's frame stays alive until the end): misses under both
// keys, hits, nested self-calls. Cache and pool share one recording upstream, so fail_after(k)
// reaches every allocation either makes, in order.
template <class Traits>
void walk_every_allocation_point()
{
    const Code a = random_code(5000, 21), b = random_code(40, 22), c = random_code(17000, 23);
    const CodeHash ha = hash_of(100), hc = hash_of(102);
    const std::vector<Step> steps{{&a, nullptr}, {&b, nullptr}, {&a, nullptr}, {&a, &ha}, {&c, &hc},
        {&b, nullptr}, {&c, nullptr}, {&c, &hc}};

    // The fault-free run: what the counters end at.
    evmalloc::test::CacheState clean_end{};
    std::size_t clean_allocations = 0;
    {
        RecordingResource upstream;
        AnalysisCache<Traits> cache{&upstream};
        FramePool<Traits> pool{&upstream};
        {
            std::vector<StackFrame<Traits>> frames;
            for (const Step& s : steps)
                frames.push_back(*init_cached<Traits>(*s.code, s.hash, pool, cache));
        }
        clean_end = cache_state(cache);
        clean_allocations = upstream.allocations();
    }
    REQUIRE(clean_end.entries == 5);
    REQUIRE(clean_end.misses == 5);
    REQUIRE(clean_end.hits == 3);

    std::size_t faults_seen = 0;
    for (std::size_t k = 0;; ++k)
    {
        INFO("upstream fails after " << k << " allocations");
        RecordingResource upstream;
        AnalysisCache<Traits> cache{&upstream};
        FramePool<Traits> pool{&upstream};
        std::vector<StackFrame<Traits>> frames;
        upstream.fail_after(k);
        bool failed = false;
        for (std::size_t i = 0; i < steps.size(); ++i)
        {
            const Step& s = steps[i];
            const auto cache_before = cache_state(cache);
            const auto pool_before = state_of(pool);
            const auto entries_before = live_blocks(upstream, entry_alignment);
            const std::size_t live_before = upstream.live_bytes();
            auto frame = init_cached<Traits>(*s.code, s.hash, pool, cache);
            if (frame)
                frames.push_back(std::move(*frame));
            else
            {
                INFO("step " << i);
                failed = true;
                ++faults_seen;
                CHECK(frame.error() == Errc::out_of_memory);
                CHECK(cache_state(cache) == cache_before);
                CHECK(state_of(pool) == pool_before);
                const auto entries_after = live_blocks(upstream, entry_alignment);
                CHECK(entries_after.count == entries_before.count);
                CHECK(entries_after.bytes == entries_before.bytes);
                // Only the bucket array may stay (kept as the cache's capacity).
                CHECK(upstream.live_bytes() >= live_before);
                CHECK(upstream.live_bytes() - live_before <= 64 * sizeof(void*));
                upstream.stop_failing();
                auto retry =
                    init_cached<Traits>(*s.code, s.hash, pool, cache);  // the next call works
                REQUIRE(retry.has_value());
                frames.push_back(std::move(*retry));
            }
            CHECK(image_of(frames.back()) == reference_of<Traits>(*s.code));
        }
        CHECK(cache.pinned() == 5);
        frames.clear();
        CHECK(cache.pinned() == 0);
        CHECK(pool.active() == 0);
        // 64-byte aligned blocks: the entries and the pool's retained stack buffers.
        const auto blocks = live_blocks(upstream, entry_alignment);
        CHECK(blocks.count == cache.entries() + pool.retained_stacks());
        CHECK(blocks.bytes ==
              cache.bytes() + pool.retained_stacks() * evmalloc::stack_buffer_size<Traits>());
        CHECK(upstream.errors().empty());
        if (upstream.failures() == 0)
        {
            CHECK(!failed);
            CHECK(cache_state(cache) == clean_end);
            CHECK(k == clean_allocations);
            break;
        }
        CHECK(failed);  // every refused allocation made its call fail
    }
    CHECK(faults_seen == clean_allocations);
}
}  // namespace

TEST_CASE("upstream failing at every allocation point of a scenario: out_of_memory, nothing lost",
    "[analysis_cache]")
{
    SECTION("instruction frame")
    {
        walk_every_allocation_point<DefaultTraits>();
    }
    SECTION("jumpdest frame")
    {
        walk_every_allocation_point<JumpdestTraits>();
    }
}

TEST_CASE("the stack buffer failing on a hit and on a miss: out_of_memory, nothing inserted",
    "[analysis_cache]")
{
    RecordingResource cache_upstream, pool_upstream;
    AnalysisCache<> cache{&cache_upstream};
    FramePool<> pool{&pool_upstream, FramePoolConfig{.retain_per_tier = 0}};
    const auto& table = evmalloc::test::distinct_op_table();
    const Code a = random_code(3000, 1), b = random_code(3001, 2);
    {
        auto f = StackFrame<>::init(a, table, pool, cache);
        REQUIRE(f.has_value());
    }
    REQUIRE(pool.retained_stacks() == 0);
    const auto cache_before = cache_state(cache);
    const auto pool_before = state_of(pool);
    const std::size_t cache_live = cache_upstream.live_bytes();
    pool_upstream.set_failing(true);
    CHECK(StackFrame<>::init(a, table, pool, cache).error() == Errc::out_of_memory);  // hit
    CHECK(StackFrame<>::init(b, table, pool, cache).error() == Errc::out_of_memory);  // miss
    CHECK(cache_state(cache) == cache_before);
    CHECK(state_of(pool) == pool_before);
    CHECK(cache_upstream.live_bytes() == cache_live);
    CHECK(pool_upstream.live_bytes() == 0);
    pool_upstream.set_failing(false);
    auto fb = StackFrame<>::init(b, table, pool, cache);
    REQUIRE(fb.has_value());
    CHECK(image_of(*fb) == reference_image<DefaultTraits>(b, table));
    CHECK(cache.misses() == cache_before.misses + 1);
}

TEST_CASE("a miss whose bucket array cannot be had leaves no entry that lookups cannot find",
    "[analysis_cache]")
{
    // Regression: when the first bucket array cannot be had, the miss is out_of_memory (no
    // entry that a lookup could not find is left behind).
    RecordingResource cache_upstream;
    AnalysisCache<> cache{&cache_upstream};
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    const Code a = random_code(1000, 1);
    cache_upstream.fail_after(1);  // the entry, not the bucket array
    auto first = StackFrame<>::init(a, table, pool, cache);
    cache_upstream.stop_failing();
    if (first.has_value())
    {
        auto second = StackFrame<>::init(a, table, pool, cache);
        REQUIRE(second.has_value());
        CHECK(cache.entries() == 1);
        CHECK(second->analysis().code().data() == first->analysis().code().data());
    }
    else
    {
        CHECK(first.error() == Errc::out_of_memory);
        CHECK(cache.entries() == 0);
        CHECK(live_blocks(cache_upstream, entry_alignment).count == 0);
    }
}

TEST_CASE(
    "a hit that fails on the stack buffer leaves the recency order as it was", "[analysis_cache]")
{
    // Regression: a call that failed after its lookup leaves the recency order as it was
    // (recency is kept when a frame unpins, not at the lookup).
    const Code a = random_code(1000, 1), b = random_code(1000, 2), c = random_code(1000, 3),
               d = random_code(1000, 4);
    RecordingResource pool_upstream;
    AnalysisCache<> cache{std::pmr::new_delete_resource(),
        AnalysisCacheConfig{
            .max_bytes = 3 * entry_bytes<DefaultTraits>(1000), .admission = Admission::always}};
    FramePool<> pool{&pool_upstream, FramePoolConfig{.retain_per_tier = 0}};
    const auto& table = evmalloc::test::distinct_op_table();
    for (const Code* code : {&a, &b, &c})
        REQUIRE(StackFrame<>::init(*code, table, pool, cache).has_value());
    pool_upstream.set_failing(true);
    REQUIRE(StackFrame<>::init(a, table, pool, cache).error() == Errc::out_of_memory);
    pool_upstream.set_failing(false);
    REQUIRE(StackFrame<>::init(d, table, pool, cache)
                .has_value());  // evicts the least recently used: a
    CHECK(cache.evictions() == 1);
    const std::size_t hits = cache.hits();
    REQUIRE(StackFrame<>::init(b, table, pool, cache).has_value());
    CHECK(cache.hits() == hits + 1);  // b is still there
}

// ---- call depth, clear, eviction, LRU ----

TEST_CASE(
    "1025 frames alive: call_depth_exceeded on a cached init, nothing changed", "[analysis_cache]")
{
    RecordingResource upstream;
    AnalysisCache<> cache{&upstream};
    FramePool<> pool{&upstream};
    REQUIRE(pool.config().max_frames == 1025);
    const auto& table = evmalloc::test::distinct_op_table();
    const Code a = random_code(2000, 1), b = random_code(30, 2);
    std::vector<StackFrame<>> frames;
    frames.reserve(1025);
    for (std::size_t i = 0; i < 1025; ++i)
    {
        // Cached and per-frame frames count alike.
        if (i % 5 == 4)
            frames.push_back(*StackFrame<>::init(b.size(), pool));
        else
            frames.push_back(*StackFrame<>::init(a, table, pool, cache));
    }
    REQUIRE(pool.active() == 1025);
    const auto cache_before = cache_state(cache);
    const auto pool_before = state_of(pool);
    const std::size_t allocations = upstream.allocations();
    const CodeHash h = hash_of(1);
    CHECK(StackFrame<>::init(a, table, pool, cache).error() == Errc::call_depth_exceeded);  // hit
    CHECK(StackFrame<>::init(b, table, pool, cache).error() == Errc::call_depth_exceeded);  // miss
    CHECK(StackFrame<>::init(b, h, table, pool, cache).error() == Errc::call_depth_exceeded);
    CHECK(StackFrame<>::init(b.size(), pool).error() == Errc::call_depth_exceeded);
    CHECK(cache_state(cache) == cache_before);
    CHECK(state_of(pool) == pool_before);
    CHECK(upstream.allocations() == allocations);
    CHECK(cache.pinned() == 1);
    frames.pop_back();
    CHECK(StackFrame<>::init(b, table, pool, cache).has_value());
    frames.clear();
    CHECK(cache.pinned() == 0);
}

TEST_CASE("clear() while entries are pinned: the pinned ones stay valid", "[analysis_cache]")
{
    RecordingResource upstream;
    AnalysisCache<> cache{&upstream};
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    const Code a = random_code(9000, 1), b = random_code(9000, 2);
    const auto ref_a = reference_image<DefaultTraits>(a, table);
    std::optional<StackFrame<>> fa{*StackFrame<>::init(a, table, pool, cache)};
    REQUIRE(StackFrame<>::init(b, table, pool, cache).has_value());
    REQUIRE(cache.entries() == 2);
    cache.clear();
    CHECK(cache.entries() == 1);
    CHECK(cache.bytes() == entry_bytes<DefaultTraits>(a.size()));
    CHECK(live_blocks(upstream, entry_alignment).count == 1);
    CHECK(image_of(*fa) == ref_a);
    // The pinned entry still answers.
    std::optional<StackFrame<>> fa2{*StackFrame<>::init(a, table, pool, cache)};
    CHECK(fa2->analysis().code().data() == fa->analysis().code().data());
    CHECK(cache.hits() == 1);
    fa.reset();
    fa2.reset();
    CHECK(cache.entries() == 1);  // unpinned, within budget: kept
    CHECK(cache.pinned() == 0);
}

TEST_CASE(
    "clear() frees every unpinned entry, also one hit since it was inserted", "[analysis_cache]")
{
    // Regression: the newest unpinned entry is freed by clear() and by the budget too (no
    // entry that no frame pins outlives them).
    RecordingResource upstream;
    AnalysisCache<> cache{&upstream};
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    const Code a = random_code(900, 1);
    REQUIRE(StackFrame<>::init(a, table, pool, cache).has_value());
    REQUIRE(StackFrame<>::init(a, table, pool, cache).has_value());  // a hit
    REQUIRE(cache.pinned() == 0);
    cache.clear();
    CHECK(cache.entries() == 0);
    CHECK(cache.bytes() == 0);
    CHECK(live_blocks(upstream, entry_alignment).count == 0);
}

TEST_CASE("max_bytes 0 keeps nothing after the last frame goes, also an entry that was hit",
    "[analysis_cache]")
{
    // Regression, through the budget: the newest entry, hit while pinned, goes at its last unpin.
    RecordingResource upstream;
    AnalysisCache<JumpdestTraits> cache{
        &upstream, AnalysisCacheConfig{.max_bytes = 0, .admission = Admission::always}};
    FramePool<JumpdestTraits> pool;
    const Code a = random_code(5000, 1);
    {
        auto f = StackFrame<JumpdestTraits>::init(a, pool, cache);
        REQUIRE(f.has_value());
        auto g = StackFrame<JumpdestTraits>::init(a, pool, cache);
        REQUIRE(g.has_value());
    }
    CHECK(cache.entries() == 0);
    CHECK(cache.bytes() == 0);
    CHECK(live_blocks(upstream, entry_alignment).count == 0);
}

TEST_CASE("eviction while entries are pinned: bytes pass max_bytes only by pinned entries",
    "[analysis_cache]")
{
    RecordingResource upstream;
    const std::size_t one = entry_bytes<DefaultTraits>(6000);
    AnalysisCache<> cache{
        &upstream, AnalysisCacheConfig{.max_bytes = one, .admission = Admission::always}};
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    std::vector<Code> codes;
    std::vector<evmalloc::test::FrameImage> refs;
    for (std::uint32_t i = 0; i < 4; ++i)
    {
        codes.push_back(random_code(6000, 40 + i));
        refs.push_back(reference_image<DefaultTraits>(codes.back(), table));
    }
    std::vector<StackFrame<>> frames;
    for (std::size_t i = 0; i < codes.size(); ++i)
    {
        frames.push_back(*StackFrame<>::init(codes[i], table, pool, cache));
        CHECK(cache.entries() == i + 1);  // all pinned: a full budget never fails a call
        CHECK(cache.bytes() == (i + 1) * one);
    }
    CHECK(cache.evictions() == 0);
    for (std::size_t i = 0; i < codes.size(); ++i)
        CHECK(image_of(frames[i]) == refs[i]);
    // Unpinning the oldest three evicts them; the newest stays within budget.
    frames.erase(frames.begin());
    CHECK(cache.entries() == 3);
    frames.erase(frames.begin());
    frames.erase(frames.begin());
    CHECK(cache.entries() == 1);
    CHECK(cache.bytes() == one);
    CHECK(cache.evictions() == 3);
    CHECK(image_of(frames[0]) == refs[3]);
    CHECK(live_blocks(upstream, entry_alignment).count == 1);
    frames.clear();
    CHECK(cache.entries() == 1);
    CHECK(cache.bytes() <= cache.config().max_bytes);
}

TEST_CASE(
    "LRU order: with room for 3 entries, use A B C, hit A, insert D: B goes", "[analysis_cache]")
{
    const Code a = random_code(1000, 1), b = random_code(1000, 2), c = random_code(1000, 3),
               d = random_code(1000, 4);
    const std::size_t one = entry_bytes<DefaultTraits>(1000);
    RecordingResource upstream;
    AnalysisCache<> cache{
        &upstream, AnalysisCacheConfig{.max_bytes = 3 * one, .admission = Admission::always}};
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    const auto use = [&](const Code& code) {
        REQUIRE(StackFrame<>::init(code, table, pool, cache).has_value());
    };
    use(a);
    use(b);
    use(c);
    use(a);
    CHECK(cache.evictions() == 0);
    CHECK(cache.hits() == 1);
    use(d);
    CHECK(cache.evictions() == 1);
    CHECK(cache.entries() == 3);
    CHECK(cache.bytes() == 3 * one);
    // a, c and d are there (hits); b is not (a miss).
    use(a);
    use(c);
    use(d);
    CHECK(cache.hits() == 4);
    CHECK(cache.misses() == 4);
    use(b);
    CHECK(cache.misses() == 5);
    CHECK(cache.evictions() == 2);
    CHECK(cache.entries() == 3);
    CHECK(live_blocks(upstream, entry_alignment).count == 3);
}

TEST_CASE("LRU order is exact: after a, c, d are hit in that order, a new entry evicts a",
    "[analysis_cache]")
{
    // Regression: eviction frees exactly the least recently released unpinned entries, in the
    // order their frames released them.
    const Code a = random_code(1000, 1), b = random_code(1000, 2), c = random_code(1000, 3),
               d = random_code(1000, 4);
    const std::size_t one = entry_bytes<DefaultTraits>(1000);
    AnalysisCache<> cache{std::pmr::new_delete_resource(),
        AnalysisCacheConfig{.max_bytes = 3 * one, .admission = Admission::always}};
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    const auto use = [&](const Code& code) {
        REQUIRE(StackFrame<>::init(code, table, pool, cache).has_value());
    };
    for (const Code* code : {&a, &b, &c, &a, &d})  // b evicted
        use(*code);
    REQUIRE(cache.evictions() == 1);
    for (const Code* code : {&a, &c, &d, &b})  // a, c, d hit in this order; b evicts the LRU: a
        use(*code);
    REQUIRE(cache.evictions() == 2);
    const std::size_t hits = cache.hits();
    use(c);
    use(d);
    CHECK(cache.hits() == hits + 2);  // c and d still there
    use(a);
    CHECK(cache.hits() == hits + 2);  // a was the one evicted
}

// ---- pins follow the frames ----

TEST_CASE("moves of a frame move its pin; a moved-from frame pins nothing", "[analysis_cache]")
{
    AnalysisCache<> cache{std::pmr::new_delete_resource(),
        AnalysisCacheConfig{.max_bytes = 0, .admission = Admission::always}};
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    const Code a = random_code(800, 1), b = random_code(800, 2);
    const auto ref_a = reference_image<DefaultTraits>(a, table);
    {
        auto f = StackFrame<>::init(a, table, pool, cache);
        REQUIRE(f.has_value());
        CHECK(cache.pinned() == 1);
        StackFrame<> g{std::move(*f)};
        CHECK(cache.pinned() == 1);
        CHECK(!f->is_prepared());
        {
            StackFrame<> dropped{std::move(*f)};
        }  // the moved-from frame: nothing to unpin
        CHECK(cache.pinned() == 1);
        CHECK(cache.entries() == 1);
        CHECK(image_of(g) == ref_a);
        auto h = StackFrame<>::init(b, table, pool, cache);
        REQUIRE(h.has_value());
        CHECK(cache.pinned() == 2);
        *h = std::move(g);  // h lets go of b's entry (max_bytes 0: freed) and takes a's pin
        CHECK(cache.pinned() == 1);
        CHECK(cache.entries() == 1);
        CHECK(image_of(*h) == ref_a);
        CHECK(pool.active() == 1);
    }
    CHECK(cache.pinned() == 0);
    CHECK(cache.entries() == 0);  // max_bytes 0 keeps nothing after the last frame goes
    CHECK(cache.bytes() == 0);
}

TEST_CASE("max_bytes 0 keeps nothing after the last frame goes", "[analysis_cache]")
{
    RecordingResource upstream;
    AnalysisCache<JumpdestTraits> cache{
        &upstream, AnalysisCacheConfig{.max_bytes = 0, .admission = Admission::always}};
    FramePool<JumpdestTraits> pool;
    const Code a = random_code(5000, 1), b = random_code(6000, 2);
    {
        auto f = StackFrame<JumpdestTraits>::init(a, pool, cache);
        REQUIRE(f.has_value());
        std::optional<StackFrame<JumpdestTraits>> g{
            *StackFrame<JumpdestTraits>::init(b, pool, cache)};
        CHECK(cache.entries() == 2);  // both pinned: kept over the budget
        CHECK(
            cache.bytes() == entry_bytes<JumpdestTraits>(5000) + entry_bytes<JumpdestTraits>(6000));
        g.reset();
        CHECK(cache.entries() == 1);  // b went with its frame; f still pins a
        CHECK(cache.evictions() == 1);
    }
    CHECK(cache.entries() == 0);
    CHECK(cache.bytes() == 0);
    CHECK(live_blocks(upstream, entry_alignment).count == 0);
    CHECK(cache.evictions() == 2);
    REQUIRE(StackFrame<JumpdestTraits>::init(a, pool, cache).has_value());
    CHECK(cache.misses() == 3);  // analysed afresh
    CHECK(cache.entries() == 0);
}

TEST_CASE("a frame on a shared entry refuses prepare() with code_too_large", "[analysis_cache]")
{
    AnalysisCache<> cache;
    FramePool<> pool;
    const auto& table = evmalloc::test::distinct_op_table();
    const Code a = random_code(100, 1), b = random_code(10, 2);
    auto f = StackFrame<>::init(a, table, pool, cache);
    REQUIRE(f.has_value());
    const auto before = image_of(*f);
    CHECK(f->prepare(b, table).error() == Errc::code_too_large);
    CHECK(f->prepare(a, table).error() == Errc::code_too_large);
    CHECK(f->is_prepared());
    CHECK(image_of(*f) == before);
    AnalysisCache<JumpdestTraits> jcache;
    FramePool<JumpdestTraits> jpool;
    auto j = StackFrame<JumpdestTraits>::init(a, jpool, jcache);
    REQUIRE(j.has_value());
    CHECK(j->prepare(b).error() == Errc::code_too_large);
    CHECK(j->analysis().code().size() == a.size());
}

// ---- footprint ----

TEST_CASE("footprint: a 1025-deep self-recursion of a 24 KiB contract holds 15x less shared",
    "[analysis_cache]")
{
    Code code;
    if (const auto dir = evmalloc::test::corpus_dir())
    {
        for (auto& e : evmalloc::test::load_corpus(*dir))
        {
            if (e.code.size() == 24576)
                code = std::move(e.code);
        }
    }
    if (code.empty())
        code = random_code(24576, 99);
    const auto& table = evmalloc::test::distinct_op_table();

    const auto depth_bytes = [&](auto&& init_one, RecordingResource& upstream) {
        std::vector<StackFrame<>> frames;
        frames.reserve(1025);
        for (std::size_t i = 0; i < 1025; ++i)
        {
            auto f = init_one();
            REQUIRE(f.has_value());
            frames.push_back(std::move(*f));
        }
        return upstream.live_bytes();
    };

    RecordingResource per_frame_upstream;
    FramePool<> per_frame_pool{&per_frame_upstream};
    const std::size_t per_frame = depth_bytes(
        [&] {
            auto f = StackFrame<>::init(code.size(), per_frame_pool);
            if (f)
                (void)f->prepare(code, table);
            return f;
        },
        per_frame_upstream);

    RecordingResource shared_upstream;
    AnalysisCache<> cache{&shared_upstream};
    FramePool<> shared_pool{&shared_upstream};
    const std::size_t shared = depth_bytes(
        [&] { return StackFrame<>::init(code, table, shared_pool, cache); }, shared_upstream);

    std::printf("footprint of a 1025-deep self-recursion of %zu bytes of code: per-frame %zu "
                "bytes, shared %zu "
                "bytes (%.1fx)\n",
        code.size(), per_frame, shared,
        static_cast<double>(per_frame) / static_cast<double>(shared));
    CHECK(per_frame >= 15 * shared);
    CHECK(cache.entries() == 1);
    CHECK(cache.pinned() == 0);
}
