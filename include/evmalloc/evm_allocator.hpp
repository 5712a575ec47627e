// evmalloc: EvmAllocator, the whole memory layer behind one std::pmr::memory_resource.
//
// One EvmAllocator owns everything an EVM needs while it executes transactions:
//   - typed pools for the small hot objects: 20-byte addresses, 32-byte words and hashes;
//   - BufferPool<256>, <1024> and <4096> for small buffers;
//   - a transaction arena (arena()) for data that dies with the transaction, freed at once
//     by reset_arena();
//   - the FramePool (frames()) that StackFrame::init takes frame buffers and Memory from;
//   - statistics of every request that came through its std::pmr face.
//
// It is a FallibleResource (upstream.hpp): try_allocate() takes the same routes as allocate()
// and returns nullptr where allocate() throws std::bad_alloc, statistics unchanged either way.
//
// Routing. A request is routed by (size, alignment) alone, so a deallocation, which carries
// the same pair, always reaches the pool that served it:
//
//     size <= 20   and alignment <= address slot's (8)   -> address pool (24-byte slots)
//     size <= 32   and alignment <= 32                   -> word pool (32-byte slots)
//     size <= 256  / <= 1024 / <= 4096                   -> BufferPool<256 / 1024 / 4096>
//     larger, or alignment above what pools guarantee    -> upstream
//
// Pools guarantee alignment 64 (a cache line) with alignment_optimization, else 16
// (alignof(std::max_align_t)); a request asking for more goes upstream, which honours any
// alignment: a result is never misaligned. Without enable_pool_allocation every request goes
// straight upstream. The typed accessors (address_pool(), word_pool(), buffer_pool<N>()) are
// the interpreter's fast path: requests made on them directly are not counted in statistics().
//
// Statistics are a compile-time policy (statistics.hpp). Each route's path is compiled on its
// own (its pool and slot size are constants there), and a request served from a pool's free
// list takes that inline path: routing, the pop or push, and, when counting, three adds per
// allocation and five updates per deallocation on one cache line. Everything else (upstream,
// a pool that must carve or grow) is one out-of-line call per route. EvmAllocator counts
// (BasicEvmAllocator<CountingStatistics>); there the runtime flag enable_statistics turns the
// counting off at the cost of one well-predicted branch per request. With
// BasicEvmAllocator<NoStatistics> (EvmAllocatorWithoutStatistics) there is no branch and no
// statistics code at all, and the flag is ignored. statistics() always reports the pools' and
// the arena's usage; the request counters only when counting.
//
// Debug builds (enable_asserts) remember the (size, alignment) of every live request in a
// side table (on the global heap, never upstream); a deallocation whose size or alignment
// differs from its allocation, or of a pointer this allocator did not hand out (also a second
// deallocation), is reported through the assertion handler and aborts. Every allocation of a
// debug build takes the out-of-line path, which fills the table. Release builds carry no table
// and no check.
//
// Threads: the model is one EvmAllocator per executing thread (transactions executed in
// parallel, each thread with its own allocator). An EvmAllocator is not thread-safe and
// takes no lock. What must be shared goes through Synchronized<EvmAllocator>.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "analysis_cache.hpp"
#include "buffer_pool.hpp"
#include "config.hpp"
#include "frame_pool.hpp"
#include "object_pool.hpp"
#include "statistics.hpp"
#include "traits.hpp"
#include "transaction_arena.hpp"
#include "upstream.hpp"

namespace evmalloc
{
/// A 20-byte account address, as the EVM (and evmc_address) has it.
struct Address
{
    std::array<std::uint8_t, 20> bytes;

