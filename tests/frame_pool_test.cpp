#include "catch.hpp"
#include "support/assert_capture.hpp"
#include "support/pool_state.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/analysis.hpp>
#include <evmalloc/frame_pool.hpp>
#include <evmalloc/sanitizer.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#if EVMALLOC_HAS_ASAN
#include <sanitizer/asan_interface.h>
#endif

using evmalloc::all_tiers;
using evmalloc::Errc;
using evmalloc::frame_buffer_size;
using evmalloc::FramePool;
using evmalloc::FramePoolConfig;
using evmalloc::Memory;
using evmalloc::Tier;
using evmalloc::test::FailureStyle;
using evmalloc::test::RecordingResource;

namespace
{
using Pool = FramePool<>;
using Lease = Pool::Lease;

using evmalloc::test::PoolState;
using evmalloc::test::state_of;

Lease take(Pool& pool, Tier t)
{
    auto lease = pool.acquire(t);
    REQUIRE(lease.has_value());
    return *lease;
}

constexpr std::size_t slot_bytes = sizeof(Pool::MemorySlot);
}  // namespace

TEST_CASE("FramePool allocates nothing until asked, then one buffer and one Memory", "[frame_pool]")
{
    RecordingResource upstream;
    {
        Pool pool{&upstream};
        CHECK(upstream.allocations() == 0);
        CHECK(pool.buffers_allocated() == 0);
        CHECK(pool.bytes_retained() == 0);
        CHECK(pool.utilization() == 0.0);

        const Lease a = take(pool, Tier::kb8);
        CHECK(upstream.allocations() == 2);  // the buffer and the Memory slot
        CHECK(upstream.is_live(a.buffer));
        CHECK(reinterpret_cast<std::uintptr_t>(a.buffer) % 64 == 0);
        CHECK(a.memory->memory.size() == 0);
        CHECK(a.memory->memory.capacity() == 0);  // Memory allocates on its first growth
        CHECK(pool.active() == 1);
        CHECK(pool.buffers_allocated() == 1);
        CHECK(pool.utilization() == 1.0);
        // The buffer is the size the layout computed, and all of it is usable.
        const auto log = upstream.log();
        REQUIRE(!log.empty());
        CHECK(log.front().bytes == frame_buffer_size(Tier::kb8));
        CHECK(log.front().alignment == 64);
        a.buffer[frame_buffer_size(Tier::kb8) - 1] = std::byte{1};
        pool.release(Tier::kb8, a);
        CHECK(pool.active() == 0);
        CHECK(pool.retained(Tier::kb8) == 1);
        CHECK(pool.retained_memories() == 1);
        CHECK(pool.bytes_retained() == frame_buffer_size(Tier::kb8) + slot_bytes);
        CHECK(upstream.live_count() == 2);  // kept for reuse
    }
    CHECK(upstream.check());  // the pool gave everything back, with matching sizes
    CHECK(upstream.live_count() == 0);
}

TEST_CASE("FramePool reuses buffers LIFO per tier", "[frame_pool]")
{
    RecordingResource upstream;
    Pool pool{&upstream};
    const Lease a = take(pool, Tier::kb4);
    const Lease b = take(pool, Tier::kb4);
    const Lease c = take(pool, Tier::kb4);
    CHECK(pool.buffers_allocated() == 3);
    CHECK(pool.peak_active() == 3);
    pool.release(Tier::kb4, c);
    pool.release(Tier::kb4, b);
    pool.release(Tier::kb4, a);
    // Last released, first handed out; the same Memory objects too.
    const Lease a2 = take(pool, Tier::kb4);
    CHECK(a2.buffer == a.buffer);
    CHECK(a2.memory == a.memory);
    const Lease b2 = take(pool, Tier::kb4);
    CHECK(b2.buffer == b.buffer);
    pool.release(Tier::kb4, b2);
    const Lease b3 = take(pool, Tier::kb4);
    CHECK(b3.buffer == b.buffer);
    CHECK(pool.buffers_allocated() == 3);
    CHECK(upstream.allocations() == 6);  // nothing new since the first three frames

    // Tiers do not mix: a kb8 request does not take a free kb4 buffer.
    CHECK(pool.retained(Tier::kb4) == 1);
    const Lease d = take(pool, Tier::kb8);
    CHECK(d.buffer != c.buffer);
    CHECK(pool.retained(Tier::kb4) == 1);
    CHECK(pool.buffers_allocated() == 4);
    pool.release(Tier::kb8, d);
    pool.release(Tier::kb4, b3);
    pool.release(Tier::kb4, a2);
    CHECK(pool.retained(Tier::kb4) == 3);
    CHECK(pool.retained(Tier::kb8) == 1);
    CHECK(pool.peak_active() == 3);
}

