// Pools and the arena against the allocators they replace.
//
//   pools/lifo64_<size>B/<impl>    64 acquires, then 64 releases in reverse order
//   pools/random64_<size>B/<impl>  64 acquires, then 64 releases in a fixed shuffled order
//   arena/bump64_<size>B/<impl>    64 bump allocations, then one reset
//
// Sizes 20 (ObjectPool of a 20-byte address) and 32 (ObjectPool<Word>) use the object pools,
// 256/1024/4096 the buffer pools. impl: evmalloc (typed acquire/release), evmalloc.pmr (the same
// pool through a std::pmr::memory_resource*, the virtual path), malloc, new_delete,
// pmr_unsync_pool (std::pmr::unsynchronized_pool_resource), mimalloc (mi_malloc/mi_free).
// Items processed: 64 per iteration. The release order is computed outside the timed loop.
#include "support/mimalloc.hpp"

#include <benchmark/benchmark.h>
#include <evmalloc/buffer_pool.hpp>
#include <evmalloc/monotonic_arena.hpp>
#include <evmalloc/object_pool.hpp>
#include <evmalloc/traits.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory_resource>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace
{
constexpr std::size_t batch = 64;

struct Address
{
    std::array<std::uint8_t, 20> bytes;
};
static_assert(sizeof(Address) == 20);

enum class Order
{
    lifo,
    random,
};

using ReleaseOrder = std::array<std::uint8_t, batch>;

const ReleaseOrder& release_order(Order order)
{
    static const ReleaseOrder lifo = [] {
        ReleaseOrder o{};
        for (std::size_t i = 0; i < batch; ++i)
            o[i] = static_cast<std::uint8_t>(batch - 1 - i);
        return o;
    }();
    static const ReleaseOrder shuffled = [] {
        ReleaseOrder o{};
        std::iota(o.begin(), o.end(), std::uint8_t{0});
        std::shuffle(o.begin(), o.end(), std::mt19937{20240601});
        return o;
    }();
    return order == Order::lifo ? lifo : shuffled;
}

/// The timed loop shared by every impl: `acquire()` 64 times, then `release(p)` in `order`.
template <class P, class Acquire, class Release>
void run_batches(benchmark::State& state, Order order, Acquire&& acquire, Release&& release)
{
    const ReleaseOrder& sequence = release_order(order);
    std::array<P, batch> held{};
    for (auto _ : state)
    {
        for (std::size_t i = 0; i < batch; ++i)
        {
            held[i] = acquire();
            benchmark::DoNotOptimize(held[i]);
        }
        benchmark::ClobberMemory();
        for (const std::uint8_t i : sequence)
            release(held[i]);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(batch));
}

/// A pmr resource seen only through its base pointer: the compiler may not devirtualize.
std::pmr::memory_resource* opaque(std::pmr::memory_resource* mr)
{
    benchmark::DoNotOptimize(mr);
    return mr;
}

template <class Pool>
void bench_evmalloc(benchmark::State& state, Order order)
{
    Pool pool;
    using P = decltype(pool.acquire());
    run_batches<P>(
        state, order, [&] { return pool.acquire(); }, [&](P p) { pool.release(p); });
}

template <class Pool>
void bench_evmalloc_pmr(
    benchmark::State& state, Order order, std::size_t bytes, std::size_t alignment)
{
    Pool pool;
    std::pmr::memory_resource* mr = opaque(&pool);
    run_batches<void*>(
        state, order, [&] { return mr->allocate(bytes, alignment); },
        [&](void* p) { mr->deallocate(p, bytes, alignment); });
}

void bench_unsync_pool(
    benchmark::State& state, Order order, std::size_t bytes, std::size_t alignment)
{
    std::pmr::unsynchronized_pool_resource pool;
    std::pmr::memory_resource* mr = opaque(&pool);
    run_batches<void*>(
        state, order, [&] { return mr->allocate(bytes, alignment); },
        [&](void* p) { mr->deallocate(p, bytes, alignment); });
}

void bench_malloc(benchmark::State& state, Order order, std::size_t bytes)
{
    if (!evmalloc::bench::Mimalloc::get().system_malloc())
    {
        state.SkipWithError("std::malloc is mimalloc's, not the C library's");
        return;
    }
    run_batches<void*>(
        state, order, [&] { return std::malloc(bytes); }, [](void* p) { std::free(p); });
}

template <class T>
void bench_new_delete(benchmark::State& state, Order order)
{
    if (!evmalloc::bench::Mimalloc::get().system_malloc())
    {
        state.SkipWithError("std::malloc is mimalloc's, not the C library's");
        return;
    }
    if constexpr (std::is_array_v<T>)
    {
        using E = std::remove_extent_t<T>;
        run_batches<E*>(
            state, order, [] { return new E[std::extent_v<T>]; }, [](E* p) { delete[] p; });
    }
    else
    {
        run_batches<T*>(
            state, order, [] { return new T; }, [](T* p) { delete p; });
    }
}

void bench_mimalloc(benchmark::State& state, Order order, std::size_t bytes)
{
    const auto& mi = evmalloc::bench::Mimalloc::get();
    if (!mi.available())
    {
        state.SkipWithError(mi.error());
        return;
    }
    const auto mi_malloc = mi.malloc_fn;
    const auto mi_free = mi.free_fn;
    run_batches<void*>(
        state, order, [&] { return mi_malloc(bytes); }, [&](void* p) { mi_free(p); });
}

/// One size: its typed pool, the new-expression type, and the (size, alignment) of pmr requests.
template <class Pool, class NewType>
void register_size(std::size_t bytes, std::size_t alignment)
{
    for (const Order order : {Order::lifo, Order::random})
    {
        const std::string prefix = std::string{"pools/"} +
                                   (order == Order::lifo ? "lifo64_" : "random64_") +
                                   std::to_string(bytes) + "B/";
        benchmark::RegisterBenchmark((prefix + "evmalloc").c_str(),
            [=](benchmark::State& s) { bench_evmalloc<Pool>(s, order); });
        benchmark::RegisterBenchmark((prefix + "evmalloc.pmr").c_str(),
            [=](benchmark::State& s) { bench_evmalloc_pmr<Pool>(s, order, bytes, alignment); });
        benchmark::RegisterBenchmark((prefix + "malloc").c_str(),
            [=](benchmark::State& s) { bench_malloc(s, order, bytes); });
        benchmark::RegisterBenchmark((prefix + "new_delete").c_str(),
            [=](benchmark::State& s) { bench_new_delete<NewType>(s, order); });
        benchmark::RegisterBenchmark((prefix + "pmr_unsync_pool").c_str(),
            [=](benchmark::State& s) { bench_unsync_pool(s, order, bytes, alignment); });
        benchmark::RegisterBenchmark((prefix + "mimalloc").c_str(),
            [=](benchmark::State& s) { bench_mimalloc(s, order, bytes); });
    }
}

/// Arena: 64 bump allocations of `bytes` (alignment 8) from one buffer, then give all back.
void bench_arena_evmalloc(benchmark::State& state, std::size_t bytes)
{
    std::vector<std::byte> storage(batch * bytes + 64);
    evmalloc::MonotonicArena arena{storage};
    for (auto _ : state)
    {
        for (std::size_t i = 0; i < batch; ++i)
        {
            void* p = arena.try_allocate(bytes, 8);
            benchmark::DoNotOptimize(p);
        }
        benchmark::ClobberMemory();
        arena.reset();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(batch));
}

void bench_arena_monotonic(benchmark::State& state, std::size_t bytes)
{
    std::vector<std::byte> storage(batch * bytes + 64);
    // A null upstream: every request must be served from the buffer, as the arena's are.
    std::pmr::monotonic_buffer_resource arena{
        storage.data(), storage.size(), std::pmr::null_memory_resource()};
    for (auto _ : state)
    {
        for (std::size_t i = 0; i < batch; ++i)
        {
            void* p = arena.allocate(bytes, 8);
            benchmark::DoNotOptimize(p);
        }
        benchmark::ClobberMemory();
        arena.release();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(batch));
}

[[maybe_unused]] const bool registered = [] {
    register_size<evmalloc::ObjectPool<Address>, Address>(sizeof(Address), alignof(Address));
    register_size<evmalloc::ObjectPool<evmalloc::Word>, evmalloc::Word>(
        sizeof(evmalloc::Word), alignof(evmalloc::Word));
    // Buffers are requested with the fundamental alignment, as malloc gives.
    constexpr std::size_t buffer_request_alignment = alignof(std::max_align_t);
    register_size<evmalloc::BufferPool<256>, std::byte[256]>(256, buffer_request_alignment);
    register_size<evmalloc::BufferPool<1024>, std::byte[1024]>(1024, buffer_request_alignment);
    register_size<evmalloc::BufferPool<4096>, std::byte[4096]>(4096, buffer_request_alignment);

    for (const std::size_t bytes : {std::size_t{32}, std::size_t{256}})
    {
        const std::string prefix = "arena/bump64_" + std::to_string(bytes) + "B/";
        benchmark::RegisterBenchmark((prefix + "evmalloc").c_str(),
            [=](benchmark::State& s) { bench_arena_evmalloc(s, bytes); });
        benchmark::RegisterBenchmark((prefix + "pmr_monotonic").c_str(),
            [=](benchmark::State& s) { bench_arena_monotonic(s, bytes); });
    }
    return true;
}();
}  // namespace