    friend constexpr bool operator==(const Address&, const Address&) noexcept = default;
};
static_assert(sizeof(Address) == 20);

struct AllocatorConfig
{
    /// Route requests of up to the largest of standard_buffer_sizes (4096 bytes) to the pools.
    /// Off: every request through the std::pmr face goes upstream and the pools take nothing
    /// at construction (the typed accessors still work, growing on first use).
    bool enable_pool_allocation = true;
    /// Take the arena's first chunk (arena_size bytes) at construction and keep it across
    /// reset_arena(). Off: arena() still works, but takes chunks from upstream only when used
    /// and reset_arena() gives every one back.
    bool enable_arena_allocation = true;
    /// What frames() keeps for reuse: on, trim() keeps up to frame_pool_size free frame
    /// buffers per tier (and as many free Memory objects), and free Memory objects keep their
    /// storage within FramePoolConfig's default memory_retain_bytes. Off: trim() gives every
    /// free buffer back and a released Memory always returns its storage. Frames come from
    /// frames() either way.
    bool enable_frame_allocation = true;
    /// Count requests made through the std::pmr face (with CountingStatistics: one branch per
    /// request; EvmAllocatorWithoutStatistics ignores it). The typed pools are never counted.
    bool enable_statistics = true;
    /// Serve over-aligned requests (alignment up to 64: 32-byte words, cache lines) from the
    /// pools, whose slots carry that alignment. Off: pools serve alignments up to
    /// alignof(std::max_align_t) only, anything more goes upstream.
    bool alignment_optimization = true;
    /// Bytes taken from upstream at construction for the pools, split evenly over them (the
    /// address pool, the word pool and one BufferPool per standard_buffer_sizes): each takes
    /// whole slots of its share in one chunk. 0 takes nothing until first use. Used when
    /// enable_pool_allocation.
    std::size_t pool_preallocation_size = 64 * 1024;
    /// Bytes of the arena's first chunk, header included (used when enable_arena_allocation).
    std::size_t arena_size = 1024 * 1024;
    /// Free frame buffers frames().trim() keeps per tier, and free Memory objects it keeps
    /// (FramePoolConfig::retain_per_tier; used when enable_frame_allocation). Not a limit on
    /// frames alive at once: that is FramePoolConfig::max_frames.
    std::size_t frame_pool_size = 256;
    /// The budget of analyses() (AnalysisCacheConfig::max_bytes): the shared analyses kept for
    /// calls to come. 0 keeps none that no frame pins: every call analyses afresh.
    std::size_t analysis_cache_bytes = std::size_t{64} << 20;

    /// Everything on: 64 KiB of pool slots, a 1 MiB arena chunk, 256 frames per tier, 64 MiB
    /// of shared analyses.
    [[nodiscard]] static constexpr AllocatorConfig optimized() noexcept
    {
        return AllocatorConfig{};
    }

    /// Everything off: each request, arena chunk and frame buffer goes straight upstream.
    [[nodiscard]] static constexpr AllocatorConfig minimal() noexcept
    {
        return AllocatorConfig{
            .enable_pool_allocation = false,
            .enable_arena_allocation = false,
            .enable_frame_allocation = false,
            .enable_statistics = false,
            .alignment_optimization = false,
            .pool_preallocation_size = 0,
            .arena_size = 0,
            .frame_pool_size = 0,
            .analysis_cache_bytes = 0,
        };
    }
};

/// Where a request of some (size, alignment) is served: a pool per route, in the order the
/// routing rule tries them, then upstream. The buffer routes are standard_buffer_sizes, in
/// order (checked below).
enum class Route : std::uint8_t
{
    address,
    word,
    buffer256,
    buffer1024,
    buffer4096,
    upstream,
};

namespace detail
{
/// Route::upstream is last; the routes before it are pooled, the buffer routes from this one.
inline constexpr auto first_buffer_route = static_cast<std::size_t>(Route::buffer256);
inline constexpr auto pooled_route_count = static_cast<std::size_t>(Route::upstream);
static_assert(pooled_route_count == first_buffer_route + standard_buffer_sizes.size());
static_assert(standard_buffer_sizes == std::array<std::size_t, 3>{256, 1024, 4096},
    "Route's buffer enumerators are named after standard_buffer_sizes");

/// Each route's name, as AllocationStatistics reports it (static strings).
inline constexpr std::array<const char*, pooled_route_count + 1> route_names{
    "address", "word", "buffer256", "buffer1024", "buffer4096", "upstream"};
}  // namespace detail

template <StatisticsPolicy Stats, class Traits = DefaultTraits>
class BasicEvmAllocator : public FallibleResource
{
public:
    using Word = typename Traits::Word;
    using statistics_policy = Stats;
    using traits_type = Traits;

    using AddressPool = ObjectPool<Address>;
    using WordPool = ObjectPool<Word>;