TEST_CASE("FramePool refuses the frame beyond max_frames, losing nothing", "[frame_pool]")
{
    RecordingResource upstream;
    Pool pool{&upstream, FramePoolConfig{.max_frames = 3}};
    std::vector<Lease> leases;
    for (int i = 0; i < 3; ++i)
        leases.push_back(take(pool, Tier::kb4));
    const PoolState before = state_of(pool);
    const auto allocations = upstream.allocations();
    const auto refused = pool.acquire(Tier::kb4);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == Errc::call_depth_exceeded);
    CHECK(pool.acquire(Tier::kb128).error() == Errc::call_depth_exceeded);
    CHECK(state_of(pool) == before);
    CHECK(upstream.allocations() == allocations);
    // Still usable: one frame ends, another starts on its buffer.
    pool.release(Tier::kb4, leases.back());
    const Lease again = take(pool, Tier::kb4);
    CHECK(again.buffer == leases.back().buffer);
    leases.back() = again;
    for (const Lease& l : leases)
        pool.release(Tier::kb4, l);
    CHECK(pool.active() == 0);
}

TEST_CASE("FramePool reports out_of_memory when upstream throws or returns nullptr, losing nothing",
    "[frame_pool]")
{
    RecordingResource upstream;
#if defined(__cpp_exceptions)
    const FailureStyle style = GENERATE(FailureStyle::returns_nullptr, FailureStyle::throws);
#else
    const FailureStyle style = FailureStyle::returns_nullptr;
#endif
    CAPTURE(evmalloc::test::name_of(style));
    Pool pool{upstream.upstream(style)};

    SECTION("the buffer allocation fails")
    {
        upstream.set_failing(true);
        const PoolState before = state_of(pool);
        CHECK(pool.acquire(Tier::kb16).error() == Errc::out_of_memory);
        CHECK(state_of(pool) == before);
        CHECK(upstream.live_count() == 0);
    }
    SECTION("the buffer succeeds, the Memory slot fails: the buffer goes back upstream")
    {
        upstream.fail_after(1);
        const PoolState before = state_of(pool);
        CHECK(pool.acquire(Tier::kb16).error() == Errc::out_of_memory);
        CHECK(state_of(pool) == before);
        CHECK(upstream.live_count() == 0);
        CHECK(upstream.check());
    }
    SECTION("a retained buffer, a Memory slot fails: the buffer goes back on its list")
    {
        const Lease first = take(pool, Tier::kb4);
        pool.release(Tier::kb4, first);             // kb4: one buffer retained, one Memory retained
        const Lease other = take(pool, Tier::kb8);  // takes the retained Memory
        upstream.set_failing(true);
        const PoolState before = state_of(pool);
        CHECK(pool.acquire(Tier::kb4).error() == Errc::out_of_memory);
        CHECK(state_of(pool) == before);
        upstream.stop_failing();
        const Lease again = take(pool, Tier::kb4);
        CHECK(again.buffer == first.buffer);
        pool.release(Tier::kb4, again);
        pool.release(Tier::kb8, other);
    }
    // Usable afterwards.
    upstream.stop_failing();
    const Lease ok = take(pool, Tier::kb16);
    CHECK(pool.active() == 1);
    pool.release(Tier::kb16, ok);
    CHECK(upstream.errors().empty());
}

