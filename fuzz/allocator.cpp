// Fuzz target `allocator`: an EvmAllocator under a configuration the input picks (optimized(),
// minimal() or any mix of the flags and sizes), fed requests of 0 B .. 64 KiB at alignments
// 1 .. 4096 through its std::pmr face, deallocations in any order, arena use and
// reset_arena(), and the typed pools' own fast path, against a model: the route of every
// request, alignment, no overlap (patterns kept), every pool's capacity (doubling chunks
// from the preallocation) and in_use, and statistics() exact after each step (totals,
// current, peak, reserved after rounding to slots, size classes; all zero when not
// counting). The upstream holds exactly the pools' chunks, the arena's chunks and the
// requests routed to it. It fails where the input says, also during construction:
// std::bad_alloc with nothing changed and nothing leaked.
#include "caching_resource.hpp"
#include "check.hpp"

#include <evmalloc/evm_allocator.hpp>
#include <support/recording_resource.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <new>
#include <optional>
#include <vector>

namespace
{
using evmalloc::AllocatorConfig;
using evmalloc::EvmAllocator;
using evmalloc::Route;
using evmalloc::fuzz::filled;
using evmalloc::fuzz::throws_bad_alloc_while_failing;
using evmalloc::test::RecordingResource;

constexpr std::size_t pool_count = 5;
constexpr std::array<std::size_t, pool_count> slot_sizes{24, 32, 256, 1024, 4096};
constexpr std::array<const char*, pool_count> pool_names{
    "address", "word", "buffer256", "buffer1024", "buffer4096"};

struct PoolModel
{
    std::size_t capacity = 0;
    std::size_t next_chunk = 0;
    std::size_t in_use = 0;
};

struct Counters
{
    std::uint64_t allocations = 0, deallocations = 0, bytes_allocated = 0, bytes_deallocated = 0;
    std::uint64_t current = 0, peak = 0, reserved = 0;
    std::array<std::uint64_t, 3> classes{};
};

struct Live
{
    void* p;
    std::size_t bytes;
    std::size_t alignment;
    Route route;
    std::uint8_t tag;
};

class Harness
{
public:
    Harness(
        RecordingResource& rec, evmalloc::test::FailureStyle style, const AllocatorConfig& config)
      : rec_{rec}, config_{config}
    {
        a_.emplace(config, rec.upstream(style));
        max_pooled_ = !config.enable_pool_allocation  ? 0
                      : config.alignment_optimization ? 64
                                                      : alignof(std::max_align_t);
        for (std::size_t i = 0; i < pool_count; ++i)
        {
            const std::size_t slots = config.enable_pool_allocation
                                          ? config.pool_preallocation_size / 5 / slot_sizes[i]
                                          : 0;
            const std::size_t first = std::max<std::size_t>((4096 - 16) / slot_sizes[i], 8);
            pools_[i] = {slots, slots != 0 ? 2 * slots : first, 0};
        }
        arena_kept_ = config.enable_arena_allocation && config.arena_size != 0
                          ? std::max<std::size_t>(config.arena_size,
                                sizeof(evmalloc::TransactionArena::ChunkHeader) + 1)
                          : 0;
        counting_ = config.enable_statistics;
        check();
    }

    ~Harness()
    {
        while (!live_.empty())
            deallocate(live_.size() - 1);
        while (!typed_.empty())
            release_typed();
    }

    void step(FuzzedDataProvider& in)
    {
        const bool failing = in.ConsumeIntegral<std::uint8_t>() < 32;
        switch (in.ConsumeIntegralInRange<int>(0, 9))
        {
        case 0:
        case 1:
        case 2:
        case 3:
            allocate(in, failing);
            break;
        case 4:
        case 5:
            if (!live_.empty())
                deallocate(in.ConsumeIntegralInRange<std::size_t>(0, live_.size() - 1));
            break;
        case 6:
            arena_allocate(in, failing);
            break;
        case 7:
            reset_arena();
            break;
        case 8:
            take_typed(failing);
            break;
        default:
            if (!typed_.empty())
                release_typed();
            break;
        }
        check();
    }

private:
    FUZZ_NO_COVERAGE Route model_route(std::size_t bytes, std::size_t alignment) const
    {
        if (alignment > max_pooled_)
            return Route::upstream;
        if (bytes <= 20 && alignment <= 8)
            return Route::address;
        if (bytes <= 32 && alignment <= 32)
            return Route::word;
        if (bytes <= 256)
            return Route::buffer256;
        if (bytes <= 1024)
            return Route::buffer1024;
        if (bytes <= 4096)
            return Route::buffer4096;
        return Route::upstream;
    }

