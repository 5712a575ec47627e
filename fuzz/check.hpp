// Fuzz support: a model check that stops the run. FUZZ_CHECK(cond) prints the condition and
// where it failed, then aborts, which libFuzzer reports as a crash with the input saved. And
// the failing upstream's two styles (tests/support/recording_resource.hpp): each input picks
// whether the library is handed the recording upstream as a FallibleResource (a failure is a
// nullptr from try_allocate()) or as a plain std::pmr::memory_resource (std::bad_alloc from
// allocate()), so both run under ASan + UBSan.
#pragma once

#include <support/recording_resource.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

/// On the model and reference code: coverage feedback is for the library, and the checks'
/// loops would otherwise cost more than the code under test.
#define FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))

#define FUZZ_CHECK(cond) \
    ((cond) ? static_cast<void>(0) : ::evmalloc::fuzz::check_failed(#cond, __FILE__, __LINE__))

namespace evmalloc::fuzz
{
/// True when each of the n bytes at p is `tag` (one memcmp: every byte equals the next).
inline bool filled(const void* p, std::size_t n, std::uint8_t tag) noexcept
{
    const auto* b = static_cast<const std::uint8_t*>(p);
    return n == 0 || (b[0] == tag && __builtin_memcmp(b, b + 1, n - 1) == 0);
}

/// The failure style an input picks (one bool from `in`, a FuzzedDataProvider).
template <class Input>
FUZZ_NO_COVERAGE evmalloc::test::FailureStyle pick_failure_style(Input& in)
{
    return in.ConsumeBool() ? evmalloc::test::FailureStyle::throws
                            : evmalloc::test::FailureStyle::returns_nullptr;
}

/// Calls f() with `upstream` failing (set_failing(true)), then heals it; true when f() threw
/// std::bad_alloc (what a std::pmr face of the library throws whichever way its upstream
/// fails). The caller checks that nothing changed.
template <class Upstream, class F>
FUZZ_NO_COVERAGE bool throws_bad_alloc_while_failing(Upstream& upstream, F&& f)
{
    upstream.set_failing(true);
    bool threw = false;
    try
    {
        static_cast<void>(f());
    }
    catch (const std::bad_alloc&)
    {
        threw = true;
    }
    upstream.set_failing(false);
    return threw;
}

[[noreturn]] inline void check_failed(const char* what, const char* file, int line) noexcept
{
    std::fprintf(stderr, "%s:%d: model check failed: %s\n", file, line, what);
    std::abort();
}
}  // namespace evmalloc::fuzz