TEST_CASE("FramePool: after a 1025-deep burst, trim() bounds retention by retain_per_tier",
    "[frame_pool]")
{
    RecordingResource upstream;
    Pool pool{&upstream, FramePoolConfig{.auto_trim = false}};
    REQUIRE(pool.config().max_frames == 1025);
    REQUIRE(pool.config().retain_per_tier == 16);
    std::vector<Lease> burst;
    for (std::size_t depth = 0; depth < 1025; ++depth)
    {
        burst.push_back(take(pool, Tier::kb4));
        REQUIRE(burst.back().memory->memory.expand(0, 32).has_value());  // 4 KiB of storage
    }
    CHECK(pool.acquire(Tier::kb4).error() == Errc::call_depth_exceeded);
    CHECK(pool.peak_active() == 1025);
    // Unwind: the deepest frame ends first, depth 0 last.
    for (auto it = burst.rbegin(); it != burst.rend(); ++it)
        pool.release(Tier::kb4, *it);
    CHECK(pool.retained(Tier::kb4) == 1025);  // kept until trim(): the next burst allocates nothing
    CHECK(pool.retained_memories() == 1025);
    CHECK(upstream.live_bytes() == pool.bytes_retained());

    pool.trim();
    CHECK(pool.retained(Tier::kb4) == 16);
    CHECK(pool.retained_memories() == 16);
    const std::size_t expected = 16 * frame_buffer_size(Tier::kb4) + 16 * (slot_bytes + 4096);
    CHECK(pool.bytes_retained() == expected);
    CHECK(upstream.live_bytes() == expected);  // what the pool says it holds is what it holds
    CHECK(upstream.live_count() == 48);        // 16 buffers, 16 Memory slots and their storage
    CHECK(upstream.errors().empty());  // every buffer given back with its size and alignment
    // The warm ones stay: depth 0's buffer was released last and comes out first.
    const Lease next = take(pool, Tier::kb4);
    CHECK(next.buffer == burst.front().buffer);
    CHECK(next.memory->memory.capacity() == 4096);
    pool.release(Tier::kb4, next);
    // trim() again changes nothing; other tiers have nothing to give.
    pool.trim();
    CHECK(pool.retained(Tier::kb4) == 16);
    CHECK(upstream.live_bytes() == expected);
}

TEST_CASE("FramePoolConfig: max_code_size above 2^32 - 2 is clamped when the pool is built",
    "[frame_pool]")
{
    constexpr std::size_t top = evmalloc::Analysis::max_analysable_size;
    STATIC_REQUIRE(top == 0xFFFFFFFE);
    STATIC_REQUIRE(Pool::clamped(FramePoolConfig{.max_code_size = SIZE_MAX}).max_code_size == top);
    const std::size_t max_code_size = GENERATE(top + 1, top + 2, SIZE_MAX);  // 2^32 - 1, 2^32
    CAPTURE(max_code_size);
    RecordingResource upstream;
    Pool pool{&upstream, FramePoolConfig{.max_code_size = max_code_size}};
    CHECK(pool.config().max_code_size == top);
    // Above the clamp: code_too_large, nothing asked of upstream.
    for (const std::size_t size : {top + 1, top + 2, SIZE_MAX})
        CHECK(pool.acquire_oversize(size).error() == Errc::code_too_large);
    CHECK(upstream.allocations() == 0);
    // At it: allowed, and an upstream that cannot give ~100 GiB says so; nothing lost.
    upstream.fail_above(std::size_t{1} << 30);
    const PoolState before = state_of(pool);
    CHECK(pool.acquire_oversize(top).error() == Errc::out_of_memory);
    CHECK(state_of(pool) == before);
    CHECK(upstream.live_count() == 0);
    // The other fields take any value as given.
    const Pool edges{&upstream, FramePoolConfig{.max_frames = 0,
                                    .retain_per_tier = SIZE_MAX,
                                    .max_code_size = top,
                                    .memory_retain_bytes = SIZE_MAX,
                                    .memory_limit = SIZE_MAX}};
    CHECK(edges.config().max_frames == 0);
    CHECK(edges.config().max_code_size == top);
    CHECK(edges.config().memory_limit == SIZE_MAX);
}