    static std::size_t index(Route r) { return static_cast<std::size_t>(r); }

    FUZZ_NO_COVERAGE bool must_grow(Route r) const
    {
        const PoolModel& m = pools_[index(r)];
        return m.in_use == m.capacity;
    }
    FUZZ_NO_COVERAGE void take_slot(Route r)
    {
        PoolModel& m = pools_[index(r)];
        if (m.in_use == m.capacity)
        {
            m.capacity += m.next_chunk;
            m.next_chunk *= 2;
        }
        ++m.in_use;
    }

    // Upstream fails: std::bad_alloc, statistics and the upstream as they were.
    template <class F>
    FUZZ_NO_COVERAGE void expect_bad_alloc(F&& f)
    {
        const auto before = a_->statistics();
        const std::size_t live = rec_.live_count();
        FUZZ_CHECK(throws_bad_alloc_while_failing(rec_, f));
        FUZZ_CHECK(rec_.live_count() == live);
        const auto after = a_->statistics();
        FUZZ_CHECK(after.total_allocations == before.total_allocations);
        FUZZ_CHECK(after.current_bytes == before.current_bytes &&
                   after.reserved_bytes == before.reserved_bytes);
        FUZZ_CHECK(after.arena_bytes_used == before.arena_bytes_used);
        FUZZ_CHECK(after.arena_bytes_reserved == before.arena_bytes_reserved);
        for (std::size_t i = 0; i < pool_count; ++i)
            FUZZ_CHECK(after.pools[i].capacity == before.pools[i].capacity &&
                       after.pools[i].in_use == before.pools[i].in_use);
    }

    FUZZ_NO_COVERAGE void allocate(FuzzedDataProvider& in, bool failing)
    {
        static constexpr std::size_t ranges[] = {40, 300, 5000, 65536};
        const std::size_t bytes = in.ConsumeIntegralInRange<std::size_t>(
            0, ranges[in.ConsumeIntegralInRange<std::size_t>(0, 3)]);
        const std::size_t alignment = std::size_t{1} << in.ConsumeIntegralInRange<int>(0, 12);
        const Route r = model_route(bytes, alignment);
        FUZZ_CHECK(a_->route(bytes, alignment) == r);
        std::pmr::memory_resource& face = *a_;
        if (failing && (r == Route::upstream || must_grow(r)))
        {
            expect_bad_alloc([&] { return face.allocate(bytes, alignment); });
            return;
        }
        void* const p = face.allocate(bytes, alignment);
        FUZZ_CHECK(p != nullptr && reinterpret_cast<std::uintptr_t>(p) % alignment == 0);
        if (r == Route::upstream)
        {
            FUZZ_CHECK(rec_.is_live(p));
            upstream_bytes_ += bytes;
        }
        else
            take_slot(r);
        if (counting_)
        {
            ++c_.allocations;
            ++c_.classes[bytes < 256 ? 0 : bytes <= 4096 ? 1 : 2];
            c_.bytes_allocated += bytes;
            c_.current += bytes;
            c_.peak = std::max(c_.peak, c_.current);
            c_.reserved += r == Route::upstream ? bytes : slot_sizes[index(r)];
        }
        const auto tag = static_cast<std::uint8_t>(++tags_);
        std::memset(p, tag, bytes);
        add_block(p, bytes);
        live_.push_back({p, bytes, alignment, r, tag});
    }

    FUZZ_NO_COVERAGE void deallocate(std::size_t i)
    {
        const Live b = live_[i];
        live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(i));
        FUZZ_CHECK(filled(b.p, b.bytes, b.tag));
        remove_block(b.p, b.bytes);
        static_cast<std::pmr::memory_resource&>(*a_).deallocate(b.p, b.bytes, b.alignment);
        if (b.route == Route::upstream)
        {
            FUZZ_CHECK(!rec_.is_live(b.p));
            upstream_bytes_ -= b.bytes;
        }
        else
            --pools_[index(b.route)].in_use;
        if (counting_)
        {
            ++c_.deallocations;
            c_.bytes_deallocated += b.bytes;
            c_.current -= b.bytes;
            c_.reserved -= b.route == Route::upstream ? b.bytes : slot_sizes[index(b.route)];
        }
    }

