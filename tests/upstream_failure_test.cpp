// An upstream that fails, in both ways it can (upstream.hpp): a FallibleResource whose
// try_allocate() returns nullptr, and a plain std::pmr::memory_resource whose allocate() throws.
// Neither goes through a nullptr from std::pmr::memory_resource::allocate() (libstdc++ declares
// it returns_nonnull), so these cases run under UBSan too (the asan preset), and the nullptr
// ones without exceptions (the noexcept preset).
//
// The std::pmr faces of the library fail with std::bad_alloc, count nothing in statistics()
// and leave nothing behind; their try_allocate() returns nullptr the same way. Found first by
// tests/standalone/fault_injection_test.cpp: EvmAllocator's upstream route and the pools'
// forwarding once handed an upstream's nullptr to the caller (and, when counting, recorded a
// request that was never served).
#include <evmalloc/buffer_pool.hpp>
#include <evmalloc/evm_allocator.hpp>
#include <evmalloc/monotonic_arena.hpp>
#include <evmalloc/object_pool.hpp>
#include <evmalloc/sanitizer.hpp>
#include <evmalloc/synchronized.hpp>
#include <evmalloc/transaction_arena.hpp>
#include <evmalloc/upstream.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <type_traits>

#include "catch.hpp"
#include "support/recording_resource.hpp"

using evmalloc::AllocatorConfig;
using evmalloc::EvmAllocator;
using evmalloc::FallibleResource;
using evmalloc::Upstream;
using evmalloc::test::FailureStyle;
using evmalloc::test::RecordingResource;

namespace
{
struct Small
{
    long x;
};

// try_allocate(bytes, alignment) on `r` with `rec` failing: nullptr, and `rec` was asked.
bool fails_with_nullptr(
    FallibleResource& r, RecordingResource& rec, std::size_t bytes, std::size_t alignment)
{
    const std::size_t failures = rec.failures();
    rec.set_failing(true);
    void* const p = r.try_allocate(bytes, alignment);
    rec.set_failing(false);
    if (p != nullptr)
        static_cast<std::pmr::memory_resource&>(r).deallocate(p, bytes, alignment);
    return p == nullptr && rec.failures() > failures;
}

#if defined(__cpp_exceptions)
// allocate(bytes, alignment) on `face` with `rec` failing: std::bad_alloc, never nullptr.
bool throws_bad_alloc(std::pmr::memory_resource& face, RecordingResource& rec, std::size_t bytes,
    std::size_t alignment)
{
    rec.set_failing(true);
    bool threw = false;
    void* p = nullptr;
    try
    {
        p = face.allocate(bytes, alignment);
    }
    catch (const std::bad_alloc&)
    {
        threw = true;
    }
    rec.set_failing(false);
    if (p != nullptr)
        face.deallocate(p, bytes, alignment);
    return threw;
}
#endif
}  // namespace

TEST_CASE("Upstream: the kind of resource decides, at construction, how a failure arrives",
    "[upstream][upstream_failure]")
{
    STATIC_REQUIRE(std::is_trivially_copyable_v<Upstream>);
    STATIC_REQUIRE(std::is_nothrow_convertible_v<std::pmr::memory_resource*, Upstream>);
    STATIC_REQUIRE(std::is_nothrow_convertible_v<RecordingResource*, Upstream>);
    RecordingResource rec;
    const Upstream fallible = &rec;
    const Upstream plain = static_cast<std::pmr::memory_resource*>(&rec);
    CHECK(fallible.fallible());
    CHECK_FALSE(plain.fallible());
    CHECK(fallible.resource() == &rec);
    CHECK(plain.resource() == &rec);
    CHECK(fallible == plain);
    CHECK_FALSE(Upstream{std::pmr::new_delete_resource()}.fallible());
    CHECK(Upstream{evmalloc::nothrow_new_delete_resource()}.fallible());
    CHECK(Upstream{}.resource() == nullptr);

    for (const FailureStyle style : evmalloc::test::failure_styles)
    {
        CAPTURE(evmalloc::test::name_of(style));
        const Upstream up = rec.upstream(style);
        void* p = up.try_allocate(100, 16);
        REQUIRE(p != nullptr);
        CHECK(rec.is_live(p));
        up.deallocate(p, 100, 16);
        rec.set_failing(true);
        CHECK(up.try_allocate(100, 16) == nullptr);
        rec.set_failing(false);
    }
    CHECK(rec.failures() == std::size(evmalloc::test::failure_styles));
    CHECK(rec.check());
}

