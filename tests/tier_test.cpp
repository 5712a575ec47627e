#include "catch.hpp"

#include <evmalloc/tier.hpp>

using evmalloc::Errc;
using evmalloc::Tier;

TEST_CASE("code_capacity doubles from 4 KiB to 128 KiB", "[tier]")
{
    STATIC_REQUIRE(evmalloc::code_capacity(Tier::kb4) == 4096);
    STATIC_REQUIRE(evmalloc::code_capacity(Tier::kb128) == evmalloc::max_code_size);
    for (std::size_t i = 1; i < evmalloc::tier_count; ++i)
        CHECK(evmalloc::code_capacity(evmalloc::all_tiers[i]) ==
              2 * evmalloc::code_capacity(evmalloc::all_tiers[i - 1]));
    CHECK(evmalloc::tier_name(Tier::kb16) == "16KiB");
}

TEST_CASE("select_tier picks the smallest tier that holds the code", "[tier]")
{
    STATIC_REQUIRE(*evmalloc::select_tier(0) == Tier::kb4);
    CHECK(*evmalloc::select_tier(1) == Tier::kb4);
    CHECK(*evmalloc::select_tier(24576) == Tier::kb32);  // EIP-170
    CHECK(*evmalloc::select_tier(49152) == Tier::kb64);  // EIP-3860
    for (const Tier t : evmalloc::all_tiers)
    {
        const auto cap = evmalloc::code_capacity(t);
        CHECK(*evmalloc::select_tier(cap) == t);
        if (t != Tier::kb4)
        {
            CHECK(*evmalloc::select_tier(cap / 2 + 1) == t);
            CHECK(*evmalloc::select_tier(cap / 2) != t);
        }
    }
    // Exhaustive against the definition.
    for (std::size_t n = 0; n <= evmalloc::max_code_size; ++n)
    {
        const auto t = evmalloc::select_tier(n);
        REQUIRE(t.has_value());
        REQUIRE(evmalloc::code_capacity(*t) >= n);
        if (*t != Tier::kb4)
            REQUIRE(evmalloc::code_capacity(static_cast<Tier>(evmalloc::tier_index(*t) - 1)) < n);
    }
}

TEST_CASE("select_tier rejects code above max_code_size", "[tier]")
{
    STATIC_REQUIRE(
        evmalloc::select_tier(evmalloc::max_code_size + 1).error() == Errc::code_too_large);
    CHECK(evmalloc::select_tier(SIZE_MAX).error() == Errc::code_too_large);
}