TEST_CASE("FramePoolConfig edges: max_frames 0 refuses every frame, memory_limit 0 lets nothing "
          "grow",
    "[frame_pool]")
{
    RecordingResource upstream;
    Pool none{&upstream, FramePoolConfig{.max_frames = 0}};
    CHECK(none.acquire(Tier::kb4).error() == Errc::call_depth_exceeded);
    CHECK(none.acquire_stack().error() == Errc::call_depth_exceeded);
    CHECK(upstream.allocations() == 0);
    Pool fixed{&upstream, FramePoolConfig{.memory_limit = 0}};
    const Lease a = take(fixed, Tier::kb4);
    CHECK(a.memory->memory.expand(0, 1).error() == Errc::memory_limit_exceeded);
    CHECK(a.memory->memory.expand(0, 0).has_value());
    fixed.release(a);
}

TEST_CASE("FramePool trim() with retain_per_tier 0 gives everything free back", "[frame_pool]")
{
    RecordingResource upstream;
    Pool pool{&upstream, FramePoolConfig{.retain_per_tier = 0}};
    const Lease a = take(pool, Tier::kb4);
    const Lease b = take(pool, Tier::kb32);
    pool.release(Tier::kb32, b);
    pool.trim();
    CHECK(pool.retained(Tier::kb32) == 0);
    CHECK(pool.retained_memories() == 0);
    CHECK(pool.bytes_retained() == 0);
    CHECK(upstream.live_count() == 2);  // only the live frame's buffer and Memory
    CHECK(pool.active() == 1);
    pool.release(Tier::kb4, a);
}

TEST_CASE("FramePool keeps Memory capacity within memory_retain_bytes, a budget over all free ones",
    "[frame_pool]")
{
    RecordingResource upstream;
    Pool pool{&upstream, FramePoolConfig{.memory_retain_bytes = 3u << 20, .auto_trim = false}};
    REQUIRE(Pool{}.config().memory_retain_bytes == 32u << 20);

    // One call of 1 MiB of memory, again and again: its pages are kept, never allocated again.
    Lease a = take(pool, Tier::kb4);
    REQUIRE(a.memory->memory.expand(0, 1u << 20).has_value());
    const std::size_t kept = a.memory->memory.capacity();
    pool.release(Tier::kb4, a);
    CHECK(pool.memory_bytes_retained() == kept);
    CHECK(pool.bytes_retained() == frame_buffer_size(Tier::kb4) + slot_bytes + kept);
    const auto allocations = upstream.allocations();
    for (int call = 0; call < 5; ++call)
    {
        a = take(pool, Tier::kb4);
        CHECK(a.memory->memory.size() == 0);  // cleared
        CHECK(a.memory->memory.capacity() == kept);
        REQUIRE(a.memory->memory.expand(0, 1u << 20).has_value());
        pool.release(Tier::kb4, a);
    }
    CHECK(upstream.allocations() == allocations);

    // A burst of such calls: the free ones keep at most the budget, the rest give storage back.
    std::vector<Lease> burst;
    for (int depth = 0; depth < 6; ++depth)
    {
        burst.push_back(take(pool, Tier::kb4));
        REQUIRE(burst.back().memory->memory.expand(0, 1u << 20).has_value());
    }
    for (auto it = burst.rbegin(); it != burst.rend(); ++it)
    {
        pool.release(Tier::kb4, *it);
        CHECK(pool.memory_bytes_retained() <= pool.config().memory_retain_bytes);
    }
    CHECK(pool.memory_bytes_retained() == 3 * kept);  // 3 MiB of budget, 1 MiB each
    CHECK(pool.retained_memories() == 6);             // the objects stay, some without storage
    CHECK(upstream.live_bytes() == pool.bytes_retained());
}