    FUZZ_NO_COVERAGE void arena_allocate(FuzzedDataProvider& in, bool failing)
    {
        const std::size_t bytes =
            in.ConsumeIntegralInRange<std::size_t>(0, in.ConsumeBool() ? 64 : 9000);
        const std::size_t alignment = std::size_t{1} << in.ConsumeIntegralInRange<int>(0, 12);
        evmalloc::TransactionArena& arena = a_->arena();
        const std::size_t used = arena.used();
        const std::size_t reserved = arena.reserved();
        if (failing)
        {
            // Fails only when the request needs a new chunk; then nothing changed.
            rec_.set_failing(true);
            void* p = nullptr;
            try
            {
                p = arena.allocate(bytes, alignment);
            }
            catch (const std::bad_alloc&)
            {
                rec_.set_failing(false);
                FUZZ_CHECK(arena.used() == used && arena.reserved() == reserved);
                return;
            }
            rec_.set_failing(false);
            FUZZ_CHECK(arena.reserved() == reserved);
            arena_block(p, bytes, alignment, used);
            return;
        }
        void* const p = arena.allocate(bytes, alignment);
        arena_block(p, bytes, alignment, used);
    }

    FUZZ_NO_COVERAGE void arena_block(
        void* p, std::size_t bytes, std::size_t alignment, std::size_t used_before)
    {
        FUZZ_CHECK(reinterpret_cast<std::uintptr_t>(p) % alignment == 0);
        FUZZ_CHECK(a_->arena().used() >= used_before + bytes);
        FUZZ_CHECK(a_->arena().owns(p));
        const auto tag = static_cast<std::uint8_t>(++tags_);
        std::memset(p, tag, bytes);
        add_block(p, bytes);
        arena_live_.push_back({p, bytes, alignment, Route::upstream, tag});
    }

    FUZZ_NO_COVERAGE void reset_arena()
    {
        for (const Live& b : arena_live_)
        {
            FUZZ_CHECK(filled(b.p, b.bytes, b.tag));
            remove_block(b.p, b.bytes);
        }
        arena_live_.clear();
        a_->reset_arena();
        FUZZ_CHECK(a_->arena().used() == 0);
        FUZZ_CHECK(a_->arena().reserved() == arena_kept_);
    }

    // The interpreter's fast path: not counted in statistics(), but in the pool's usage.
    FUZZ_NO_COVERAGE void take_typed(bool failing)
    {
        auto& pool = a_->address_pool();
        if (failing && must_grow(Route::address))
        {
            expect_bad_alloc([&] { return pool.create(evmalloc::Address{}); });
            return;
        }
        evmalloc::Address value{};
        value.bytes.fill(static_cast<std::uint8_t>(++tags_));
        evmalloc::Address* const p = pool.create(value);
        FUZZ_CHECK(*p == value);
        add_block(p, sizeof(evmalloc::Address));
        typed_.push_back({p, value});
        take_slot(Route::address);
    }

    FUZZ_NO_COVERAGE void release_typed()
    {
        const auto [p, value] = typed_.back();
        typed_.pop_back();
        FUZZ_CHECK(*p == value);
        remove_block(p, sizeof(evmalloc::Address));
        a_->address_pool().destroy(p);
        --pools_[index(Route::address)].in_use;
    }

    // Blocks of n > 0 bytes must not overlap (an empty one may sit anywhere, an arena hands
    // several out at one address).
    FUZZ_NO_COVERAGE void add_block(const void* p, std::size_t n)
    {
        if (n == 0)
            return;
        const auto b = reinterpret_cast<std::uintptr_t>(p);
        const std::uintptr_t e = b + n;
        const auto next = blocks_.lower_bound(b);
        FUZZ_CHECK(next == blocks_.end() || next->first >= e);
        if (next != blocks_.begin())
            FUZZ_CHECK(std::prev(next)->second <= b);
        blocks_.emplace(b, e);
    }
    FUZZ_NO_COVERAGE void remove_block(const void* p, std::size_t n)
    {
        if (n != 0)
            FUZZ_CHECK(blocks_.erase(reinterpret_cast<std::uintptr_t>(p)) == 1);
    }