    /// Requests up to this size go to the address pool (alignment permitting).
    static constexpr std::size_t address_size = sizeof(Address);
    /// Requests up to this size go to the word pool (alignment permitting).
    static constexpr std::size_t word_size = sizeof(Word);
    static_assert(word_size > address_size && word_size <= standard_buffer_sizes.front(),
        "a Word is 32 bytes in the EVM");

    /// The largest alignment a pool serves (with alignment_optimization): a cache line.
    static constexpr std::size_t max_pool_alignment = 64;

    /// \requires upstream is not null and outlives the allocator.
    /// \throws std::bad_alloc when upstream fails the pool preallocation or the arena's
    /// first chunk.
    explicit BasicEvmAllocator(AllocatorConfig config = AllocatorConfig::optimized(),
        Upstream upstream = std::pmr::new_delete_resource())
      : upstream_{upstream},
        config_{config},
        max_pooled_alignment_{!config.enable_pool_allocation  ? 0
                              : config.alignment_optimization ? max_pool_alignment
                                                              : alignof(std::max_align_t)},
        counting_{Stats::compiled_in && config.enable_statistics},
        pools_{seeds(PoolSeed{upstream, &config}, std::make_index_sequence<pool_count>{})},
        arena_{config.enable_arena_allocation ? config.arena_size : 0, upstream},
        frames_{upstream, frame_config(config)},
        analyses_{upstream, AnalysisCacheConfig{.max_bytes = config.analysis_cache_bytes}}
    {
        EVMALLOC_ASSERT(upstream.resource() != nullptr);
    }

    BasicEvmAllocator(const BasicEvmAllocator&) = delete;
    BasicEvmAllocator& operator=(const BasicEvmAllocator&) = delete;

    /// Pools, arena and frames give everything back upstream.
    /// \requires every request served has been deallocated (reported in debug builds).
    ~BasicEvmAllocator() override
    {
        if constexpr (enable_asserts)
        {
            if (!debug_.empty())
                EVMALLOC_REPORT("EvmAllocator destroyed with allocations still live");
        }
    }

    /// Where a request of (bytes, alignment) goes under this allocator's config.
    [[nodiscard]] Route route(std::size_t bytes, std::size_t alignment) const noexcept
    {
        return dispatch(bytes, alignment, [](auto to) noexcept { return decltype(to)::value; });
    }

    /// The transaction arena: a monotonic std::pmr resource (deallocation does nothing).
    [[nodiscard]] TransactionArena& arena() noexcept { return arena_; }
    /// Frees everything allocated from arena() at once, keeping its first chunk.
    /// \requires nothing allocated from arena() is used after this.
    void reset_arena() noexcept { arena_.reset(); }

    /// The frame pool StackFrame<Traits>::init takes buffers and Memory from.
    [[nodiscard]] FramePool<Traits>& frames() noexcept { return frames_; }
    /// The shared analyses StackFrame<Traits>::init(code, ..., frames(), analyses()) pins.
    [[nodiscard]] AnalysisCache<Traits>& analyses() noexcept { return analyses_; }

    /// The typed pools: the interpreter's fast path (acquire/release, create/destroy).
    [[nodiscard]] AddressPool& address_pool() noexcept { return pool<Route::address>(); }
    [[nodiscard]] WordPool& word_pool() noexcept { return pool<Route::word>(); }
    /// \requires N is one of standard_buffer_sizes (checked at compile time).
    template <std::size_t N>
    [[nodiscard]] BufferPool<N>& buffer_pool() noexcept
    {
        static_assert(buffer_route(N) != Route::upstream,
            "the buffer pools hold the sizes in standard_buffer_sizes");
        return pool<buffer_route(N)>();
    }

    /// The request counters (when counting), the pools' usage, the arena's and the shared
    /// analyses'.
    [[nodiscard]] AllocationStatistics statistics() const noexcept
    {
        AllocationStatistics s = counting_ ? stats_.snapshot() : AllocationStatistics{};
        s.pool_count = pool_count;
        [&]<std::size_t... I>(std::index_sequence<I...>)
        {
            ((s.pools[I] = usage<static_cast<Route>(I)>()), ...);
        }
        (std::make_index_sequence<pool_count>{});
        s.arena_bytes_used = arena_.used();
        s.arena_bytes_reserved = arena_.reserved();
        s.analysis_cache = {analyses_.hits(), analyses_.misses(), analyses_.evictions(),
            analyses_.entries(), analyses_.bytes()};
        return s;
    }