TEST_CASE("nothrow_new_delete_resource: the global heap, failing with nullptr",
    "[upstream][upstream_failure]")
{
    FallibleResource& r = *evmalloc::nothrow_new_delete_resource();
    CHECK(&r == evmalloc::nothrow_new_delete_resource());
    CHECK(r.is_equal(r));
    CHECK_FALSE(r.is_equal(*std::pmr::new_delete_resource()));
    for (const std::size_t alignment : {std::size_t{8}, std::size_t{64}, std::size_t{4096}})
    {
        void* p = r.try_allocate(1000, alignment);
        REQUIRE(p != nullptr);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % alignment == 0);
        static_cast<unsigned char*>(p)[999] = 1;
        r.deallocate(p, 1000, alignment);
    }
    // A request no heap serves. (The sanitizers' allocators end the process on one by design.)
#if !EVMALLOC_HAS_ASAN && !defined(__SANITIZE_THREAD__)
    CHECK(r.try_allocate(SIZE_MAX / 2, 8) == nullptr);
#endif
}

TEST_CASE("Every evmalloc resource is a FallibleResource: try_allocate() is nullptr when its "
          "upstream fails, nothing changed",
    "[evm_allocator][object_pool][buffer_pool][transaction_arena][synchronized][upstream_"
    "failure]")
{
    STATIC_REQUIRE(std::is_base_of_v<FallibleResource, EvmAllocator>);
    STATIC_REQUIRE(std::is_base_of_v<FallibleResource, evmalloc::ObjectPool<Small>>);
    STATIC_REQUIRE(std::is_base_of_v<FallibleResource, evmalloc::BufferPool<256>>);
    STATIC_REQUIRE(std::is_base_of_v<FallibleResource, evmalloc::TransactionArena>);
    STATIC_REQUIRE(std::is_base_of_v<FallibleResource, evmalloc::MonotonicArena>);
    STATIC_REQUIRE(
        std::is_base_of_v<FallibleResource, evmalloc::Synchronized<evmalloc::BufferPool<256>>>);

    for (const FailureStyle style : evmalloc::test::failure_styles)
    {
        CAPTURE(evmalloc::test::name_of(style));
        RecordingResource rec;
        // EvmAllocator, under every configuration.
        for (const AllocatorConfig config :
            {AllocatorConfig::optimized(), AllocatorConfig::minimal()})
        {
            for (const bool counting : {true, false})
            {
                CAPTURE(config.enable_pool_allocation, counting);
                AllocatorConfig c = config;
                c.enable_statistics = counting;
                c.pool_preallocation_size = 0;  // the pools must grow
                EvmAllocator a{c, rec.upstream(style)};
                const auto before = a.statistics();
                const std::size_t live = rec.live_count();
                CHECK(fails_with_nullptr(a, rec, 10000, 8));  // routed upstream
                CHECK(fails_with_nullptr(a, rec, 64, 128));   // over-aligned: upstream
                CHECK(fails_with_nullptr(a, rec, 32, 32));    // a pool that must grow
                CHECK(fails_with_nullptr(a, rec, 1000, 8));
                const auto after = a.statistics();
                CHECK(after.total_allocations == before.total_allocations);
                CHECK(after.current_bytes == before.current_bytes);
                CHECK(after.reserved_bytes == before.reserved_bytes);
                CHECK(after.pools[1].capacity == before.pools[1].capacity);
                CHECK(rec.live_count() == live);
                // Healed: the same request succeeds and is counted.
                void* p = a.try_allocate(10000, 8);
                REQUIRE(p != nullptr);
                CHECK(rec.is_live(p));
                CHECK(a.statistics().total_allocations ==
                      before.total_allocations + (counting ? 1U : 0U));
                static_cast<std::pmr::memory_resource&>(a).deallocate(p, 10000, 8);
                CHECK(a.statistics().current_bytes == 0);
            }
        }
        // ObjectPool, BufferPool, Synchronized.
        {
            evmalloc::ObjectPool<Small> objects{rec.upstream(style)};
            evmalloc::BufferPool<256> buffers{rec.upstream(style)};
            evmalloc::Synchronized<evmalloc::BufferPool<1024>> shared{rec.upstream(style)};
            CHECK(fails_with_nullptr(objects, rec, sizeof(Small), alignof(Small)));  // must grow
            CHECK(fails_with_nullptr(objects, rec, 64, 8));  // forwarded upstream
            CHECK(fails_with_nullptr(buffers, rec, 256, 64));
            CHECK(fails_with_nullptr(buffers, rec, 1000, 16));
            CHECK(fails_with_nullptr(shared, rec, 1024, 64));
            CHECK(objects.capacity() == 0);
            CHECK(buffers.capacity() == 0);
            CHECK(shared.with_lock([](const auto& pool) { return pool.capacity(); }) == 0);
            CHECK(rec.live_count() == 0);
            // Healed.
            void* p = objects.try_allocate(sizeof(Small), alignof(Small));
            REQUIRE(p != nullptr);
            CHECK(objects.in_use() == 1);
            static_cast<std::pmr::memory_resource&>(objects).deallocate(
                p, sizeof(Small), alignof(Small));
        }
        // TransactionArena.
        {
            evmalloc::TransactionArena arena{0, rec.upstream(style)};
            CHECK(fails_with_nullptr(arena, rec, 100, 8));
            CHECK(arena.chunk_count() == 0);
            CHECK(arena.used() == 0);
            void* p = arena.try_allocate(100, 8);
            REQUIRE(p != nullptr);
            CHECK(arena.chunk_count() == 1);
            CHECK(arena.try_allocate(SIZE_MAX - 16, 8) == nullptr);  // too large: never asked
            CHECK(arena.chunk_count() == 1);
        }
        CHECK(rec.check());
    }
}

