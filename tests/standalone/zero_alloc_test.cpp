// The headline property: after warm-up, a call (init, prepare, stack work, memory growth
// within what earlier calls reached, release) makes ZERO heap allocations. This executable
// replaces every form of the global operator new / delete with counting versions; the count
// is taken only while a test says so.
#include "catch.hpp"
#include "support/op_table.hpp"

#include <evmalloc/stack_frame.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

namespace
{
std::atomic<bool> counting{false};
std::atomic<std::size_t> new_calls{0};
std::atomic<std::size_t> delete_calls{0};

// nullptr when malloc fails.
void* counted_new_nothrow(std::size_t size, std::size_t alignment = 0) noexcept
{
    if (counting.load(std::memory_order_relaxed))
        new_calls.fetch_add(1, std::memory_order_relaxed);
    if (size == 0)
        size = 1;
    return alignment > alignof(std::max_align_t)
               ? std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment)
               : std::malloc(size);
}

// Throws std::bad_alloc when malloc fails (aborts where exceptions are off).
void* counted_new(std::size_t size, std::size_t alignment = 0)
{
    void* const p = counted_new_nothrow(size, alignment);
    if (p == nullptr)
    {
#if defined(__cpp_exceptions)
        throw std::bad_alloc();
#else
        std::abort();
#endif
    }
    return p;
}

void counted_delete(void* p) noexcept
{
    if (p != nullptr && counting.load(std::memory_order_relaxed))
        delete_calls.fetch_add(1, std::memory_order_relaxed);
    std::free(p);
}

// Counts the heap calls made while it is alive.
class Counter
{
public:
    Counter() noexcept
    {
        new_calls = 0;
        delete_calls = 0;
        counting = true;
    }
    ~Counter() { counting = false; }
    Counter(const Counter&) = delete;
    Counter& operator=(const Counter&) = delete;
    [[nodiscard]] std::size_t news() const noexcept { return new_calls; }
    [[nodiscard]] std::size_t deletes() const noexcept { return delete_calls; }
};
}  // namespace

