// The jumpdest frame's call setup, next to frame_bench.cpp's instruction frame.
//
// call_setup/<contract>/evmalloc_jumpdest: StackFrame<JumpdestTraits>::init(code.size(), pool)
//   + prepare(code) (the padded copy and the jumpdest bits, nothing per instruction) + release,
//   from a warm FramePool, per contract of the code set (support/workload_code.hpp). Same
//   workload and case names as frame_bench.cpp's `evmalloc` (the instruction frame) and
//   `jumpdest_floor` rows, so the report puts them in one table.
// padded_copy/<contract>/evmalloc: PaddedCode::copy alone (the code and 33 zero bytes into a
//   reused buffer): what the padded copy costs per call, inside the call setup above.
// Counters: allocs_per_iter (operator new calls per iteration), bytes processed = code size.
#include "support/alloc_counter.hpp"
#include "support/counters.hpp"
#include "support/workload_code.hpp"

#include <benchmark/benchmark.h>
#include <evmalloc/padded_code.hpp>
#include <evmalloc/stack_frame.hpp>
#include <evmalloc/traits.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace
{
using JumpdestFrame = evmalloc::StackFrame<evmalloc::JumpdestTraits>;
using JumpdestPool = evmalloc::FramePool<evmalloc::JumpdestTraits>;
using evmalloc::bench::new_calls;

void call_setup_jumpdest(benchmark::State& state, const std::vector<std::uint8_t>* code)
{
    JumpdestPool pool;
    {
        auto warm =
            JumpdestFrame::init(code->size(), pool);  // the pool's first buffer of this tier
        if (!warm || !warm->prepare(*code))
            state.SkipWithError("init or prepare failed");
    }
    const auto before = new_calls();
    for (auto _ : state)
    {
        auto frame = JumpdestFrame::init(code->size(), pool);
        const auto prepared = frame->prepare(*code);
        benchmark::DoNotOptimize(prepared);
        benchmark::DoNotOptimize(frame->analysis().code().data());
    }
    evmalloc::bench::set_call_setup_counters(state, before, *code);
}

void padded_copy(benchmark::State& state, const std::vector<std::uint8_t>* code)
{
    std::vector<std::uint8_t> storage(code->size() + evmalloc::PaddedCode::padding);
    const auto before = new_calls();
    for (auto _ : state)
    {
        const auto copy = evmalloc::PaddedCode::copy(*code, storage);
        benchmark::DoNotOptimize(copy.data());
        benchmark::ClobberMemory();
    }
    evmalloc::bench::set_call_setup_counters(state, before, *code);
}

[[maybe_unused]] const bool registered = [] {
    for (const auto& contract : evmalloc::bench::workload_code())
    {
        const auto* code = &contract.code;
        benchmark::RegisterBenchmark(("call_setup/" + contract.name + "/evmalloc_jumpdest").c_str(),
            call_setup_jumpdest, code);
        benchmark::RegisterBenchmark(
            ("padded_copy/" + contract.name + "/evmalloc").c_str(), padded_copy, code);
    }
    return true;
}();
}  // namespace
