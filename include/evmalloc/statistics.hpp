// evmalloc: allocation statistics, and the compile-time policy that records them.
//
// AllocationStatistics is a snapshot: totals, current and peak bytes, bytes reserved after
// rounding to pool slots, a size distribution, pool utilization and the transaction arena's
// usage. Rates and ratios (allocation_rate(), fragmentation(), pool_utilization()) are
// computed when asked; the only clock read is the one taken when counting starts.
//
// What records them is a policy type chosen at compile time:
//   CountingStatistics  adds every request to the counters, held in one cache line (three
//                       adds per allocation, the size class computed branch-free; five
//                       updates per deallocation)
//   NoStatistics        empty; every call is a no-op, so with it there is no statistics code
//                       on the hot path at all. Hold it as [[no_unique_address]]: it takes no
//                       space either.
// Both model StatisticsPolicy. A policy is not thread-safe: it belongs to one allocator,
// which belongs to one thread (or sits behind Synchronized).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>

#include "allocation.hpp"

namespace evmalloc
{
/// Requests by size: small < 256 <= medium <= 4096 < large (counts of allocations).
struct SizeDistribution
{
    std::uint64_t small = 0;
    std::uint64_t medium = 0;
    std::uint64_t large = 0;

    /// 0 small, 1 medium, 2 large; computed without a branch.
    [[nodiscard]] static constexpr std::size_t size_class(std::size_t bytes) noexcept
    {
        return static_cast<std::size_t>(bytes >= 256) + static_cast<std::size_t>(bytes > 4096);
    }

    friend constexpr bool operator==(
        const SizeDistribution&, const SizeDistribution&) noexcept = default;
};

/// How full one pool is when the snapshot is taken.
struct PoolUsage
{
    const char* name = "";       ///< a static string, e.g. "word"
    std::size_t block_size = 0;  ///< bytes per slot
    std::size_t capacity = 0;    ///< slots the pool holds (free or handed out)
    std::size_t in_use = 0;      ///< slots handed out

    /// in_use / capacity, 0 for an empty pool.
    [[nodiscard]] double utilization() const noexcept
    {
        return evmalloc::utilization(in_use, capacity);
    }
};

/// What the shared analyses (EvmAllocator::analyses()) did and hold.
struct AnalysisCacheUsage
{
    std::uint64_t hits = 0;       ///< calls that found their analysis
    std::uint64_t misses = 0;     ///< calls that analysed into a new entry
    std::uint64_t evictions = 0;  ///< entries freed to stay within the budget
    std::uint64_t entries = 0;    ///< entries held now
    std::uint64_t bytes = 0;      ///< bytes the entries hold now

    /// hits / (hits + misses), 0 before any call.
    [[nodiscard]] double hit_rate() const noexcept
    {
        return evmalloc::utilization(hits, hits + misses);
    }
};

struct AllocationStatistics
{
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t max_pools = 8;

    bool enabled = false;                     ///< false: nothing was counted (statistics off)
    std::uint64_t total_allocations = 0;      ///< requests served
    std::uint64_t total_deallocations = 0;    ///< requests given back
    std::uint64_t total_bytes_allocated = 0;  ///< bytes as requested
    std::uint64_t total_bytes_deallocated = 0;
    std::uint64_t current_bytes = 0;   ///< requested bytes still allocated
    std::uint64_t peak_bytes = 0;      ///< the largest current_bytes ever was
    std::uint64_t reserved_bytes = 0;  ///< bytes set aside for the live requests, after
                                       ///< rounding each to its pool slot
    SizeDistribution size_distribution{};
    std::array<PoolUsage, max_pools> pools{};  ///< the first pool_count entries are used
    std::size_t pool_count = 0;
    std::uint64_t arena_bytes_used = 0;  ///< handed out by the transaction arena since its reset
    std::uint64_t arena_bytes_reserved = 0;  ///< held by the arena from upstream
    AnalysisCacheUsage analysis_cache{};     ///< the shared analyses
    Clock::time_point start_time{};          ///< when counting began

    /// Seconds from start_time to `now`; 0 when statistics are off.
    [[nodiscard]] double elapsed_seconds(Clock::time_point now = Clock::now()) const noexcept
    {
        if (!enabled || now <= start_time)
            return 0.0;
        return std::chrono::duration<double>(now - start_time).count();
    }

    /// Allocations per second since counting began (0 when no time has passed).
    [[nodiscard]] double allocation_rate(Clock::time_point now = Clock::now()) const noexcept
    {
        const double seconds = elapsed_seconds(now);
        return seconds > 0.0 ? static_cast<double>(total_allocations) / seconds : 0.0;
    }

