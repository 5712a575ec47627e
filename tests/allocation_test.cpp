#include "catch.hpp"

#include <evmalloc/allocation.hpp>

namespace
{
struct Good
{
    static constexpr evmalloc::Allocation calculate_allocation(std::size_t n) noexcept
    {
        return {n * 2, 8, false};
    }
};
struct Throwing
{
    static evmalloc::Allocation calculate_allocation(std::size_t n) { return {n, 8, false}; }
};
struct WrongType
{
    static constexpr std::size_t calculate_allocation(std::size_t n) noexcept { return n; }
};
}  // namespace

TEST_CASE("Component requires a noexcept calculate_allocation returning Allocation", "[allocation]")
{
    STATIC_REQUIRE(evmalloc::Component<Good>);
    STATIC_REQUIRE_FALSE(evmalloc::Component<Throwing>);
    STATIC_REQUIRE_FALSE(evmalloc::Component<WrongType>);
    STATIC_REQUIRE(Good::calculate_allocation(10) == evmalloc::Allocation{20, 8, false});
    STATIC_REQUIRE_FALSE(Good::calculate_allocation(10) == evmalloc::Allocation{20, 8, true});
}

TEST_CASE("align_up rounds to the next multiple", "[allocation]")
{
    STATIC_REQUIRE(evmalloc::align_up(0, 64) == 0);
    STATIC_REQUIRE(evmalloc::align_up(1, 64) == 64);
    STATIC_REQUIRE(evmalloc::align_up(64, 64) == 64);
    STATIC_REQUIRE(evmalloc::align_up(65, 8) == 72);
}