TEST_CASE("FramePool: after a 1024-deep burst, the next top-level call's 1 MiB costs no "
          "allocation, and the memory budget holds",
    "[frame_pool]")
{
    // The burst's inner frames use 64 KiB each: 1023 of them would keep twice the 32 MiB budget,
    // so on the way out they fill it before depth 0 is released.
    const bool depth0_uses_memory = GENERATE(true, false);
    CAPTURE(depth0_uses_memory);
    RecordingResource upstream;
    Pool pool{&upstream};
    REQUIRE(pool.config().auto_trim);
    const std::size_t budget = pool.config().memory_retain_bytes;
    constexpr std::uint64_t mib = 1u << 20;

    // A top-level call that uses 1 MiB of memory.
    Lease call = take(pool, Tier::kb4);
    REQUIRE(call.memory->memory.expand(0, mib).has_value());
    pool.release(call);

    // The burst: depth 0 (1 MiB, or nothing more), then 1023 frames of 64 KiB each.
    std::vector<Lease> burst;
    for (std::size_t depth = 0; depth < 1024; ++depth)
    {
        burst.push_back(take(pool, Tier::kb4));
        const std::uint64_t use = depth == 0 ? (depth0_uses_memory ? mib : 0) : 64u << 10;
        REQUIRE(burst.back().memory->memory.expand(0, use).has_value());
    }
    for (auto it = burst.rbegin(); it != burst.rend(); ++it)
    {
        pool.release(*it);
        REQUIRE(pool.memory_bytes_retained() <= budget);  // the budget holds at every step
    }
    CHECK(pool.active() == 0);
    CHECK(pool.retained_memories() <= pool.config().retain_per_tier);
    CHECK(upstream.live_bytes() == pool.bytes_retained());  // and nothing is held beyond it

    // The next top-level call with 1 MiB of memory: no upstream allocation at all.
    const std::size_t allocations = upstream.allocations();
    call = take(pool, Tier::kb4);
    CHECK(call.memory->memory.capacity() >= mib);
    REQUIRE(call.memory->memory.expand(0, mib).has_value());
    CHECK(upstream.allocations() == allocations);
    pool.release(call);
    CHECK(upstream.errors().empty());
}

TEST_CASE("FramePool: a released Memory over the budget takes the storage of smaller free ones, "
          "else gives back its own",
    "[frame_pool]")
{
    constexpr std::size_t kib = 1024;
    RecordingResource upstream;
    // A fresh pool with a 4 MiB budget; frames whose new Memory grows to each of `sizes` (KiB:
    // the first growth takes exactly that), all alive at once, then released in order.
    const auto released = [&](std::initializer_list<std::size_t> sizes) {
        auto pool = std::make_unique<Pool>(
            &upstream, FramePoolConfig{.memory_retain_bytes = 4096 * kib, .auto_trim = false});
        std::vector<Lease> frames;
        for (const std::size_t size : sizes)
        {
            frames.push_back(take(*pool, Tier::kb4));
            REQUIRE(frames.back().memory->memory.expand(0, size * kib).has_value());
            REQUIRE(frames.back().memory->memory.capacity() == size * kib);
        }
        for (const Lease& l : frames)
            pool->release(l);
        CHECK(pool->memory_bytes_retained() <= 4096 * kib);
        CHECK(pool->retained_memories() == sizes.size());
        return pool;
    };
    const auto next_capacity = [](Pool& pool) {
        const Lease l = take(pool, Tier::kb4);
        const std::size_t capacity = l.memory->memory.capacity();
        pool.release(l);
        return capacity;
    };
    SECTION("smaller free ones on top make room: they give their storage, the larger stays")
    {
        auto pool = released({1024, 1024, 1024, 2048});
        CHECK(pool->memory_bytes_retained() == 4096 * kib);  // 1 + 1 + 2: the top 1 MiB went
        CHECK(next_capacity(*pool) == 2048 * kib);           // the larger one comes out first
    }
    SECTION("only as many as it takes, and only when they suffice")
    {
        auto pool = released({2560, 512, 512, 1536});  // 1.5 MiB: both 512 KiB ones go
        CHECK(pool->memory_bytes_retained() == 4096 * kib);
        CHECK(next_capacity(*pool) == 1536 * kib);
        auto blocked = released({2560, 512, 512, 2048});        // 2 MiB: they do not suffice
        CHECK(blocked->memory_bytes_retained() == 3584 * kib);  // 2.5 + 0.5 + 0.5, untouched
        CHECK(next_capacity(*blocked) == 512 * kib);
    }
    SECTION("a larger free one on top: the smaller released one gives back its own")
    {
        auto pool = released({1024, 2048, 1536});
        CHECK(pool->memory_bytes_retained() == 3072 * kib);
        CHECK(next_capacity(*pool) == 2048 * kib);  // at least what was released last
    }
    SECTION("larger than the whole budget: never kept, the free ones stay")
    {
        auto pool = released({1024, 5120});
        CHECK(pool->memory_bytes_retained() == 1024 * kib);
        CHECK(next_capacity(*pool) == 1024 * kib);
    }
    CHECK(upstream.errors().empty());
}

