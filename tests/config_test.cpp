#include "catch.hpp"
#include "support/assert_capture.hpp"

#include <evmalloc/config.hpp>

TEST_CASE("EVMALLOC_ASSERT reports a failed check through the installed handler", "[config]")
{
    if constexpr (!evmalloc::enable_asserts)
        EVMALLOC_SKIP("assertions are compiled out in this build");
    evmalloc::test::AssertCapture capture;
    int evaluated = 0;
    EVMALLOC_ASSERT(++evaluated == 1);
    CHECK(capture.count() == 0);
    EVMALLOC_ASSERT(evaluated == 2);
    REQUIRE(capture.count() == 1);
    CHECK(capture.messages()[0] == "evaluated == 2");
}

TEST_CASE("set_assert_handler returns the previous handler and nullptr restores the default", "[config]")
{
    auto* const mine = +[](const char*, const char*, int) noexcept {};
    const auto original = evmalloc::set_assert_handler(mine);
    CHECK(evmalloc::set_assert_handler(nullptr) == mine);
    const auto restored_default = evmalloc::set_assert_handler(original);
    CHECK(restored_default != mine);
    CHECK(restored_default != nullptr);
}
