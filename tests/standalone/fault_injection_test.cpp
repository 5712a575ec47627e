// Fault injection: one scenario (an EvmAllocator built over a recording upstream, then a
// transaction of nested calls through StackFrame and a FramePool with memory growth, calls on
// shared analyses (AnalysisCache) and jumpdest frames beside them, arena
// data, the typed pools, requests through the allocator's std::pmr face and a pmr container,
// a standalone ObjectPool and BufferPool, then everything unwound), run again and again with
// the upstream failing at its Nth allocation, for N = 0, 1, 2, ... until a run completes
// without reaching N. At each fault point: the failure is Errc::out_of_memory (or
// std::bad_alloc through a constructor or a pmr face), everything a caller can see is as it
// was before the failing step, the same objects work once the upstream heals (the step is
// retried and succeeds), and when the scenario ends nothing is left live upstream. Under the
// asan preset the same run also proves nothing leaked or was touched after release.
//
// The upstream fails in both ways a resource can (evmalloc/upstream.hpp): as a plain
// std::pmr::memory_resource that throws std::bad_alloc, and as a FallibleResource whose
// try_allocate() returns nullptr. Both run under the sanitizers too (the asan preset: neither
// is undefined behaviour). Without exceptions (the noexcept preset) only the parts that report
// an Errc run (frames and Memory, with the upstream returning nullptr): there an upstream
// failure behind a std::pmr face aborts by design.
//
// Its own executable (tests/standalone) so that `ctest -R fault_injection` and the asan
// build can run it alone.
#include "catch.hpp"
#include "support/op_table.hpp"
#include "support/pool_state.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/stack_frame.hpp>
#include <evmalloc/upstream.hpp>
#if defined(__cpp_exceptions)
#include <evmalloc/buffer_pool.hpp>
#include <evmalloc/evm_allocator.hpp>
#include <evmalloc/object_pool.hpp>
#endif

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <new>
#include <optional>
#include <vector>

namespace
{
using evmalloc::Errc;
using evmalloc::test::FailureStyle;
using evmalloc::test::RecordingResource;

using State = std::vector<std::uint64_t>;

// FNV-1a of some bytes: a cheap fingerprint of contents that must not change.
std::uint64_t fingerprint(const void* p, std::size_t n)
{
    std::uint64_t h = 0xcbf29ce484222325;
    const auto* b = static_cast<const std::uint8_t*>(p);
    for (std::size_t i = 0; i < n; ++i)
        h = (h ^ b[i]) * 0x100000001b3;
    return h;
}

struct Walk
{
    RecordingResource& rec;
    evmalloc::Upstream upstream;  // rec, as the library's objects are handed it
    std::size_t faults = 0;       // steps that failed and reported it (at most one per run)
    std::size_t absorbed = 0;     // steps that met a failure and succeeded all the same (a
                                  // best-effort growth, such as the cache's bucket array)

    // Runs `attempt` (true: it succeeded; false: it failed as the library promises, which
    // `attempt` itself checks). On failure: `state()` is as before, the upstream heals, and
    // the same attempt on the same objects succeeds. The upstream keeps failing until it heals,
    // so a step may meet more than one failure. `kept_blocks`: blocks a failed step may leave
    // held upstream as internal capacity (the cache's bucket array), not as visible state.
    template <class Attempt, class StateOf>
    void step(Attempt&& attempt, StateOf&& state, std::size_t kept_blocks = 0)
    {
        const State before = state();
        const std::size_t live = rec.live_count();
        const std::size_t failures = rec.failures();
        if (attempt())
        {
            if (rec.failures() != failures)
            {
                ++absorbed;
                rec.stop_failing();
            }
            return;
        }
        ++faults;
        REQUIRE(rec.failures() > failures);
        REQUIRE(state() == before);
        REQUIRE(rec.live_count() >= live);
        REQUIRE(rec.live_count() <= live + kept_blocks);
        rec.stop_failing();
        REQUIRE(attempt());
    }

#if defined(__cpp_exceptions)
    // A step that throws std::bad_alloc when the upstream fails.
    template <class F, class StateOf>
    void throwing_step(F&& f, StateOf&& state)
    {
        step(
            [&] {
                try
                {
                    f();
                    return true;
                }
                catch (const std::bad_alloc&)
                {
                    return false;
                }
            },
            state);
    }
#endif
};

struct Call
{
    evmalloc::StackFrame<> frame;
    std::uint8_t tag;
};

/// A jumpdest frame: stack, padded code and jumpdest bits only.
struct JumpdestTraits
{
    using Word = evmalloc::Word;
    using Op = void;
    using Metadata = void;
};

/// What the calls of one transaction run on: the frame pools and the shared analyses.
struct CallSite
{
    evmalloc::FramePool<>& frames;
    evmalloc::FramePool<JumpdestTraits> jumpdest_frames;
    evmalloc::AnalysisCache<> cache;
    std::vector<Call> calls;
    std::vector<evmalloc::StackFrame<>> shared;
    std::vector<evmalloc::StackFrame<JumpdestTraits>> jumpdest;

