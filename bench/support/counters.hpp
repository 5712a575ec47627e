// Benchmark support: the counters the frame and cache benchmarks set, written once.
#pragma once

#include "alloc_counter.hpp"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

namespace evmalloc::bench
{
/// allocs_per_iter: operator new calls per iteration since `before` (a new_calls() reading).
inline void set_allocs(benchmark::State& state, std::uint64_t before)
{
    const auto iterations = static_cast<double>(state.iterations());
    state.counters["allocs_per_iter"] =
        iterations == 0 ? 0.0 : static_cast<double>(new_calls() - before) / iterations;
}

/// allocs_per_iter, and the bytes of code per iteration so the report shows MB/s.
inline void set_call_setup_counters(
    benchmark::State& state, std::uint64_t before, const std::vector<std::uint8_t>& code)
{
    set_allocs(state, before);
    state.SetBytesProcessed(
        static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(code.size()));
}
}  // namespace evmalloc::bench
