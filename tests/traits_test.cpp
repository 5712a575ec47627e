#include "catch.hpp"

#include <evmalloc/traits.hpp>

#include <type_traits>

TEST_CASE("Word is a 32-byte, 32-byte-aligned trivially copyable value", "[traits]")
{
    STATIC_REQUIRE(sizeof(evmalloc::Word) == 32);
    STATIC_REQUIRE(alignof(evmalloc::Word) == 32);
    STATIC_REQUIRE(std::is_trivially_copyable_v<evmalloc::Word>);
    STATIC_REQUIRE(evmalloc::Word::from(7) == evmalloc::Word{{7, 0, 0, 0}});
    STATIC_REQUIRE_FALSE(evmalloc::Word::from(7) == evmalloc::Word{});
    STATIC_REQUIRE(std::is_same_v<evmalloc::DefaultTraits::Word, evmalloc::Word>);
    STATIC_REQUIRE(std::is_same_v<evmalloc::DefaultTraits::Op, const void*>);
    STATIC_REQUIRE(std::is_same_v<evmalloc::DefaultTraits::Metadata, std::uint64_t>);
}
