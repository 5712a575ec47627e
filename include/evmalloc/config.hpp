// evmalloc: assertions for caller contracts.
//
// EVMALLOC_ASSERT(cond) checks what the *caller* promised (a buffer sized as computed, a frame
// prepared before it is interpreted, a pointer released once). It is on unless NDEBUG, and
// EVMALLOC_ENABLE_ASSERTS=0/1 overrides that. Anything an *input* can cause is an Errc result
// in every build, never an assertion.
//
// A broken contract is not survivable: a failed check calls the assertion handler (the default
// prints to stderr and aborts; set_assert_handler() installs another, to log elsewhere) and,
// if the handler returns, the library calls std::abort(). A handler may log, or end the
// process its own way, but it never makes the library continue. EVMALLOC_ASSERT_MSG(cond, msg)
// reports `msg` instead of the condition's text.
//
// EVMALLOC_REPORT(msg) is the one report that continues when the handler returns: a pool or
// allocator destroyed with memory still handed out reports the leak, then gives its memory
// back as usual.
//
// detail::fatal_error() is always compiled in, whatever EVMALLOC_ENABLE_ASSERTS says: where
// exceptions are off, a failure the library would otherwise throw (Result::value() on an
// error, a std::pmr face out of memory) is reported through the same handler and then aborts.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>

#ifndef EVMALLOC_ENABLE_ASSERTS
#ifdef NDEBUG
#define EVMALLOC_ENABLE_ASSERTS 0
#else
#define EVMALLOC_ENABLE_ASSERTS 1
#endif
#endif

namespace evmalloc
{
/// True where EVMALLOC_ASSERT and the pools' debug checks are compiled in.
inline constexpr bool enable_asserts = EVMALLOC_ENABLE_ASSERTS != 0;

/// Called with the failed condition (or a message) and where it was checked. For a failed
/// check the library aborts when the handler returns.
using AssertHandler = void (*)(const char* what, const char* file, int line) noexcept;

namespace detail
{
inline void default_assert_handler(const char* what, const char* file, int line) noexcept
{
    std::fprintf(stderr, "%s:%d: evmalloc assertion failed: %s\n", file, line, what);
    std::abort();
}

inline std::atomic<AssertHandler>& assert_handler_slot() noexcept
{
    static std::atomic<AssertHandler> handler{&default_assert_handler};
    return handler;
}

/// Reports `what` through the assertion handler and returns (EVMALLOC_REPORT: leak reports).
[[gnu::cold, gnu::noinline]] inline void report(
    const char* what, const char* file, int line) noexcept
{
    assert_handler_slot().load(std::memory_order_acquire)(what, file, line);
}

/// Reports `what` through the assertion handler, then calls std::abort() even if the handler
/// returns. In every build type: for failures that cannot be handed back to the caller.
[[noreturn, gnu::cold, gnu::noinline]] inline void fatal_error(
    const char* what, const char* file, int line) noexcept
{
    report(what, file, line);
    std::abort();
}

/// A failed EVMALLOC_ASSERT: reports, then aborts.
[[noreturn]] inline void assert_failed(const char* what, const char* file, int line) noexcept
{
    fatal_error(what, file, line);
}
}  // namespace detail

/// Installs `handler` (nullptr restores the default) and returns the previous one.
inline AssertHandler set_assert_handler(AssertHandler handler) noexcept
{
    return detail::assert_handler_slot().exchange(
        handler != nullptr ? handler : &detail::default_assert_handler, std::memory_order_acq_rel);
}
}  // namespace evmalloc

#if EVMALLOC_ENABLE_ASSERTS
/// Checks a caller contract; when it does not hold, reports through the assertion handler and
/// aborts.
#define EVMALLOC_ASSERT(cond) \
    ((cond) ? static_cast<void>(0) : ::evmalloc::detail::assert_failed(#cond, __FILE__, __LINE__))
/// As EVMALLOC_ASSERT, reporting `msg` (a string literal) instead of the condition.
#define EVMALLOC_ASSERT_MSG(cond, msg) \
    ((cond) ? static_cast<void>(0) : ::evmalloc::detail::assert_failed(msg, __FILE__, __LINE__))
/// Reports `msg` (a string literal) through the assertion handler and carries on: for leak
/// reports only, never for a broken contract.
#define EVMALLOC_REPORT(msg) ::evmalloc::detail::report(msg, __FILE__, __LINE__)
#else
#define EVMALLOC_ASSERT(cond) static_cast<void>(sizeof(static_cast<bool>(cond)))
#define EVMALLOC_ASSERT_MSG(cond, msg) static_cast<void>(sizeof(static_cast<bool>(cond)))
#define EVMALLOC_REPORT(msg) static_cast<void>(0)
#endif
