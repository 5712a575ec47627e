// Workloads 2 and 3: the cost of setting up a call frame.
//
// frame_setup/<tier>/<impl>: init + release of one frame for code of the tier's capacity.
//   evmalloc      StackFrame from a warm FramePool (one pooled buffer, one pooled Memory)
//   naive_frame   one heap allocation per component (support/baseline_frames.hpp)
//   evmone_frame  stack and Memory reused per depth, analysis tables allocated per call for the
//                 code (not zero-filled but the jumpdest bitmap, as in evmone)
// call_setup/<contract>/<impl>: init + prepare (analysis, ops, metadata) per contract of the
//   code set (support/workload_code.hpp), bytes processed = code size, so MB/s shows.
//   jumpdest_floor is the least any interpreter computes: one loop that only builds the
//   jumpdest bitmap into a reused buffer. evmalloc.jumpdest_analysis is JumpdestAnalysis::prepare
//   into a reused buffer: the same work through the library, to compare with the floor.
// Counter allocs_per_iter: operator new calls per iteration (malloc is not counted).
#include "support/alloc_counter.hpp"
#include "support/baseline_frames.hpp"
#include "support/counters.hpp"
#include "support/jumpdest_floor.hpp"
#include "support/op_table.hpp"
#include "support/workload_code.hpp"

#include <benchmark/benchmark.h>
#include <evmalloc/jumpdest_analysis.hpp>
#include <evmalloc/opcodes.hpp>
#include <evmalloc/stack_frame.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace
{
using evmalloc::Tier;
using Frame = evmalloc::StackFrame<>;
using Pool = evmalloc::FramePool<>;
using evmalloc::bench::new_calls;
using evmalloc::bench::set_allocs;
using evmalloc::bench::set_call_setup_counters;

const Frame::OpTable& op_table()
{
    return evmalloc::test::distinct_op_table();
}

// --- frame_setup ---------------------------------------------------------------------------

void frame_setup_evmalloc(benchmark::State& state, Tier tier)
{
    const std::size_t size = evmalloc::code_capacity(tier);
    Pool pool;
    {
        auto warm = Frame::init(size, pool);  // the pool's first buffer of this tier
        if (!warm)
            state.SkipWithError("init failed");
    }
    const auto before = new_calls();
    for (auto _ : state)
    {
        auto frame = Frame::init(size, pool);
        benchmark::DoNotOptimize(frame);
    }
    set_allocs(state, before);
}

void frame_setup_naive(benchmark::State& state, Tier tier)
{
    const std::size_t size = evmalloc::code_capacity(tier);
    const auto before = new_calls();
    for (auto _ : state)
    {
        evmalloc::bench::NaiveFrame frame{size};
        benchmark::DoNotOptimize(frame.stack());
    }
    set_allocs(state, before);
}

void frame_setup_evmone(benchmark::State& state, Tier tier)
{
    const std::size_t size = evmalloc::code_capacity(tier);
    evmalloc::bench::EvmoneFrameStates states;
    (void)states.at(0);  // depth 0 reached before
    const auto before = new_calls();
    for (auto _ : state)
    {
        evmalloc::bench::EvmoneFrame frame{states, 0, size};
        benchmark::DoNotOptimize(frame.stack());
    }
    set_allocs(state, before);
}

// --- call_setup ----------------------------------------------------------------------------

void call_setup_evmalloc(benchmark::State& state, const std::vector<std::uint8_t>* code)
{
    Pool pool;
    {
        auto warm = Frame::init(code->size(), pool);
        if (!warm || !warm->prepare(*code, op_table()))
            state.SkipWithError("init or prepare failed");
    }
    const auto before = new_calls();
    for (auto _ : state)
    {
        auto frame = Frame::init(code->size(), pool);
        const auto prepared = frame->prepare(*code, op_table());
        benchmark::DoNotOptimize(prepared);
        benchmark::DoNotOptimize(frame->metadata().data());
    }
    set_call_setup_counters(state, before, *code);
}

// A baseline frame built by `make()` per call, then prepared: the same analysis work as
// evmalloc, with the baseline's allocation style.
template <class MakeFrame>
void call_setup_baseline(
    benchmark::State& state, const std::vector<std::uint8_t>* code, MakeFrame make)
{
    const auto before = new_calls();
    for (auto _ : state)
    {
        auto frame = make();
        const bool prepared = frame.prepare(*code, op_table());
        benchmark::DoNotOptimize(prepared);
        benchmark::DoNotOptimize(frame.stack());
    }
    set_call_setup_counters(state, before, *code);
}

void call_setup_naive(benchmark::State& state, const std::vector<std::uint8_t>* code)
{
    call_setup_baseline(state, code, [code] { return evmalloc::bench::NaiveFrame{code->size()}; });
}

void call_setup_evmone(benchmark::State& state, const std::vector<std::uint8_t>* code)
{
    evmalloc::bench::EvmoneFrameStates states;
    (void)states.at(0);
    call_setup_baseline(state, code, [&states, code] {
        return evmalloc::bench::EvmoneFrame{states, 0, code->size()};
    });
}

void call_setup_floor(benchmark::State& state, const std::vector<std::uint8_t>* code)
{
    std::vector<std::uint64_t> bits((code->size() + 64) / 64);
    const auto before = new_calls();
    for (auto _ : state)
    {
        benchmark::DoNotOptimize(
            evmalloc::bench::jumpdest_bitmap(code->data(), code->size(), bits.data()));
        benchmark::ClobberMemory();
    }
    set_call_setup_counters(state, before, *code);
}

void call_setup_jumpdest_analysis(benchmark::State& state, const std::vector<std::uint8_t>* code)
{
    std::vector<std::uint64_t> bits(evmalloc::JumpdestAnalysis::jumpdest_words(code->size()));
    const auto before = new_calls();
    for (auto _ : state)
    {
        const auto analysis = evmalloc::JumpdestAnalysis::prepare(*code, bits);
        benchmark::DoNotOptimize(analysis);
        benchmark::ClobberMemory();
    }
    set_call_setup_counters(state, before, *code);
}

[[maybe_unused]] const bool registered = [] {
    for (const Tier tier : evmalloc::all_tiers)
    {
        const std::string prefix = "frame_setup/" + std::string{evmalloc::tier_name(tier)} + "/";
        benchmark::RegisterBenchmark((prefix + "evmalloc").c_str(), frame_setup_evmalloc, tier);
        benchmark::RegisterBenchmark((prefix + "naive_frame").c_str(), frame_setup_naive, tier);
        benchmark::RegisterBenchmark((prefix + "evmone_frame").c_str(), frame_setup_evmone, tier);
    }
    for (const auto& contract : evmalloc::bench::workload_code())
    {
        const std::string prefix = "call_setup/" + contract.name + "/";
        const auto* code = &contract.code;
        benchmark::RegisterBenchmark((prefix + "evmalloc").c_str(), call_setup_evmalloc, code);
        benchmark::RegisterBenchmark((prefix + "jumpdest_floor").c_str(), call_setup_floor, code);
        benchmark::RegisterBenchmark(
            (prefix + "evmalloc.jumpdest_analysis").c_str(), call_setup_jumpdest_analysis, code);
        benchmark::RegisterBenchmark((prefix + "naive_frame").c_str(), call_setup_naive, code);
        benchmark::RegisterBenchmark((prefix + "evmone_frame").c_str(), call_setup_evmone, code);
    }
    return true;
}();
}  // namespace
