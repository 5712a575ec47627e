// Workload 4: EVM memory growth. evmalloc::Memory against an evmone-style realloc-doubling
// memory (support/evmone_memory.hpp) and std::vector<std::uint8_t>, each doing the same
// expansions and the same 32-byte stores, gas summed.
//
//   memory/mainnet_mix/<impl>   a seeded sequence of calls, each growing one memory from empty
//                               to a size drawn like mainnet (p50 128 B, p99 4 KiB, p99.9
//                               16 KiB, rare larger up to 579 KiB) by 32-byte MSTOREs or a few
//                               larger copies, with reads of the free memory pointer between;
//                               one memory reused across calls (clear()), as the frame pool does
//   memory/mstore_1MiB/<impl>   32-byte MSTOREs from 0 to 1 MiB into a fresh memory each time
//   (evmalloc.metered: the same through expand(offset, length, gas_left), gas_left charged)
//   memory/repeated_1MiB_call/<impl>
//                               the same memory-heavy call repeated: each iteration is one call
//                               that grows its memory to 1 MiB by 32-byte MSTOREs, then ends.
//                               evmalloc: a StackFrame<> from a FramePool<> with the default
//                               config (init(0, pool), then frame.memory()), released at the end
//                               of the call; evmone_memory: created and destroyed per call, as
//                               evmone does. Counter allocs_per_call: calls into the C allocator
//                               (malloc/realloc, operator new included) per call in steady state
//                               (one call warms the pool first). Whether evmalloc allocates here
//                               depends on how much Memory capacity the pool keeps at release.
#include <evmalloc/memory.hpp>
#include <evmalloc/stack_frame.hpp>

#include "support/alloc_counter.hpp"
#include "support/evmone_memory.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <random>
#include <string>
#include <vector>