    /// 1 - requested / reserved over the live requests: the share of reserved bytes that
    /// rounding to slots wasted. 0 when nothing is reserved.
    [[nodiscard]] double fragmentation() const noexcept
    {
        if (reserved_bytes == 0)
            return 0.0;
        return 1.0 - static_cast<double>(current_bytes) / static_cast<double>(reserved_bytes);
    }

    /// Bytes in slots handed out / bytes in all slots, over every pool; 0 with no pool capacity.
    [[nodiscard]] double pool_utilization() const noexcept
    {
        double used = 0.0;
        double held = 0.0;
        for (std::size_t i = 0; i < std::min(pool_count, max_pools); ++i)
        {
            used += static_cast<double>(pools[i].in_use) * static_cast<double>(pools[i].block_size);
            held +=
                static_cast<double>(pools[i].capacity) * static_cast<double>(pools[i].block_size);
        }
        return held > 0.0 ? used / held : 0.0;
    }

    /// A few readable lines.
    void print_summary(std::ostream& out) const
    {
        out << "evmalloc statistics" << (enabled ? "" : " (counting off)") << '\n'
            << "  allocations:   " << total_allocations << " (" << total_bytes_allocated
            << " bytes)\n"
            << "  deallocations: " << total_deallocations << " (" << total_bytes_deallocated
            << " bytes)\n"
            << "  current:       " << current_bytes << " bytes, peak " << peak_bytes
            << " bytes, reserved " << reserved_bytes << " bytes\n"
            << "  sizes:         small " << size_distribution.small << ", medium "
            << size_distribution.medium << ", large " << size_distribution.large << '\n'
            << "  fragmentation: " << format_double(fragmentation() * 100.0) << " %\n"
            << "  rate:          " << format_double(allocation_rate()) << " allocations/s\n"
            << "  arena:         " << arena_bytes_used << " bytes used of " << arena_bytes_reserved
            << " reserved\n"
            << "  analyses:      " << analysis_cache.hits << " hits, " << analysis_cache.misses
            << " misses (" << format_double(analysis_cache.hit_rate() * 100.0) << " % hits), "
            << analysis_cache.evictions << " evictions, " << analysis_cache.entries << " entries, "
            << analysis_cache.bytes << " bytes\n"
            << "  pools:         " << format_double(pool_utilization() * 100.0) << " % used\n";
        for (std::size_t i = 0; i < std::min(pool_count, max_pools); ++i)
        {
            const PoolUsage& p = pools[i];
            out << "    " << p.name << " (" << p.block_size << " B): " << p.in_use << " of "
                << p.capacity << " slots\n";
        }
    }

    /// One JSON object with every field above and the computed ratios.
    [[nodiscard]] std::string to_json() const
    {
        std::string j = "{";
        j += "\"enabled\":";
        j += enabled ? "true" : "false";
        append_number(j, "total_allocations", total_allocations);
        append_number(j, "total_deallocations", total_deallocations);
        append_number(j, "total_bytes_allocated", total_bytes_allocated);
        append_number(j, "total_bytes_deallocated", total_bytes_deallocated);
        append_number(j, "current_bytes", current_bytes);
        append_number(j, "peak_bytes", peak_bytes);
        append_number(j, "reserved_bytes", reserved_bytes);
        j += ",\"size_distribution\":{\"small\":" + std::to_string(size_distribution.small) +
             ",\"medium\":" + std::to_string(size_distribution.medium) +
             ",\"large\":" + std::to_string(size_distribution.large) + "}";
        append_double(j, "allocation_rate", allocation_rate());
        append_double(j, "fragmentation", fragmentation());
        append_double(j, "pool_utilization", pool_utilization());
        append_number(j, "arena_bytes_used", arena_bytes_used);
        append_number(j, "arena_bytes_reserved", arena_bytes_reserved);
        j += ",\"analysis_cache\":{\"hits\":" + std::to_string(analysis_cache.hits);
        append_number(j, "misses", analysis_cache.misses);
        append_number(j, "evictions", analysis_cache.evictions);
        append_number(j, "entries", analysis_cache.entries);
        append_number(j, "bytes", analysis_cache.bytes);
        append_double(j, "hit_rate", analysis_cache.hit_rate());
        j += '}';
        j += ",\"pools\":[";
        for (std::size_t i = 0; i < std::min(pool_count, max_pools); ++i)
        {
            const PoolUsage& p = pools[i];
            if (i != 0)
                j += ',';
            j += "{\"name\":\"";
            append_escaped(j, p.name);
            j += '"';
            append_number(j, "block_size", p.block_size);
            append_number(j, "capacity", p.capacity);
            append_number(j, "in_use", p.in_use);
            append_double(j, "utilization", p.utilization());
            j += '}';
        }
        j += "]}";
        return j;
    }

private:
    /// JSON has no NaN or infinity: those print as 0.
    static std::string format_double(double v)
    {
        if (!std::isfinite(v))
            v = 0.0;
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        return buf;
    }
    static void append_number(std::string& j, const char* key, std::uint64_t v)
    {
        j += ",\"";
        j += key;
        j += "\":";
        j += std::to_string(v);
    }
    static void append_double(std::string& j, const char* key, double v)
    {
        j += ",\"";
        j += key;
        j += "\":";
        j += format_double(v);
    }
    static void append_escaped(std::string& j, std::string_view s)
    {
        for (const char c : s)
        {
            if (c == '"' || c == '\\')
            {
                j += '\\';
                j += c;
            }
            else if (static_cast<unsigned char>(c) < 0x20)
            {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                j += buf;
            }
            else
                j += c;
        }
    }
};

/// What an allocator calls on its hot path. `requested` is the size the caller asked for,
/// `reserved` what the serving pool set aside for it (its slot size; `requested` upstream).
/// `snapshot()` returns the counters; the allocator adds pool and arena usage.
template <class S>
concept StatisticsPolicy = std::default_initializable<S> &&
    requires(S& s, const S& cs, std::size_t n)
{
    {
        S::compiled_in
        } -> std::convertible_to<bool>;
    {
        s.record_allocation(n, n)
    }
    noexcept;
    {
        s.record_deallocation(n, n)
    }
    noexcept;
    {
        cs.snapshot()
    }
    noexcept->std::same_as<AllocationStatistics>;
};

/// Counts every request. One clock read, at construction.
///
/// The hot path keeps only what cannot be derived, in one cache line: three updates per
/// allocation (its size class, bytes requested, bytes reserved), five per deallocation. No
/// branch decides a size class (it is computed, and an allocator that knows a request's range
/// lets the compiler fold it to a constant). The peak needs no work per allocation: current
/// bytes only grow between deallocations, so their maximum is reached just before some
/// deallocation or now; record_deallocation() and snapshot() take it there.
/// Invariants: peak >= current bytes at every past deallocation; total allocations is the sum
/// of by_class; total bytes allocated is current + bytes_deallocated.
class CountingStatistics
{
public:
    static constexpr bool compiled_in = true;