TEST_CASE("FramePool trim() keeps the free Memory objects that hold storage, most recent first",
    "[frame_pool]")
{
    RecordingResource upstream;
    Pool pool{&upstream, FramePoolConfig{.retain_per_tier = 2, .auto_trim = false}};
    // Four frames, released with and without memory in turn: two keep storage, two have none.
    std::vector<Lease> frames;
    for (int i = 0; i < 4; ++i)
    {
        frames.push_back(take(pool, Tier::kb4));
        if (i % 2 == 0)
            REQUIRE(frames.back().memory->memory.expand(0, 4096u << i).has_value());
    }
    for (const Lease& l : frames)
        pool.release(l);
    CHECK(pool.retained_memories() == 4);
    const std::size_t retained = pool.memory_bytes_retained();
    CHECK(retained == 4096 + (4096u << 2));
    pool.trim();
    CHECK(pool.retained_memories() == 2);
    CHECK(pool.memory_bytes_retained() == retained);  // the two without storage went
    const Lease a = take(pool, Tier::kb4);
    const Lease b = take(pool, Tier::kb4);
    CHECK(a.memory->memory.capacity() == 4096u << 2);  // released last
    CHECK(b.memory->memory.capacity() == 4096);
    pool.release(b);
    pool.release(a);
    CHECK(upstream.live_bytes() == pool.bytes_retained());
}

TEST_CASE("FramePool trims itself when the last frame is released (auto_trim)", "[frame_pool]")
{
    RecordingResource upstream;
    Pool pool{&upstream, FramePoolConfig{.retain_per_tier = 4}};
    REQUIRE(pool.config().auto_trim);
    std::vector<Lease> burst;
    for (int depth = 0; depth < 40; ++depth)
        burst.push_back(take(pool, depth % 2 == 0 ? Tier::kb4 : Tier::kb8));
    for (std::size_t i = burst.size() - 1; i > 0; --i)
    {
        pool.release(burst[i]);
        CHECK(pool.active() == i);  // frames still alive: nothing is trimmed yet
    }
    CHECK(pool.retained(Tier::kb4) + pool.retained(Tier::kb8) == 39);
    pool.release(burst[0]);  // the top-level call ended
    CHECK(pool.retained(Tier::kb4) == 4);
    CHECK(pool.retained(Tier::kb8) == 4);
    CHECK(pool.retained_memories() == 4);
    CHECK(upstream.live_bytes() == pool.bytes_retained());
    CHECK(upstream.errors().empty());
}

TEST_CASE("FramePool hands out stack-only buffers, LIFO, bounded by trim()", "[frame_pool]")
{
    RecordingResource upstream;
    Pool pool{&upstream, FramePoolConfig{.retain_per_tier = 1, .auto_trim = false}};
    const Lease a = *pool.acquire_stack();
    const Lease b = *pool.acquire_stack();
    CHECK(a.bytes == evmalloc::stack_buffer_size());
    CHECK(reinterpret_cast<std::uintptr_t>(a.buffer) % 64 == 0);
    CHECK(pool.active() == 2);
    pool.release(b);
    pool.release(a);
    CHECK(pool.retained_stacks() == 2);
    const Lease c = *pool.acquire_stack();
    CHECK(c.buffer == a.buffer);  // the last released comes out first
    pool.release(c);
    pool.trim();
    CHECK(pool.retained_stacks() == 1);
    CHECK(pool.bytes_retained() ==
          evmalloc::stack_buffer_size() + pool.retained_memories() * slot_bytes);
    CHECK(upstream.live_bytes() == pool.bytes_retained());
}

