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
    std::size_t active, peak, allocated, retained_memories, retained_stacks, memory_bytes, bytes;
    std::vector<std::size_t> retained;
    bool operator==(const PoolState&) const = default;
};

template <class Traits>
PoolState state_of(const FramePool<Traits>& pool)
{
    PoolState s{pool.active(), pool.peak_active(), pool.buffers_allocated(),
        pool.retained_memories(), pool.retained_stacks(), pool.memory_bytes_retained(),
        pool.bytes_retained(), {}};
    for (const Tier t : all_tiers)
        s.retained.push_back(pool.retained(t));
    return s;
}
}  // namespace evmalloc::test
