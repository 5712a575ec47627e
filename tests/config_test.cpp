#include "catch.hpp"
#include "support/assert_capture.hpp"

#include <evmalloc/config.hpp>

TEST_CASE("a passing EVMALLOC_ASSERT evaluates its condition once and reports nothing", "[config]")
{
    evmalloc::test::AssertCapture capture;
    int evaluated = 0;
    EVMALLOC_ASSERT(++evaluated == 1);
    EVMALLOC_ASSERT_MSG(evaluated == 1, "not reported");
    CHECK(capture.count() == 0);
    CHECK(evaluated == (evmalloc::enable_asserts ? 1 : 0));
}

// A failing EVMALLOC_ASSERT reports and aborts, also under a handler that returns:
// tests/death/contracts.cpp.

TEST_CASE("EVMALLOC_REPORT reports through the installed handler and carries on", "[config]")
{
    if constexpr (!evmalloc::enable_asserts)
        EVMALLOC_SKIP("assertions are compiled out in this build");
    evmalloc::test::AssertCapture capture;
    EVMALLOC_REPORT("first leak");
    EVMALLOC_REPORT("second leak");
    REQUIRE(capture.count() == 2);
    CHECK(capture.messages()[0] == "first leak");
    CHECK(capture.messages()[1] == "second leak");
}

TEST_CASE(
    "set_assert_handler returns the previous handler and nullptr restores the default", "[config]")
{
    auto* const mine = +[](const char*, const char*, int) noexcept {};
    const auto original = evmalloc::set_assert_handler(mine);
    CHECK(evmalloc::set_assert_handler(nullptr) == mine);
    const auto restored_default = evmalloc::set_assert_handler(original);
    CHECK(restored_default != mine);
    CHECK(restored_default != nullptr);
}