TEST_CASE(
    "FramePool: code above the largest tier gets an exact buffer, never retained", "[frame_pool]")
{
    RecordingResource upstream;
    Pool pool{&upstream, FramePoolConfig{.max_code_size = 1u << 20}};
    const std::size_t n = evmalloc::max_code_size + 1;
    const Lease a = *pool.acquire_oversize(n);
    CHECK(a.bytes == evmalloc::frame_buffer_bytes(n));
    CHECK(a.kind == Pool::oversize_kind);
    CHECK(upstream.is_live(a.buffer));
    pool.release(a);
    CHECK(!upstream.is_live(a.buffer));  // given back at once
    for (const Tier t : all_tiers)
        CHECK(pool.retained(t) == 0);

    const auto before = state_of(pool);
    const auto allocations = upstream.allocations();
    CHECK(pool.acquire_oversize((1u << 20) + 1).error() == Errc::code_too_large);
    CHECK(state_of(pool) == before);
    CHECK(upstream.allocations() == allocations);
    CHECK(upstream.errors().empty());
}

TEST_CASE("FramePool utilization is active / (active + retained buffers)", "[frame_pool]")
{
    Pool pool;
    const Lease a = take(pool, Tier::kb4);
    const Lease b = take(pool, Tier::kb8);
    const Lease c = take(pool, Tier::kb4);
    CHECK(pool.utilization() == 1.0);
    pool.release(Tier::kb4, c);
    CHECK(pool.utilization() == Approx(2.0 / 3.0));
    pool.release(Tier::kb8, b);
    CHECK(pool.utilization() == Approx(1.0 / 3.0));
    pool.release(Tier::kb4, a);
    CHECK(pool.utilization() == 0.0);
    pool.trim();  // 3 buffers retained, within the bound
    CHECK(pool.retained(Tier::kb4) + pool.retained(Tier::kb8) == 3);
}

TEST_CASE("FramePool poisons retained buffers under AddressSanitizer", "[frame_pool]")
{
#if EVMALLOC_HAS_ASAN
    Pool pool;
    const Lease a = take(pool, Tier::kb4);
    CHECK(__asan_address_is_poisoned(a.buffer + 100) == 0);
    pool.release(Tier::kb4, a);
    CHECK(__asan_address_is_poisoned(a.buffer) != 0);
    CHECK(__asan_address_is_poisoned(a.buffer + 100) != 0);
    CHECK(__asan_address_is_poisoned(a.buffer + frame_buffer_size(Tier::kb4) - 1) != 0);
    const Lease b = take(pool, Tier::kb4);
    REQUIRE(b.buffer == a.buffer);
    CHECK(__asan_region_is_poisoned(b.buffer, frame_buffer_size(Tier::kb4)) == nullptr);
    pool.release(Tier::kb4, b);
    pool.trim();
#else
    EVMALLOC_SKIP("not built with AddressSanitizer");
#endif
}

TEST_CASE("FramePool reports misuse in debug builds", "[frame_pool]")
{
    if constexpr (!evmalloc::enable_asserts)
    {
        EVMALLOC_SKIP("assertions are compiled out in this build");
    }
    else
    {
        RecordingResource upstream;
        SECTION("a pool destroyed while a frame is alive")
        {
            auto pool = std::make_unique<Pool>(&upstream);
            (void)take(*pool, Tier::kb4);
            evmalloc::test::AssertCapture capture;
            pool.reset();
            CHECK(capture.count() == 1);
            // The live frame's buffer is all that is left upstream (freed by the recorder).
            CHECK(upstream.live_count() == 2);
        }
    }
}