    CountingStatistics() noexcept : start_{AllocationStatistics::Clock::now()} {}

    void record_allocation(std::size_t requested, std::size_t reserved) noexcept
    {
        ++c_.by_class[SizeDistribution::size_class(requested)];
        c_.current += requested;
        c_.reserved += reserved;
    }

    /// \requires (requested, reserved) are what record_allocation was given for this request.
    void record_deallocation(std::size_t requested, std::size_t reserved) noexcept
    {
        if (c_.current > c_.peak)
            c_.peak = c_.current;
        c_.current -= requested;
        c_.bytes_deallocated += requested;
        c_.reserved -= reserved;
        ++c_.deallocations;
    }

    [[nodiscard]] AllocationStatistics snapshot() const noexcept
    {
        AllocationStatistics out;
        out.enabled = true;
        out.start_time = start_;
        out.size_distribution = {c_.by_class[0], c_.by_class[1], c_.by_class[2]};
        out.total_allocations = c_.by_class[0] + c_.by_class[1] + c_.by_class[2];
        out.total_deallocations = c_.deallocations;
        out.total_bytes_allocated = c_.current + c_.bytes_deallocated;
        out.total_bytes_deallocated = c_.bytes_deallocated;
        out.current_bytes = c_.current;
        out.peak_bytes = std::max(c_.peak, c_.current);
        out.reserved_bytes = c_.reserved;
        return out;
    }

private:
    // Everything the hot path writes, in one 64-byte line. No two fields that one record_*()
    // call adds to sit side by side: compilers pair two adjacent adds into one vector add,
    // whose setup costs more than the two.
    struct alignas(64) Counters
    {
        std::array<std::uint64_t, 3> by_class{};  ///< allocations: small, medium, large
        std::uint64_t deallocations = 0;
        std::uint64_t current = 0;            ///< requested bytes live
        std::uint64_t bytes_deallocated = 0;  ///< requested bytes given back, ever
        std::uint64_t peak = 0;               ///< see the invariants above
        std::uint64_t reserved = 0;           ///< reserved bytes live
    };
    static_assert(sizeof(Counters) == 64);

    Counters c_;
    AllocationStatistics::Clock::time_point start_;
};

/// Counts nothing and costs nothing: hold it as [[no_unique_address]].
struct NoStatistics
{
    static constexpr bool compiled_in = false;

    void record_allocation(std::size_t, std::size_t) noexcept {}
    void record_deallocation(std::size_t, std::size_t) noexcept {}
    [[nodiscard]] AllocationStatistics snapshot() const noexcept { return {}; }
};

static_assert(StatisticsPolicy<CountingStatistics> && StatisticsPolicy<NoStatistics>);
}  // namespace evmalloc