TEST_CASE("MonotonicArena: try_allocate() through the FallibleResource face is nullptr when full",
    "[monotonic_arena][upstream_failure]")
{
    alignas(64) std::array<std::byte, 128> buffer{};
    evmalloc::MonotonicArena arena{buffer};
    FallibleResource& face = arena;
    CHECK(face.try_allocate(100, 8) == buffer.data());
    CHECK(face.try_allocate(100, 8) == nullptr);
    CHECK(arena.used() == 100);
}

#if defined(__cpp_exceptions)
TEST_CASE("EvmAllocator: a failing upstream fails a request routed upstream with bad_alloc",
    "[evm_allocator][upstream_failure]")
{
    for (const FailureStyle style : evmalloc::test::failure_styles)
    {
        CAPTURE(evmalloc::test::name_of(style));
        for (const AllocatorConfig config :
            {AllocatorConfig::optimized(), AllocatorConfig::minimal()})
        {
            for (const bool counting : {true, false})
            {
                RecordingResource rec;
                AllocatorConfig c = config;
                c.enable_statistics = counting;
                EvmAllocator a{c, rec.upstream(style)};
                const auto before = a.statistics();
                const std::size_t live = rec.live_count();

                // 10000 bytes go upstream under every configuration; 64 bytes at alignment 128
                // too.
                CHECK(throws_bad_alloc(a, rec, 10000, 8));
                CHECK(throws_bad_alloc(a, rec, 64, 128));
                const auto after = a.statistics();
                CHECK(after.total_allocations == before.total_allocations);
                CHECK(after.current_bytes == before.current_bytes);
                CHECK(after.reserved_bytes == before.reserved_bytes);
                CHECK(rec.live_count() == live);

                // Healed: the same allocator serves the request, and takes it back.
                void* p = static_cast<std::pmr::memory_resource&>(a).allocate(10000, 8);
                REQUIRE(p != nullptr);
                CHECK(rec.is_live(p));
                static_cast<std::pmr::memory_resource&>(a).deallocate(p, 10000, 8);
                CHECK(a.statistics().current_bytes == 0);
            }
        }
    }
}

TEST_CASE("ObjectPool and BufferPool: a failing upstream fails a forwarded request with bad_alloc",
    "[object_pool][buffer_pool][upstream_failure]")
{
    for (const FailureStyle style : evmalloc::test::failure_styles)
    {
        CAPTURE(evmalloc::test::name_of(style));
        RecordingResource rec;
        {
            evmalloc::ObjectPool<Small> objects{rec.upstream(style)};
            evmalloc::BufferPool<256> buffers{rec.upstream(style)};
            // Too large, or too aligned, for a slot: forwarded upstream.
            CHECK(throws_bad_alloc(objects, rec, 64, 8));
            CHECK(throws_bad_alloc(objects, rec, 8, 64));
            CHECK(throws_bad_alloc(buffers, rec, 1000, 16));
            // A slot request whose pool must grow: bad_alloc as well.
            CHECK(throws_bad_alloc(objects, rec, sizeof(Small), alignof(Small)));
            CHECK(throws_bad_alloc(buffers, rec, 256, 64));
            CHECK(objects.capacity() == 0);
            CHECK(buffers.capacity() == 0);
            CHECK(rec.live_count() == 0);
        }
        CHECK(rec.check());
    }
}
#endif
