// Benchmark support: counts calls to the global operator new on this thread.
// The benchmark executable replaces operator new/delete (support/alloc_counter.cpp) with
// versions that add one to a thread-local counter and then do what the default ones do
// (malloc / free), so a baseline pays nothing it would not pay anyway.
// It also replaces the C library's malloc, calloc, realloc and aligned_alloc (glibc supports
// replacing them in the executable; ours forward to glibc's own __libc_* entry points) to count
// every allocation that reaches the C allocator, which operator new does not see: a realloc
// (as evmone's memory grows) or a plain malloc.
#pragma once

#include <cstdint>

namespace evmalloc::bench
{
/// Calls to any form of global operator new on this thread since it started.
std::uint64_t new_calls() noexcept;
/// Calls to malloc, calloc, realloc and aligned_alloc on this thread since it started: every
/// heap allocation, whether through operator new (which calls malloc) or directly. A realloc
/// counts once, whether it moved the block or not; free and realloc(p, 0) are not counted.
std::uint64_t malloc_calls() noexcept;
}  // namespace evmalloc::bench
