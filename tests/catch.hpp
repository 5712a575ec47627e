// Catch2 v2 (Debian's 2.13) or v3, whichever is installed.
#pragma once
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#else
// Without exceptions (the noexcept preset) Catch2 v2 runs with its exception support off and
// calls our Catch::throw_exception (tests/support/catch_main.cpp) where it would throw.
#if !defined(__cpp_exceptions)
#define CATCH_CONFIG_DISABLE_EXCEPTIONS
#define CATCH_CONFIG_DISABLE_EXCEPTIONS_CUSTOM_HANDLER
#endif
#include <catch2/catch.hpp>
#endif

// Skips the rest of a test case with a message (v3 reports it as skipped, v2 as a warning).
#if __has_include(<catch2/catch_test_macros.hpp>)
#define EVMALLOC_SKIP(msg) SKIP(msg)
#else
#define EVMALLOC_SKIP(msg)        \
    do                            \
    {                             \
        WARN("SKIPPED: " << msg); \
        return;                   \
    } while (false)
#endif
