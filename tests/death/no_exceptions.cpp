// Built only without exceptions (the noexcept preset), once with assertions on and once with
// EVMALLOC_ENABLE_ASSERTS=0: what would throw reports through the assertion handler and aborts.
#include "death.hpp"

#include <evmalloc/monotonic_arena.hpp>
#include <evmalloc/object_pool.hpp>
#include <evmalloc/result.hpp>
#include <evmalloc/traits.hpp>
#include <evmalloc/upstream.hpp>

#include <array>
#include <cstddef>
#include <cstdio>
#include <memory_resource>

#if defined(__cpp_exceptions)
#error "tests/death/no_exceptions.cpp is for builds without exceptions"
#endif

namespace
{
using evmalloc::Errc;
using evmalloc::Result;

// An upstream that has nothing to give: its try_allocate() returns nullptr, the way a resource
// fails without exceptions.
class EmptyResource final : public evmalloc::FallibleResource
{
    void* do_try_allocate(std::size_t, std::size_t) noexcept override { return nullptr; }
    void do_deallocate(void*, std::size_t, std::size_t) override {}
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }
};

void result_value()
{
    const Result<int> r = Errc::stack_underflow;
    std::printf("%d\n", r.value());
}

void result_void_value()
{
    const Result<void> r = Errc::call_depth_exceeded;
    r.value();
}

void monotonic_arena_full()
{
    alignas(64) std::array<std::byte, 64> buffer{};
    evmalloc::MonotonicArena arena{buffer};
    std::pmr::memory_resource& resource = arena;
    std::printf("%p\n", resource.allocate(128, 8));
}

void pool_upstream_nullptr()
{
    EmptyResource upstream;
    evmalloc::ObjectPool<evmalloc::Word> pool{&upstream};
    std::printf("%p\n", static_cast<void*>(pool.acquire()));
}

// A handler that returns does not make value() continue.
void handler_returns()
{
    evmalloc::set_assert_handler([](const char* what, const char*, int) noexcept {
        std::fprintf(stderr, "handler saw: %s\n", what);
    });
    const Result<long> r = Errc::out_of_memory;
    std::printf("%ld\n", r.value());
}

constexpr evmalloc::test::DeathCase cases[] = {
    {"result_value", result_value},
    {"result_void_value", result_void_value},
    {"monotonic_arena_full", monotonic_arena_full},
    {"pool_upstream_nullptr", pool_upstream_nullptr},
    {"handler_returns", handler_returns},
};
}  // namespace

int main(int argc, char** argv)
{
    return evmalloc::test::run_death_case(cases, argc, argv);
}