    FUZZ_NO_COVERAGE void check()
    {
        const evmalloc::AllocationStatistics s = a_->statistics();
        FUZZ_CHECK(s.enabled == counting_ && a_->counting() == counting_);
        FUZZ_CHECK(s.total_allocations == c_.allocations);
        FUZZ_CHECK(s.total_deallocations == c_.deallocations);
        FUZZ_CHECK(s.total_bytes_allocated == c_.bytes_allocated);
        FUZZ_CHECK(s.total_bytes_deallocated == c_.bytes_deallocated);
        FUZZ_CHECK(s.current_bytes == c_.current);
        FUZZ_CHECK(s.peak_bytes == c_.peak);
        FUZZ_CHECK(s.reserved_bytes == c_.reserved);
        FUZZ_CHECK(s.size_distribution.small == c_.classes[0]);
        FUZZ_CHECK(s.size_distribution.medium == c_.classes[1]);
        FUZZ_CHECK(s.size_distribution.large == c_.classes[2]);
        FUZZ_CHECK(s.pool_count == pool_count);
        for (std::size_t i = 0; i < pool_count; ++i)
        {
            FUZZ_CHECK(std::strcmp(s.pools[i].name, pool_names[i]) == 0);
            FUZZ_CHECK(s.pools[i].block_size == slot_sizes[i]);
            FUZZ_CHECK(s.pools[i].capacity == pools_[i].capacity);
            FUZZ_CHECK(s.pools[i].in_use == pools_[i].in_use);
        }
        FUZZ_CHECK(s.arena_bytes_used == a_->arena().used());
        FUZZ_CHECK(s.arena_bytes_reserved == a_->arena().reserved());
        // The upstream holds the pools' chunks, the arena's chunks and the upstream-routed
        // requests; the frame pool is not used here.
        EvmAllocator& a = *a_;
        const std::size_t pools =
            a.address_pool().bytes_reserved() + a.word_pool().bytes_reserved() +
            a.buffer_pool<256>().bytes_reserved() + a.buffer_pool<1024>().bytes_reserved() +
            a.buffer_pool<4096>().bytes_reserved();
        FUZZ_CHECK(rec_.live_bytes() == pools + a.arena().reserved() + upstream_bytes_);
    }

    RecordingResource& rec_;
    AllocatorConfig config_;
    std::optional<EvmAllocator> a_;
    std::size_t max_pooled_ = 0;
    std::array<PoolModel, pool_count> pools_{};
    std::size_t arena_kept_ = 0;
    bool counting_ = false;
    Counters c_;
    std::vector<Live> live_, arena_live_;
    std::vector<std::pair<evmalloc::Address*, evmalloc::Address>> typed_;
    std::map<std::uintptr_t, std::uintptr_t> blocks_;
    std::size_t upstream_bytes_ = 0;
    unsigned tags_ = 0;
};

AllocatorConfig pick_config(FuzzedDataProvider& in)
{
    switch (in.ConsumeIntegralInRange<int>(0, 3))
    {
    case 0:
        return AllocatorConfig::optimized();
    case 1:
        return AllocatorConfig::minimal();
    default:
    {
        AllocatorConfig c;
        c.enable_pool_allocation = in.ConsumeBool();
        c.enable_arena_allocation = in.ConsumeBool();
        c.enable_frame_allocation = in.ConsumeBool();
        c.enable_statistics = in.ConsumeBool();
        c.alignment_optimization = in.ConsumeBool();
        constexpr std::size_t prealloc[] = {0, 5 * 24, 5 * 4096, 64 * 1024, 5 * 24 * 3 + 7};
        c.pool_preallocation_size = prealloc[in.ConsumeIntegralInRange<std::size_t>(0, 4)];
        constexpr std::size_t arena[] = {0, 1, 17, 100, 4096, 64 * 1024};
        c.arena_size = arena[in.ConsumeIntegralInRange<std::size_t>(0, 5)];
        c.frame_pool_size = in.ConsumeIntegralInRange<std::size_t>(0, 4);
        return c;
    }
    }
}
}  // namespace

/// Steps one input drives at most: long inputs stay cheap, and the corpus keeps its variety.
constexpr int max_steps = 256;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider in{data, size};
    RecordingResource rec{&evmalloc::fuzz::CachingResource::instance()};
    const AllocatorConfig config = pick_config(in);
    const evmalloc::test::FailureStyle style = evmalloc::fuzz::pick_failure_style(in);
    // Construction with the upstream failing at its k-th allocation: bad_alloc, nothing held.
    if (in.ConsumeIntegral<std::uint8_t>() < 32)
    {
        rec.fail_after(in.ConsumeIntegralInRange<std::size_t>(0, 6));
        try
        {
            EvmAllocator a{config, rec.upstream(style)};
        }
        catch (const std::bad_alloc&)
        {}
        rec.stop_failing();
        FUZZ_CHECK(rec.live_count() == 0);
    }
    {
        Harness h{rec, style, config};
        for (int steps = 0; steps < max_steps && in.remaining_bytes() != 0; ++steps)
            h.step(in);
    }
    FUZZ_CHECK(rec.check());
    return 0;
}