    CallSite(evmalloc::FramePool<>& pool, evmalloc::Upstream upstream)
      : frames{pool}, jumpdest_frames{upstream}, cache{upstream}
    {}
};

#if defined(__cpp_exceptions)
State allocator_state(const evmalloc::EvmAllocator& a, const RecordingResource& rec)
{
    const auto s = a.statistics();
    State out{s.total_allocations, s.total_deallocations, s.current_bytes, s.reserved_bytes,
        s.peak_bytes, s.arena_bytes_used, s.arena_bytes_reserved, rec.live_bytes()};
    for (std::size_t i = 0; i < s.pool_count; ++i)
    {
        out.push_back(s.pools[i].capacity);
        out.push_back(s.pools[i].in_use);
    }
    return out;
}
#endif

State pool_state(const evmalloc::FramePool<>& pool)
{
    const auto s = evmalloc::test::state_of(pool);
    State out{s.active, s.peak, s.allocated, s.retained_memories, s.bytes};
    out.insert(out.end(), s.retained.begin(), s.retained.end());
    return out;
}

State memory_state(const evmalloc::Memory& m)
{
    return {m.size(), m.capacity(), reinterpret_cast<std::uintptr_t>(m.data()),
        fingerprint(m.data(), m.size())};
}

#if defined(__cpp_exceptions)
struct Block
{
    void* p;
    std::size_t bytes;
    std::size_t alignment;
    std::uint8_t tag;
};

bool holds(const Block& b)
{
    const auto* p = static_cast<const std::uint8_t*>(b.p);
    return std::all_of(p, p + b.bytes, [&](std::uint8_t x) { return x == b.tag; });
}

struct Tiny
{
    std::uint64_t a, b;
};
#endif

struct Run
{
    std::size_t faults;       ///< steps that reported the failure
    std::size_t absorbed;     ///< steps that met it and succeeded all the same
    std::size_t failures;     ///< upstream failures (0: the scenario never reached the fault)
    std::size_t allocations;  ///< upstream allocations that succeeded
};

// Nested calls: each a frame of its own tier, prepared, its memory grown in steps and filled
// with its depth's tag; beside it a frame on the shared analysis of the same code and a
// jumpdest frame. Then the calls unwind, a middle one first.
void calls_part(Walk& walk, CallSite& site, std::size_t depth)
{
    evmalloc::FramePool<>& frames = site.frames;
    std::vector<Call>& calls = site.calls;
    static const std::vector<std::uint8_t> code = [] {
        std::vector<std::uint8_t> c(9000);
        for (std::size_t i = 0; i < c.size(); ++i)
            c[i] = static_cast<std::uint8_t>(i * 7 % 251);
        return c;
    }();
    constexpr std::array<std::size_t, 4> code_sizes{200, 5000, 40, 9000};
    constexpr std::array<std::uint64_t, 4> memory_ends{64, 4000, 9000, 70000};

    const std::span<const std::uint8_t> call_code{
        code.data(), code_sizes[depth % code_sizes.size()]};
    walk.step(
        [&] {
            auto f = evmalloc::StackFrame<>::init(call_code.size(), frames);
            if (!f)
            {
                REQUIRE(f.error() == Errc::out_of_memory);
                return false;
            }
            calls.push_back({std::move(*f), static_cast<std::uint8_t>(depth + 1)});
            return true;
        },
        [&] { return pool_state(frames); });
    Call& call = calls.back();
    REQUIRE(call.frame.prepare(call_code, evmalloc::test::distinct_op_table()).has_value());
    REQUIRE(call.frame.stack().push(evmalloc::Word::from(depth)).has_value());
    evmalloc::Memory& m = call.frame.memory();
    for (const std::uint64_t end : memory_ends)
    {
        walk.step(
            [&] {
                const auto r = m.expand(0, end);
                if (!r)
                {
                    REQUIRE(r.error() == Errc::out_of_memory);
                    return false;
                }
                return true;
            },
            [&] { return memory_state(m); });
        std::fill(m.data(), m.data() + m.size(), call.tag);
    }

    // The same code on its shared analysis: a miss at the first depth that runs it.
    walk.step(
        [&] {
            auto f = evmalloc::StackFrame<>::init(
                call_code, evmalloc::test::distinct_op_table(), frames, site.cache);
            if (!f)
            {
                REQUIRE(f.error() == Errc::out_of_memory);
                return false;
            }
            REQUIRE(f->is_prepared());
            REQUIRE(f->analysis().instruction_count() == call.frame.analysis().instruction_count());
            site.shared.push_back(std::move(*f));
            return true;
        },
        [&] {
            State st = pool_state(frames);
            st.push_back(site.cache.entries());
            st.push_back(site.cache.bytes());
            st.push_back(site.cache.pinned());
            return st;
        },
        1);  // the bucket array a miss grew stays with the cache when the stack buffer then fails

    // A jumpdest frame of the same code, on its own pool.
    walk.step(
        [&] {
            auto f =
                evmalloc::StackFrame<JumpdestTraits>::init(call_code.size(), site.jumpdest_frames);
            if (!f)
            {
                REQUIRE(f.error() == Errc::out_of_memory);
                return false;
            }
            REQUIRE(f->prepare(call_code).has_value());
            for (std::size_t pc = 0; pc < call_code.size(); ++pc)
                REQUIRE(f->analysis().is_jumpdest(pc) == call.frame.analysis().is_jumpdest(pc));
            site.jumpdest.push_back(std::move(*f));
            return true;
        },
        [&] {
            const auto st = evmalloc::test::state_of(site.jumpdest_frames);
            State out{st.active, st.peak, st.allocated, st.retained_memories, st.bytes};
            out.insert(out.end(), st.retained.begin(), st.retained.end());
            return out;
        });
}

void unwind(CallSite& site)
{
    std::vector<Call>& calls = site.calls;
    while (!site.jumpdest.empty())
        site.jumpdest.pop_back();
    site.shared.erase(site.shared.begin());  // the outermost first: an early release
    while (!site.shared.empty())
        site.shared.pop_back();
    REQUIRE(site.cache.pinned() == 0);
    for (const Call& c : calls)
    {
        const auto& m = c.frame.memory();
        REQUIRE(
            std::all_of(m.data(), m.data() + m.size(), [&](std::uint8_t b) { return b == c.tag; }));
        REQUIRE(c.frame.stack().size() == 1);
    }
    calls.erase(calls.begin() + 1);  // an early release below the top
    while (!calls.empty())
        calls.pop_back();
    REQUIRE(site.frames.active() == 0);
    REQUIRE(site.jumpdest_frames.active() == 0);
    site.frames.trim();
    site.cache.clear();
    REQUIRE(site.cache.entries() == 0);
}

#if defined(__cpp_exceptions)
// The whole scenario on `walk.rec`: every object it makes is gone when it returns.
void transaction(Walk& walk)
{
    RecordingResource& rec = walk.rec;

    evmalloc::AllocatorConfig config;
    config.pool_preallocation_size = 5 * 256;  // small: the pools must grow
    config.arena_size = 4096;                  // small: the arena must take more chunks
    config.frame_pool_size = 2;
    std::optional<evmalloc::EvmAllocator> allocator;
    walk.throwing_step(
        [&] { allocator.emplace(config, walk.upstream); }, [&] { return State{rec.live_count()}; });
    evmalloc::EvmAllocator& a = *allocator;

    CallSite site{a.frames(), walk.upstream};
    std::vector<Block> arena_blocks, pmr_blocks;
    std::vector<evmalloc::Address*> addresses;
    std::pmr::vector<std::uint64_t> values{&a};
    evmalloc::ObjectPool<Tiny> tiny{walk.upstream};
    std::vector<Tiny*> tinies;
    evmalloc::BufferPool<1024> buffers{walk.upstream};
    std::vector<Block> buffer_blocks;

    for (std::size_t depth = 0; depth < 4; ++depth)
    {
        calls_part(walk, site, depth);
        const auto tag = static_cast<std::uint8_t>(depth + 1);
        // Transaction data in the arena: more than its first chunk holds.
        for (int k = 0; k < 3; ++k)
        {
            const std::size_t bytes = 1500 + 1000 * depth;
            walk.throwing_step(
                [&] {
                    void* p = a.arena().allocate(bytes, 16);
                    std::fill_n(static_cast<std::uint8_t*>(p), bytes, tag);
                    arena_blocks.push_back({p, bytes, 16, tag});
                },
                [&] {
                    return State{a.arena().used(), a.arena().reserved(), a.arena().chunk_count()};
                });
        }

        // The typed pools' fast path: enough addresses that the pool grows.
        for (int k = 0; k < 40; ++k)
        {
            walk.throwing_step(
                [&] {
                    evmalloc::Address addr{};
                    addr.bytes.fill(static_cast<std::uint8_t>(k));
                    addresses.push_back(a.address_pool().create(addr));
                },
                [&] { return allocator_state(a, rec); });
        }

        // Requests through the allocator's pmr face: every route, upstream included.
        constexpr std::array<std::size_t, 9> request_sizes{
            20, 32, 200, 1000, 4000, 10000, 300, 300, 300};
        for (const std::size_t bytes : request_sizes)
        {
            const std::size_t alignment = bytes == 32 ? 32 : 8;
            walk.throwing_step(
                [&] {
                    void* p = static_cast<std::pmr::memory_resource&>(a).allocate(bytes, alignment);
                    std::fill_n(static_cast<std::uint8_t*>(p), bytes, tag);
                    pmr_blocks.push_back({p, bytes, alignment, tag});
                },
                [&] { return allocator_state(a, rec); });
        }

        // A pmr container on the allocator: each reallocation may fail; the vector keeps
        // its elements (std::vector's strong guarantee over our bad_alloc).
        for (int k = 0; k < 300; ++k)
        {
            walk.throwing_step([&] { values.push_back(values.size()); },
                [&] {
                    return State{values.size(), values.capacity(),
                        fingerprint(values.data(), values.size() * sizeof(std::uint64_t))};
                });
        }

        // A standalone ObjectPool and BufferPool on the same upstream (acquire, create and
        // the pmr face, which forwards what does not fit).
        for (int k = 0; k < 20; ++k)
        {
            walk.throwing_step(
                [&] {
                    tinies.push_back(tiny.create(Tiny{depth, static_cast<std::uint64_t>(k)}));
                },
                [&] {
                    return State{tiny.capacity(), tiny.in_use(), tiny.bytes_reserved()};
                });
            const std::size_t bytes = k % 5 == 4 ? 2000 : 1024;
            walk.throwing_step(
                [&] {
                    void* p = static_cast<std::pmr::memory_resource&>(buffers).allocate(bytes, 64);
                    std::fill_n(static_cast<std::uint8_t*>(p), bytes, tag);
                    buffer_blocks.push_back({p, bytes, 64, tag});
                },
                [&] {
                    return State{buffers.capacity(), buffers.in_use(), buffers.bytes_reserved(),
                        rec.live_bytes()};
                });
        }
    }

    // Everything kept what was written into it.
    for (const std::vector<Block>* blocks : {&arena_blocks, &pmr_blocks, &buffer_blocks})
        for (const Block& b : *blocks)
            REQUIRE(holds(b));
    for (std::size_t i = 0; i < addresses.size(); ++i)
        REQUIRE(addresses[i]->bytes[0] == static_cast<std::uint8_t>(i % 40));
    for (std::size_t i = 0; i < values.size(); ++i)
        REQUIRE(values[i] == i);

    unwind(site);
    a.reset_arena();
    REQUIRE(a.arena().used() == 0);
    for (evmalloc::Address* p : addresses)
        a.address_pool().destroy(p);
    for (const Block& b : pmr_blocks)
        static_cast<std::pmr::memory_resource&>(a).deallocate(b.p, b.bytes, b.alignment);
    values.clear();
    values.shrink_to_fit();
    for (Tiny* t : tinies)
        tiny.destroy(t);
    for (const Block& b : buffer_blocks)
        static_cast<std::pmr::memory_resource&>(buffers).deallocate(b.p, b.bytes, b.alignment);
    const auto s = a.statistics();
    REQUIRE(s.current_bytes == 0);
    REQUIRE(s.reserved_bytes == 0);
    REQUIRE(s.total_allocations == s.total_deallocations);
    for (std::size_t i = 0; i < s.pool_count; ++i)
        REQUIRE(s.pools[i].in_use == 0);
    REQUIRE(tiny.in_use() == 0);
    REQUIRE(buffers.in_use() == 0);
}

#endif

// The Errc part alone (what runs without exceptions): nested calls on a FramePool.
void calls_only(Walk& walk)
{
    evmalloc::FramePool<> frames{walk.upstream};
    CallSite site{frames, walk.upstream};
    for (std::size_t depth = 0; depth < 4; ++depth)
        calls_part(walk, site, depth);
    unwind(site);
}

// The scenario, with the upstream failing at its n-th allocation (0-based) until it heals:
// by throwing, or by returning nullptr.
Run run_scenario(std::size_t n, FailureStyle style, void (*scenario)(Walk&))
{
    RecordingResource rec;
    rec.fail_after(n);
    Walk walk{rec, rec.upstream(style)};
    scenario(walk);
    // Nothing left upstream, every deallocation matched, and the fault, once reached, was met
    // by exactly one step.
    REQUIRE(rec.report().empty());
    REQUIRE(walk.faults + walk.absorbed == (rec.failures() != 0 ? 1U : 0U));
    return {walk.faults, walk.absorbed, rec.failures(), rec.allocations()};
}

struct Points
{
    std::size_t reported = 0;  ///< fault points where the failing step reported the failure
    std::size_t absorbed = 0;  ///< fault points a best-effort path absorbed
};

// Walks every fault point of `scenario`.
Points walk_every_fault(FailureStyle style, void (*scenario)(Walk&))
{
    // A clean run first: how many allocations the scenario makes.
    const Run clean = run_scenario(std::numeric_limits<std::size_t>::max(), style, scenario);
    REQUIRE(clean.failures == 0);
    Points points;
    for (std::size_t n = 0;; ++n)
    {
        INFO("upstream failing at allocation " << n);
        const Run run = run_scenario(n, style, scenario);
        if (run.failures == 0)
            break;
        points.reported += run.faults;
        points.absorbed += run.absorbed;
    }
    // Every allocation of the clean run was a fault point, and each was survived.
    REQUIRE(points.reported + points.absorbed == clean.allocations);
    REQUIRE(points.reported != 0);
    return points;
}
}  // namespace