void* operator new(std::size_t n)
{
    return counted_new(n);
}
void* operator new[](std::size_t n)
{
    return counted_new(n);
}
void* operator new(std::size_t n, std::align_val_t a)
{
    return counted_new(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a)
{
    return counted_new(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept
{
    return counted_new_nothrow(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept
{
    return counted_new_nothrow(n);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept
{
    return counted_new_nothrow(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept
{
    return counted_new_nothrow(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept
{
    counted_delete(p);
}
void operator delete[](void* p) noexcept
{
    counted_delete(p);
}
void operator delete(void* p, std::size_t) noexcept
{
    counted_delete(p);
}
void operator delete[](void* p, std::size_t) noexcept
{
    counted_delete(p);
}
void operator delete(void* p, std::align_val_t) noexcept
{
    counted_delete(p);
}
void operator delete[](void* p, std::align_val_t) noexcept
{
    counted_delete(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept
{
    counted_delete(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept
{
    counted_delete(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept
{
    counted_delete(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept
{
    counted_delete(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept
{
    counted_delete(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept
{
    counted_delete(p);
}

namespace
{
using Frame = evmalloc::StackFrame<>;
using Pool = evmalloc::FramePool<>;

const Frame::OpTable& op_table()
{
    return evmalloc::test::distinct_op_table();
}

// Per depth: the code a call at that depth runs and how far it grows memory.
struct Call
{
    std::vector<std::uint8_t> code;
    std::uint64_t memory_bytes;
};

// Failures are counted, not reported, while the counter runs (a report may allocate).
struct Tally
{
    std::size_t calls = 0;
    std::size_t failures = 0;
    std::uint64_t checksum = 0;
};

// One call at `depth`, which calls the next depth before it returns.
void call(const std::vector<Call>& calls, std::size_t depth, std::size_t max_depth, Pool& pool,
    Tally& tally)
{
    const Call& c = calls[depth % calls.size()];
    auto frame = Frame::init(c.code.size(), pool);
    if (!frame)
    {
        ++tally.failures;
        return;
    }
    ++tally.calls;
    if (!frame->prepare(c.code, op_table()))
        ++tally.failures;
    auto& stack = frame->stack();
    for (std::uint64_t i = 0; i < 64; ++i)
        stack.push_unchecked(evmalloc::Word::from(i + depth));
    const auto gas = frame->memory().expand(0, c.memory_bytes);
    if (!gas || frame->memory().size() < c.memory_bytes)
        ++tally.failures;
    else if (c.memory_bytes != 0)
        frame->memory().data()[c.memory_bytes - 1] = static_cast<std::uint8_t>(depth);
    tally.checksum +=
        frame->analysis().instruction_count() + frame->metadata()[0] + stack.top().limbs[0];
    if (depth + 1 < max_depth)
        call(calls, depth + 1, max_depth, pool, tally);
}
}  // namespace

TEST_CASE("the counting operator new sees allocations (control)", "[zero_alloc]")
{
    std::size_t news = 0, deletes = 0;
    {
        Counter counter;
        void* raw = ::operator new(64);
        ::operator delete(raw);
        auto* v = new std::vector<int>(100);
        delete v;
        evmalloc::Memory memory{std::pmr::new_delete_resource()};
        (void)memory.expand(0, 32);  // the library's upstream path is seen too
        memory.release_storage();
        news = counter.news();
        deletes = counter.deletes();
    }
    CHECK(news == 4);
    CHECK(deletes == 4);
}

TEST_CASE("after warm-up, nested calls across every tier allocate nothing", "[zero_alloc]")
{
    // Code for every tier (sizes up to each tier's capacity), memory up to mainnet's p99.9.
    std::mt19937 rng{42};
    std::uniform_int_distribution<int> byte{0, 255};
    std::vector<Call> calls;
    const std::uint64_t memory_sizes[] = {128, 4096, 16384, 32, 1000, 0};
    std::size_t k = 0;
    for (const evmalloc::Tier t : evmalloc::all_tiers)
    {
        for (const std::size_t size :
            {evmalloc::code_capacity(t) / 2 + 1, evmalloc::code_capacity(t)})
        {
            Call c{std::vector<std::uint8_t>(size), memory_sizes[k++ % std::size(memory_sizes)]};
            for (auto& b : c.code)
                b = static_cast<std::uint8_t>(byte(rng));
            calls.push_back(std::move(c));
        }
    }
    calls.push_back({{0x60, 0x01, 0x00}, 16384});  // a tiny contract
    REQUIRE(calls.size() == 13);

    constexpr std::size_t max_depth = 40;
    // The pool trims itself after every top-level call (auto_trim): it keeps what this depth
    // needs when retain_per_tier allows it.
    Pool pool{
        std::pmr::new_delete_resource(), evmalloc::FramePoolConfig{.retain_per_tier = max_depth}};
    // Warm-up: the deepest nesting once, so every depth has a buffer of its tier and a
    // Memory grown to the largest size it will need (Memory objects move between depths,
    // so each is grown to the maximum).
    std::vector<Call> warm = calls;
    for (auto& c : warm)
        c.memory_bytes = 16384;
    Tally warm_tally;
    call(warm, 0, max_depth, pool, warm_tally);
    REQUIRE(warm_tally.failures == 0);
    const std::size_t buffers = pool.buffers_allocated();

    Tally tally;
    std::size_t news = 0, deletes = 0;
    {
        Counter counter;
        for (std::size_t round = 0; round < 400; ++round)
        {
            // Depths 1..max_depth, starting at a different depth of the code list each round.
            const std::size_t depth = 1 + round % max_depth;
            call(calls, 0, depth, pool, tally);
        }
        news = counter.news();
        deletes = counter.deletes();
    }
    CHECK(tally.failures == 0);
    CHECK(tally.calls > 4000);
    CHECK(tally.checksum != 0);
    CHECK(news == 0);
    CHECK(deletes == 0);
    CHECK(pool.buffers_allocated() == buffers);
    CHECK(pool.active() == 0);
    CHECK(pool.peak_active() == max_depth);
}

TEST_CASE("the pool's first calls do allocate, and trim() deallocates (the counter can fail)",
    "[zero_alloc]")
{
    std::vector<std::uint8_t> code(5000, 0x5B);
    Pool pool;
    std::size_t cold = 0, trimmed = 0;
    {
        Counter counter;
        {
            auto frame = Frame::init(code.size(), pool);
            REQUIRE(frame.has_value());
            REQUIRE(frame->prepare(code, op_table()).has_value());
            (void)frame->memory().expand(0, 32);
        }
        cold = counter.news();
        evmalloc::FramePool<> other{
            std::pmr::new_delete_resource(), evmalloc::FramePoolConfig{.retain_per_tier = 0}};
        {
            auto frame = Frame::init(code.size(), other);
            REQUIRE(frame.has_value());
        }
        other.trim();
        trimmed = counter.deletes();
    }
    CHECK(cold == 3);     // the buffer, the Memory slot, the Memory's storage
    CHECK(trimmed == 2);  // trim() gave the other pool's buffer and Memory slot back
}

namespace
{
using JumpdestFrame = evmalloc::StackFrame<evmalloc::JumpdestTraits>;

// Cached calls: contract `depth % codes` at each depth, under the verified key (even depths) and
// the trusted key (odd depths), each calling the next depth; a jumpdest frame beside each.
struct CachedWorld
{
    std::vector<std::vector<std::uint8_t>> codes;
    std::vector<evmalloc::CodeHash> hashes;
    Pool pool{std::pmr::new_delete_resource(), evmalloc::FramePoolConfig{.retain_per_tier = 64}};
    evmalloc::FramePool<evmalloc::JumpdestTraits> jpool{
        std::pmr::new_delete_resource(), evmalloc::FramePoolConfig{.retain_per_tier = 64}};
    evmalloc::AnalysisCache<> cache;
    evmalloc::AnalysisCache<evmalloc::JumpdestTraits> jcache;
};

void cached_call(CachedWorld& w, std::size_t depth, std::size_t max_depth, Tally& tally)
{
    const std::size_t i = depth % w.codes.size();
    const auto& code = w.codes[i];
    auto frame = depth % 2 == 0 ? Frame::init(code, op_table(), w.pool, w.cache)
                                : Frame::init(code, w.hashes[i], op_table(), w.pool, w.cache);
    auto jframe = depth % 2 == 0 ? JumpdestFrame::init(code, w.jpool, w.jcache)
                                 : JumpdestFrame::init(code, w.hashes[i], w.jpool, w.jcache);
    if (!frame || !jframe)
    {
        ++tally.failures;
        return;
    }
    ++tally.calls;
    frame->stack().push_unchecked(evmalloc::Word::from(depth));
    const auto gas = frame->memory().expand(0, 4096);
    if (!gas)
        ++tally.failures;
    tally.checksum += frame->analysis().instruction_count() + frame->metadata()[0] +
                      (jframe->analysis().is_jumpdest(0) ? 1 : 0) + frame->stack().top().limbs[0];
    if (depth + 1 < max_depth)
        cached_call(w, depth + 1, max_depth, tally);
}

void fill_world(CachedWorld& w)
{
    std::mt19937 rng{7};
    std::uniform_int_distribution<int> byte{0, 255};
    for (const std::size_t size : {45UL, 3000UL, 4097UL, 24576UL, 70000UL})
    {
        std::vector<std::uint8_t> code(size);
        for (auto& b : code)
            b = static_cast<std::uint8_t>(byte(rng));
        w.codes.push_back(std::move(code));
        evmalloc::CodeHash h{};
        h.bytes[0] = static_cast<std::uint8_t>(w.hashes.size() + 1);
        w.hashes.push_back(h);
    }
}
}  // namespace

TEST_CASE("after warm-up, cached calls (both keys, nested, both frame shapes) allocate nothing",
    "[zero_alloc]")
{
    CachedWorld w;
    fill_world(w);
    constexpr std::size_t max_depth = 30;
    Tally warm;
    cached_call(w, 0, max_depth, warm);
    REQUIRE(warm.failures == 0);
    const std::size_t misses = w.cache.misses() + w.jcache.misses();
    REQUIRE(misses == 2 * 2 * w.codes.size());  // each code under each key, in each cache
    const std::size_t buffers = w.pool.buffers_allocated() + w.jpool.buffers_allocated();

    Tally tally;
    std::size_t news = 0, deletes = 0;
    {
        Counter counter;
        for (std::size_t round = 0; round < 200; ++round)
            cached_call(w, 0, 1 + round % max_depth, tally);
        news = counter.news();
        deletes = counter.deletes();
    }
    CHECK(tally.failures == 0);
    CHECK(tally.calls > 2000);
    CHECK(tally.checksum != 0);
    CHECK(news == 0);
    CHECK(deletes == 0);
    CHECK(w.cache.misses() + w.jcache.misses() == misses);
    CHECK(w.cache.hits() + w.jcache.hits() >= 2 * tally.calls);
    CHECK(w.pool.buffers_allocated() + w.jpool.buffers_allocated() == buffers);
    CHECK(w.cache.pinned() == 0);
    CHECK(w.jcache.pinned() == 0);
}

TEST_CASE("a cache miss does allocate (the counter sees the entry)", "[zero_alloc]")
{
    CachedWorld w;
    fill_world(w);
    {
        Tally warm;
        cached_call(w, 0, 1, warm);  // the pool's stack buffer and Memory, code 0's entries
        REQUIRE(warm.failures == 0);
    }
    std::size_t hit_news = 0, miss_news = 0;
    {
        Counter counter;
        auto hit = Frame::init(w.codes[0], op_table(), w.pool, w.cache);
        REQUIRE(hit.has_value());
        hit_news = counter.news();
    }
    {
        Counter counter;
        auto miss = Frame::init(w.codes[1], op_table(), w.pool, w.cache);  // a code not seen yet
        REQUIRE(miss.has_value());
        miss_news = counter.news();
    }
    CHECK(hit_news == 0);
    CHECK(miss_news == 1);  // the entry's block (the bucket array exists already)
}