namespace
{
// One memory access of the interpreter: make [offset, offset + length) addressable, then store
// min(length, 32) bytes at offset. length == 0 ends a call.
struct Access
{
    std::uint64_t offset;
    std::uint64_t length;
};

struct Mix
{
    std::vector<Access> accesses;
    std::size_t calls = 0;
    std::uint64_t bytes = 0;  // sum of every call's final size
};

// The size one call's memory reaches: p50 128 B, p99 4 KiB, p99.9 16 KiB, max 579 KiB.
std::uint64_t draw_call_size(std::mt19937_64& rng)
{
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const auto log_uniform = [&](double lo, double hi) {
        return static_cast<std::uint64_t>(
            std::exp(std::log(lo) + u(rng) * (std::log(hi) - std::log(lo))));
    };
    const double p = u(rng);
    if (p < 0.10)
        return 0;  // no memory at all (plain transfers, view calls on storage)
    if (p < 0.55)
        return 96 + 32 * static_cast<std::uint64_t>(u(rng) * 2);  // Solidity's 0x60..0x80 start
    if (p < 0.99)
        return log_uniform(128, 4096);
    if (p < 0.999)
        return log_uniform(4096, 16384);
    return log_uniform(16384, 579 * 1024);
}

Mix make_mainnet_mix(std::size_t calls)
{
    std::mt19937_64 rng{0x3e3'0a11'0c};
    std::uniform_int_distribution<int> percent(0, 99);
    Mix mix;
    mix.calls = calls;
    for (std::size_t c = 0; c < calls; ++c)
    {
        const std::uint64_t target = draw_call_size(rng);
        mix.bytes += (target + 31) / 32 * 32;
        if (target != 0)
        {
            mix.accesses.push_back({0x40, 32});     // the free memory pointer
            const bool copies = percent(rng) < 30;  // CALLDATACOPY/RETURNDATACOPY-like growth
            std::uint64_t size = 96;
            while (size < target)
            {
                std::uint64_t step = 32;
                if (copies)
                    step = std::max<std::uint64_t>(32, (target - size) / 2 + 1);
                mix.accesses.push_back({size, std::min(step, target - size)});
                size += std::min(step, target - size);
                mix.accesses.push_back({0x40, 32});  // read it back, already addressable
            }
        }
        mix.accesses.push_back({0, 0});  // end of call
    }
    return mix;
}

const Mix& mainnet_mix()
{
    static const Mix mix = make_mainnet_mix(4096);
    return mix;
}

constexpr std::uint8_t word_bytes[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
    18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

// The three implementations behind one face: expand() returns the gas (negative: refused).
struct EvmallocImpl
{
    evmalloc::Memory m{std::pmr::new_delete_resource()};
    std::int64_t expand(std::uint64_t offset, std::uint64_t length) noexcept
    {
        // Not `const auto r`: GCC 12 keeps a const Result in a stack slot and copies it with
        // one 16-byte load right after two narrower stores (a store-forwarding stall that
        // doubles the cost of an expansion); a non-const local stays in registers.
        auto r = m.expand(offset, length);
        return r ? static_cast<std::int64_t>(*r) : -1;
    }
    std::uint8_t* data() noexcept { return m.data(); }
    void clear() noexcept { m.clear(); }
};

// The metered expand, as an interpreter that charges memory gas against the gas left: the
// budget (30M, a block's worth) goes down by every expansion's gas.
struct EvmallocMeteredImpl
{
    evmalloc::Memory m{std::pmr::new_delete_resource()};
    std::int64_t gas_left = 30'000'000;
    std::int64_t expand(std::uint64_t offset, std::uint64_t length) noexcept
    {
        auto r = m.expand(offset, length, gas_left);  // not const: see EvmallocImpl
        if (!r)
            return -1;
        gas_left -= static_cast<std::int64_t>(*r);
        return static_cast<std::int64_t>(*r);
    }
    std::uint8_t* data() noexcept { return m.data(); }
    void clear() noexcept
    {
        m.clear();
        gas_left = 30'000'000;
    }
};

struct EvmoneImpl
{
    evmalloc::bench::EvmoneMemory m;
    std::int64_t expand(std::uint64_t offset, std::uint64_t length) noexcept
    {
        return m.expand(offset, length);
    }
    std::uint8_t* data() noexcept { return m.data(); }
    void clear() noexcept { m.clear(); }
};

struct VectorImpl
{
    std::vector<std::uint8_t> v;
    std::int64_t expand(std::uint64_t offset, std::uint64_t length)
    {
        if (length == 0)
            return 0;
        const std::uint64_t end = offset + length;
        if (end < offset || end > evmalloc::Memory::default_limit)
            return -1;
        if (end <= v.size())
            return 0;
        return grow(end);
    }
    [[gnu::noinline]] std::int64_t grow(std::uint64_t end)
    {
        const std::uint64_t new_words = (end + 31) / 32;
        const std::uint64_t old_words = v.size() / 32;
        const auto cost = [](std::uint64_t w) { return 3 * w + w * w / 512; };
        v.resize(static_cast<std::size_t>(new_words * 32));  // zero-fills the new elements
        return static_cast<std::int64_t>(cost(new_words) - cost(old_words));
    }
    std::uint8_t* data() noexcept { return v.data(); }
    void clear() noexcept { v.clear(); }
};

template <class Impl>
inline std::int64_t access(Impl& impl, const Access& a)
{
    const std::int64_t gas = impl.expand(a.offset, a.length);
    std::memcpy(impl.data() + a.offset, word_bytes,
        static_cast<std::size_t>(std::min<std::uint64_t>(a.length, 32)));
    return gas;
}

template <class Impl>
void mainnet_mix_bench(benchmark::State& state)
{
    const Mix& mix = mainnet_mix();
    Impl impl;
    for (auto _ : state)
    {
        std::int64_t gas = 0;
        for (const Access& a : mix.accesses)
        {
            if (a.length == 0)
            {
                impl.clear();
                continue;
            }
            gas += access(impl, a);
        }
        benchmark::DoNotOptimize(gas);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(mix.calls));
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(mix.bytes));
    state.counters["accesses_per_iter"] = static_cast<double>(mix.accesses.size());
}

template <class Impl>
void mstore_1mib_bench(benchmark::State& state)
{
    constexpr std::uint64_t total = 1024 * 1024;
    for (auto _ : state)
    {
        Impl impl;
        std::int64_t gas = 0;
        for (std::uint64_t off = 0; off < total; off += 32)
            gas += access(impl, Access{off, 32});
        benchmark::DoNotOptimize(gas);
        benchmark::DoNotOptimize(impl.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(total / 32));
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(total));
}

// One call of repeated_1MiB_call on a memory: MSTOREs from 0 to 1 MiB. \returns the gas.
template <class Impl>
inline std::int64_t mstore_1mib_call(Impl& impl)
{
    constexpr std::uint64_t total = 1024 * 1024;
    std::int64_t gas = 0;
    for (std::uint64_t off = 0; off < total; off += 32)
        gas += access(impl, Access{off, 32});
    return gas;
}

// evmalloc's face over a frame's Memory (EvmallocImpl owns its Memory; this one borrows).
struct FrameMemoryImpl
{
    evmalloc::Memory& m;
    std::int64_t expand(std::uint64_t offset, std::uint64_t length) noexcept
    {
        auto r = m.expand(offset, length);  // not const: see EvmallocImpl
        return r ? static_cast<std::int64_t>(*r) : -1;
    }
    std::uint8_t* data() noexcept { return m.data(); }
};

void set_allocs_per_call(benchmark::State& state, std::uint64_t before)
{
    constexpr std::uint64_t total = 1024 * 1024;
    const auto iterations = static_cast<double>(state.iterations());
    state.counters["allocs_per_call"] =
        iterations == 0
            ? 0.0
            : static_cast<double>(evmalloc::bench::malloc_calls() - before) / iterations;
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(total / 32));
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(total));
}