#if defined(__cpp_exceptions)
TEST_CASE("Fault injection: every upstream allocation of a transaction fails once (bad_alloc), and "
          "is survived",
    "[fault_injection]")
{
    const Points points = walk_every_fault(FailureStyle::throws, transaction);
    WARN("fault injection, throwing upstream: "
         << points.reported + points.absorbed << " fault points walked (" << points.reported
         << " reported, " << points.absorbed
         << " absorbed by best-effort growth), every one survived");
}

TEST_CASE("Fault injection: every upstream allocation of a transaction fails once (nullptr), and "
          "is survived",
    "[fault_injection]")
{
    const Points points = walk_every_fault(FailureStyle::returns_nullptr, transaction);
    WARN("fault injection, upstream returning nullptr: "
         << points.reported + points.absorbed << " fault points walked (" << points.reported
         << " reported, " << points.absorbed
         << " absorbed by best-effort growth), every one survived");
}
#endif

TEST_CASE("Fault injection: nested calls with memory growth, upstream returning nullptr",
    "[fault_injection]")
{
    const Points points = walk_every_fault(FailureStyle::returns_nullptr, calls_only);
    WARN("fault injection, frames, shared analyses and memory: "
         << points.reported + points.absorbed << " fault points walked (" << points.reported
         << " reported, " << points.absorbed
         << " absorbed by best-effort growth), every one survived");
}
