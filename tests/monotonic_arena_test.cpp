#include "catch.hpp"

#include <evmalloc/monotonic_arena.hpp>
#include <evmalloc/sanitizer.hpp>

#include <array>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <random>
#include <vector>

using evmalloc::MonotonicArena;

namespace
{
bool aligned(const void* p, std::size_t a)
{
    return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}
}  // namespace

TEST_CASE(
    "MonotonicArena bumps with alignment and counts used and remaining", "[monotonic_arena][arena]")
{
    alignas(64) std::array<std::byte, 1024> buffer{};
    MonotonicArena arena{buffer};
    CHECK(arena.capacity() == 1024);
    CHECK(arena.used() == 0);

    void* a = arena.try_allocate(1, 1);
    CHECK(a == buffer.data());
    void* b = arena.try_allocate(8, 8);
    CHECK(b == buffer.data() + 8);
    void* c = arena.try_allocate(32, 64);
    CHECK(c == buffer.data() + 64);
    CHECK(arena.used() == 96);
    CHECK(arena.remaining() == 1024 - 96);
    CHECK(arena.owns(c));
    CHECK_FALSE(arena.owns(buffer.data() + 2048));
}

TEST_CASE(
    "MonotonicArena fails a request that does not fit, losing nothing", "[monotonic_arena][arena]")
{
    alignas(64) std::array<std::byte, 256> buffer{};
    MonotonicArena arena{buffer};
    REQUIRE(arena.try_allocate(200, 8) != nullptr);
    const auto used = arena.used();
    CHECK(arena.try_allocate(57, 8) == nullptr);
    CHECK(arena.try_allocate(SIZE_MAX, 1) == nullptr);
    CHECK(arena.try_allocate(50, 128) == nullptr);  // fits only without the padding
    CHECK(arena.used() == used);
#if defined(__cpp_exceptions)
    CHECK_THROWS_AS(arena.allocate(100, 8), std::bad_alloc);
    CHECK(arena.used() == used);
#endif
    // Exactly what is left still fits.
    CHECK(arena.try_allocate(arena.remaining(), 1) != nullptr);
    CHECK(arena.remaining() == 0);
    CHECK(arena.try_allocate(0, 1) != nullptr);  // zero bytes at the very end
}

TEST_CASE("MonotonicArena reset takes everything back", "[monotonic_arena][arena]")
{
    alignas(64) std::array<std::byte, 512> buffer{};
    MonotonicArena arena{buffer};
    for (int round = 0; round < 3; ++round)
    {
        void* first = arena.try_allocate(100, 16);
        CHECK(first == buffer.data());
        while (arena.try_allocate(64, 8) != nullptr)
        {}
        CHECK(arena.remaining() < 64);
        arena.reset();
        CHECK(arena.used() == 0);
        CHECK(arena.remaining() == 512);
    }
}

TEST_CASE("MonotonicArena honours every alignment on random requests", "[monotonic_arena][arena]")
{
    std::vector<std::byte> storage(1 << 16);
    MonotonicArena arena{storage};
    std::mt19937 rng{12345};
    std::size_t expected_min_used = 0;
    for (int i = 0; i < 2000; ++i)
    {
        const std::size_t align = std::size_t{1} << (rng() % 8);
        const std::size_t bytes = rng() % 100;
        const auto before = arena.used();
        void* p = arena.try_allocate(bytes, align);
        if (p == nullptr)
        {
            CHECK(arena.used() == before);
            break;
        }
        REQUIRE(aligned(p, align));
        REQUIRE(arena.used() >= before + bytes);
        REQUIRE(arena.used() < before + bytes + align);
        expected_min_used += bytes;
    }
    CHECK(arena.used() >= expected_min_used);
}

TEST_CASE("MonotonicArena as a std::pmr resource backs containers", "[monotonic_arena][arena]")
{
    std::vector<std::byte> storage(1 << 14);
    MonotonicArena arena{storage};
    {
        std::pmr::vector<int> v{&arena};
        for (int i = 0; i < 100; ++i)
            v.push_back(i);
        CHECK(v[99] == 99);
        CHECK(arena.owns(v.data()));
    }
    CHECK(arena.used() > 100 * sizeof(int));
    CHECK(arena.is_equal(arena));
    MonotonicArena other{std::span{storage}.first(16)};
    CHECK_FALSE(arena.is_equal(other));
}

#if EVMALLOC_HAS_ASAN
TEST_CASE("MonotonicArena poisons what it has not handed out", "[monotonic_arena][arena][asan]")
{
    alignas(64) std::array<std::byte, 256> buffer{};
    MonotonicArena arena{buffer};
    auto* p = static_cast<std::byte*>(arena.try_allocate(64, 64));
    CHECK_FALSE(__asan_address_is_poisoned(p));
    CHECK_FALSE(__asan_address_is_poisoned(p + 63));
    CHECK(__asan_address_is_poisoned(p + 64));
    arena.reset();
    CHECK(__asan_address_is_poisoned(p));
}
#endif