void repeated_call_evmalloc(benchmark::State& state)
{
    using Frame = evmalloc::StackFrame<>;
    evmalloc::FramePool<> pool;  // default config
    const auto call = [&pool]() -> bool {
        auto frame = Frame::init(0, pool);
        if (!frame)
            return false;
        FrameMemoryImpl impl{frame->memory()};
        const std::int64_t gas = mstore_1mib_call(impl);
        benchmark::DoNotOptimize(gas);
        benchmark::DoNotOptimize(impl.data());
        benchmark::ClobberMemory();
        return gas > 0;
    };            // ~StackFrame: buffer and Memory back to the pool
    if (!call())  // warm: the pool's first buffer and Memory
    {
        state.SkipWithError("init or expand failed");
        return;
    }
    const std::uint64_t before = evmalloc::bench::malloc_calls();
    for (auto _ : state)
        call();
    set_allocs_per_call(state, before);
}

void repeated_call_evmone(benchmark::State& state)
{
    const auto call = [] {
        EvmoneImpl impl;  // per call, as evmone creates its execution state's memory
        const std::int64_t gas = mstore_1mib_call(impl);
        benchmark::DoNotOptimize(gas);
        benchmark::DoNotOptimize(impl.data());
        benchmark::ClobberMemory();
    };
    call();
    const std::uint64_t before = evmalloc::bench::malloc_calls();
    for (auto _ : state)
        call();
    set_allocs_per_call(state, before);
}

[[maybe_unused]] const bool registered = [] {
    benchmark::RegisterBenchmark("memory/mainnet_mix/evmalloc", mainnet_mix_bench<EvmallocImpl>);
    benchmark::RegisterBenchmark(
        "memory/mainnet_mix/evmalloc.metered", mainnet_mix_bench<EvmallocMeteredImpl>);
    benchmark::RegisterBenchmark("memory/mainnet_mix/evmone_memory", mainnet_mix_bench<EvmoneImpl>);
    benchmark::RegisterBenchmark("memory/mainnet_mix/std_vector", mainnet_mix_bench<VectorImpl>);
    benchmark::RegisterBenchmark("memory/mstore_1MiB/evmalloc", mstore_1mib_bench<EvmallocImpl>);
    benchmark::RegisterBenchmark(
        "memory/mstore_1MiB/evmalloc.metered", mstore_1mib_bench<EvmallocMeteredImpl>);
    benchmark::RegisterBenchmark("memory/mstore_1MiB/evmone_memory", mstore_1mib_bench<EvmoneImpl>);
    benchmark::RegisterBenchmark("memory/mstore_1MiB/std_vector", mstore_1mib_bench<VectorImpl>);
    benchmark::RegisterBenchmark("memory/repeated_1MiB_call/evmalloc", repeated_call_evmalloc);
    benchmark::RegisterBenchmark("memory/repeated_1MiB_call/evmone_memory", repeated_call_evmone);
    return true;
}();
}  // namespace