    /// True when requests are being counted (CountingStatistics and enable_statistics).
    [[nodiscard]] bool counting() const noexcept { return counting_; }
    [[nodiscard]] const AllocatorConfig& config() const noexcept { return config_; }
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept
    {
        return upstream_.resource();
    }

protected:
    /// \throws std::bad_alloc when upstream fails (a pool that must grow, or a request routed
    /// upstream); statistics and pool counts are unchanged then.
    void* do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        return allocate_impl<true>(bytes, alignment);
    }

    /// As do_allocate(), nullptr where it throws.
    void* do_try_allocate(std::size_t bytes, std::size_t alignment) noexcept override
    {
        return allocate_impl<false>(bytes, alignment);
    }

    /// \requires (bytes, alignment) are those p was allocated with (checked in debug builds:
    /// a mismatch is reported and aborts).
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override
    {
        if constexpr (enable_asserts)
            debug_untrack(p, bytes, alignment);
        // Not noexcept: a deallocation upstream stays a tail call.
        dispatch(bytes, alignment, [this, p, bytes, alignment](auto to) {
            constexpr Route r = decltype(to)::value;
            record_deallocation(bytes, reserved_for<r>(bytes));
            give_back<r>(p, bytes, alignment);
        });
    }

    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }

private:
    template <Route R>
    using RouteTag = std::integral_constant<Route, R>;

    /// Both faces, written once: Throwing turns a failure (nullptr) into std::bad_alloc.
    template <bool Throwing>
    void* allocate_impl(std::size_t bytes, std::size_t alignment) noexcept(!Throwing)
    {
        return dispatch(bytes, alignment, [this, bytes, alignment](auto to) -> void* {
            constexpr Route r = decltype(to)::value;
            if constexpr (enable_asserts)
                return this->template allocate_slow<r, Throwing>(bytes, alignment);
            else if constexpr (r == Route::upstream)
            {
                if (Stats::compiled_in && counting_)
                    return allocate_slow<r, Throwing>(bytes, alignment);
                void* const p = upstream_.try_allocate(bytes, alignment);  // as minimal() does
                if (Throwing && p == nullptr) [[unlikely]]
                    detail::throw_bad_alloc(detail::upstream_failed);
                return p;
            }
            else
            {
                void* const p = pool<r>().try_acquire();
                if (p == nullptr) [[unlikely]]
                    return allocate_slow<r, Throwing>(bytes, alignment);
                record_allocation(bytes, reserved_for<r>(bytes));
                return p;
            }
        });
    }

    /// The route table: one pool per pooled route, in Route order (the typed pools, then a
    /// BufferPool per standard_buffer_sizes). Routing, pool<R>(), buffer_pool<N>(), the
    /// give-back path, the slot sizes and the statistics rows all read it.
    struct PoolSeed
    {
        Upstream upstream;
        const AllocatorConfig* config;
    };
    /// One pool, built from the seed (std::tuple cannot pass a pool two arguments in place).
    template <class P>
    struct Held
    {
        using Pool = P;
        Pool pool;
        explicit Held(const PoolSeed& s) : pool{s.upstream, slots_for(*s.config, Pool::slot_size)}
        {}
    };
    template <std::size_t... I>
    static auto pool_table(std::index_sequence<I...>) -> std::tuple<Held<AddressPool>,
        Held<WordPool>, Held<BufferPool<standard_buffer_sizes[I]>>...>;
    using Pools = decltype(pool_table(std::make_index_sequence<standard_buffer_sizes.size()>{}));

    static constexpr std::size_t pool_count = std::tuple_size_v<Pools>;
    static_assert(
        pool_count == detail::pooled_route_count && pool_count <= AllocationStatistics::max_pools);

    template <Route R>
    using PoolOf = typename std::tuple_element_t<static_cast<std::size_t>(R), Pools>::Pool;

    /// The largest request each pooled route serves, in Route order.
    static constexpr std::array<std::size_t, pool_count> max_bytes = [] {
        std::array<std::size_t, pool_count> a{address_size, word_size};
        for (std::size_t i = 0; i < standard_buffer_sizes.size(); ++i)
            a[detail::first_buffer_route + i] = standard_buffer_sizes[i];
        return a;
    }();

    /// The route of BufferPool<n>; Route::upstream when n is not a standard buffer size.
    static constexpr Route buffer_route(std::size_t n) noexcept
    {
        for (std::size_t i = 0; i < standard_buffer_sizes.size(); ++i)
        {
            if (standard_buffer_sizes[i] == n)
                return static_cast<Route>(detail::first_buffer_route + i);
        }
        return Route::upstream;
    }

    template <std::size_t... I>
    static auto seeds(PoolSeed s, std::index_sequence<I...>) noexcept
    {
        return std::tuple{(static_cast<void>(I), s)...};
    }

    /// The routing rule, once: calls f(RouteTag<route>{}) for the route of (bytes, alignment),
    /// so that each route's path is compiled with its pool and slot size known.
    template <class F>
    decltype(auto) dispatch(std::size_t bytes, std::size_t alignment, F&& f) const
    {
        if (alignment > max_pooled_alignment_) [[unlikely]]
            return f(RouteTag<Route::upstream>{});
        return dispatch_from<0>(bytes, alignment, f);
    }

    /// Tries the pooled routes from index I on, in order; upstream when none fits.
    template <std::size_t I, class F>
    decltype(auto) dispatch_from(std::size_t bytes, std::size_t alignment, F& f) const
    {
        if constexpr (I == pool_count)
            return f(RouteTag<Route::upstream>{});
        else
        {
            constexpr auto r = static_cast<Route>(I);
            if (fits<r>(bytes, alignment))
                return f(RouteTag<r>{});
            return dispatch_from<I + 1>(bytes, alignment, f);
        }
    }

    /// True when route R serves (bytes, alignment), given alignment <= max_pooled_alignment_.
    template <Route R>
    static constexpr bool fits(std::size_t bytes, std::size_t alignment) noexcept
    {
        constexpr std::size_t limit = max_bytes[static_cast<std::size_t>(R)];
        if constexpr (PoolOf<R>::slot_alignment >= max_pool_alignment)
            return bytes <= limit;  // any pooled alignment fits its slots
        else
            return bytes <= limit && alignment <= PoolOf<R>::slot_alignment;
    }

    /// The pool serving route R. \requires R != Route::upstream
    template <Route R>
    PoolOf<R>& pool() noexcept
    {
        return std::get<static_cast<std::size_t>(R)>(pools_).pool;
    }
    template <Route R>
    const PoolOf<R>& pool() const noexcept
    {
        return std::get<static_cast<std::size_t>(R)>(pools_).pool;
    }

    static std::size_t slots_for(const AllocatorConfig& c, std::size_t slot_size) noexcept
    {
        return c.enable_pool_allocation ? c.pool_preallocation_size / pool_count / slot_size : 0;
    }

    static FramePoolConfig frame_config(const AllocatorConfig& c) noexcept
    {
        FramePoolConfig f;
        if (c.enable_frame_allocation)
            f.retain_per_tier = c.frame_pool_size;
        else
        {
            f.retain_per_tier = 0;
            f.memory_retain_bytes = 0;
        }
        return f;
    }

    /// The statistics row of pooled route R.
    template <Route R>
    PoolUsage usage() const noexcept
    {
        const PoolOf<R>& p = pool<R>();
        return PoolUsage{detail::route_names[static_cast<std::size_t>(R)], PoolOf<R>::slot_size,
            p.capacity(), p.in_use()};
    }

    /// Bytes set aside for a request of `bytes` routed to R: the pool's slot, or the request
    /// itself upstream.
    template <Route R>
    static constexpr std::size_t reserved_for(std::size_t bytes) noexcept
    {
        if constexpr (R == Route::upstream)
            return bytes;
        else
            return PoolOf<R>::slot_size;
    }

    void record_allocation(std::size_t bytes, std::size_t reserved) noexcept
    {
        if constexpr (Stats::compiled_in)
        {
            if (counting_)
                stats_.record_allocation(bytes, reserved);
        }
    }

    void record_deallocation(std::size_t bytes, std::size_t reserved) noexcept
    {
        if constexpr (Stats::compiled_in)
        {
            if (counting_)
                stats_.record_deallocation(bytes, reserved);
        }
    }

    /// Everything but a pool's free-list pop: upstream requests, a pool that must carve or
    /// grow, and (debug builds) every request, for the side table. Out of line, so that the
    /// inline path calls nothing and saves no register. nullptr when upstream fails (Throwing:
    /// std::bad_alloc), nothing recorded then.
    template <Route R, bool Throwing>
    [[gnu::noinline]] void* allocate_slow(std::size_t bytes, std::size_t alignment) noexcept(
        !Throwing)
    {
        void* p;
        if constexpr (R == Route::upstream)
            p = upstream_.try_allocate(bytes, alignment);
        else
            p = pool<R>().acquire_or_null();
        if constexpr (enable_asserts)
        {
            if (p != nullptr && !debug_track<R>(p, bytes, alignment))
                p = nullptr;
        }
        if (p == nullptr) [[unlikely]]
        {
            if constexpr (Throwing)
                detail::throw_bad_alloc(detail::upstream_failed);
            return nullptr;
        }
        record_allocation(bytes, reserved_for<R>(bytes));
        return p;
    }

    /// Gives back what route R handed out.
    template <Route R>
    void give_back(void* p, std::size_t bytes, std::size_t alignment)
    {
        if constexpr (R == Route::upstream)
            upstream_.deallocate(p, bytes, alignment);
        else
        {
            using Pointer = decltype(pool<R>().acquire());  // Address*, Word* or std::byte*
            pool<R>().release(static_cast<Pointer>(p));
        }
    }

    // Debug builds only: (size, alignment) of every live request, to check deallocations.
    struct DebugBlock
    {
        std::size_t bytes;
        std::size_t alignment;
    };
    using DebugTable = std::unordered_map<const void*, DebugBlock>;
    struct NoDebugTable
    {
    };

    /// Records a new request; if the table cannot grow, the request is given back and the
    /// answer is false, nothing changed.
    template <Route R>
    bool debug_track(void* p, std::size_t bytes, std::size_t alignment) noexcept
    {
        if constexpr (enable_asserts)
        {
            if (!detail::invoke_nothrow([&] { debug_[p] = DebugBlock{bytes, alignment}; }))
            {
                give_back<R>(p, bytes, alignment);
                return false;
            }
        }
        return true;
    }

    /// Forgets p, which must be live with exactly (bytes, alignment); otherwise reports the
    /// mismatch and aborts.
    void debug_untrack(void* p, std::size_t bytes, std::size_t alignment) noexcept
    {
        if constexpr (enable_asserts)
        {
            const auto it = debug_.find(p);
            EVMALLOC_ASSERT_MSG(it != debug_.end(),
                "EvmAllocator: deallocation of a pointer it did not hand out "
                "(or deallocated twice)");
            EVMALLOC_ASSERT_MSG(it->second.bytes == bytes && it->second.alignment == alignment,
                "EvmAllocator: deallocation with a size or alignment different "
                "from the allocation");
            debug_.erase(it);
        }
        static_cast<void>(p);
        static_cast<void>(bytes);
        static_cast<void>(alignment);
    }

    Upstream upstream_;
    AllocatorConfig config_;
    std::size_t max_pooled_alignment_;  ///< 0 when pools are off: every request goes upstream
    bool counting_;
    [[no_unique_address]] Stats stats_{};
    Pools pools_;
    TransactionArena arena_;
    FramePool<Traits> frames_;
    AnalysisCache<Traits> analyses_;
    [[no_unique_address]] std::conditional_t<enable_asserts, DebugTable, NoDebugTable> debug_;
};

/// The allocator an EVM owns: counts requests while AllocatorConfig::enable_statistics is on.
using EvmAllocator = BasicEvmAllocator<CountingStatistics>;
/// The same allocator with no statistics code on its hot path at all.
using EvmAllocatorWithoutStatistics = BasicEvmAllocator<NoStatistics>;
}  // namespace evmalloc
