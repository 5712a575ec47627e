// Test support: everything a caller can see of a FramePool, to compare before and after a
// call that failed and must have changed nothing.
#pragma once

#include <evmalloc/frame_pool.hpp>

#include <cstddef>
#include <vector>

namespace evmalloc::test
{
struct PoolState
{
    std::size_t active, peak, allocated, retained_memories, bytes;
    std::vector<std::size_t> retained;
    bool operator==(const PoolState&) const = default;
};

inline PoolState state_of(const FramePool<>& pool)
{
    PoolState s{pool.active(), pool.peak_active(), pool.buffers_allocated(), pool.retained_memories(),
        pool.bytes_retained(), {}};
    for (const Tier t : all_tiers)
        s.retained.push_back(pool.retained(t));
    return s;
}
}  // namespace evmalloc::test
