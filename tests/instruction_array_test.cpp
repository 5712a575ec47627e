// InstructionArray: one entry per code byte plus the implicit STOP, views over carved bytes.
#include <evmalloc/instruction_array.hpp>
#include <evmalloc/traits.hpp>

#include "catch.hpp"

#include <array>
#include <cstdint>
#include <vector>

using evmalloc::Allocation;
using evmalloc::InstructionArray;

namespace
{
struct Packed3
{
    std::uint8_t a, b, c;
};
struct alignas(16) Wide
{
    std::uint64_t lo, hi;
};
}  // namespace

TEST_CASE("InstructionArray: calculate_allocation is (n + 1) entries of T", "[instruction_array]")
{
    using Op = evmalloc::DefaultTraits::Op;
    using Metadata = evmalloc::DefaultTraits::Metadata;
    STATIC_REQUIRE(evmalloc::Component<InstructionArray<Op>>);
    STATIC_REQUIRE(evmalloc::Component<InstructionArray<Metadata>>);
    STATIC_REQUIRE(InstructionArray<Op>::calculate_allocation(0) == Allocation{8, 8, false});
    STATIC_REQUIRE(
        InstructionArray<Op>::calculate_allocation(4096) == Allocation{4097 * 8, 8, false});
    STATIC_REQUIRE(InstructionArray<Metadata>::calculate_allocation(131072) ==
                   Allocation{131073 * 8, 8, false});
    STATIC_REQUIRE(InstructionArray<Packed3>::calculate_allocation(10) == Allocation{33, 1, false});
    STATIC_REQUIRE(InstructionArray<Wide>::calculate_allocation(1) == Allocation{32, 16, false});
    STATIC_REQUIRE(InstructionArray<std::uint32_t>::entries(24576) == 24577);
}

TEST_CASE("InstructionArray: view() is a span over the carved bytes", "[instruction_array]")
{
    std::vector<std::uint64_t> storage(11, 0x1234);
    const auto bytes = std::as_writable_bytes(std::span{storage});
    const auto view = InstructionArray<std::uint64_t>::view(bytes, 10);
    CHECK(view.size() == 10);
    CHECK(view.data() == storage.data());
    CHECK(view[9] == 0x1234);  // not initialised by the view
    view[3] = 77;
    CHECK(storage[3] == 77);
    CHECK(storage[10] == 0x1234);
}

// A view longer than its storage aborts in debug builds: tests/death/contracts.cpp.
