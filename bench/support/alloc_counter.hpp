// Benchmark support: counts calls to the global operator new on this thread.
// The benchmark executable replaces operator new/delete (support/alloc_counter.cpp) with
// versions that add one to a thread-local counter and then do what the default ones do
// (malloc / free), so a baseline pays nothing it would not pay anyway.
#pragma once

#include <cstdint>

namespace evmalloc::bench
{
/// Calls to any form of global operator new on this thread since it started.
std::uint64_t new_calls() noexcept;
}  // namespace evmalloc::bench
