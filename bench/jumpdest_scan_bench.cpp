// The jumpdest frame's whole setup on the shapes of an attack and on compiled code: the padded
// copy of the code and its jumpdest bits, JumpdestAnalysis::prepare(code, padded_code, bits).
//
// attack_shapes/<shape>/<impl>: the shapes of tests/support/attack_shapes.hpp (the devnet-8
//   spam contract at 64 and 24 KiB, 64 KiB of zeros, JUMPDEST STOP; the worst cases of a scan
//   that skips PUSH-free blocks: PUSH1-dense, a PUSH in every 64 bytes, PUSH32-dense, random).
// scan_corpus/<contract>/<impl>: the compiled contracts of the corpus (not its synthetic
//   micro-benchmarks; the generated code set where there is no corpus).
//   evmalloc            the path chosen for this process (the best the CPU has, or the one
//                       EVMALLOC_ANALYSIS_PATH names)
//   evmalloc.<path>     each path this CPU runs, selected with set_analysis_path()
//   floor               memcpy into a padded buffer, then the plain bitmap loop
//                       (support/jumpdest_floor.hpp): what to beat
//   memcpy              the padded copy alone: the physical limit of the whole setup
// Bytes processed = code size, so the report shows MB/s.
#include "support/jumpdest_floor.hpp"
#include "support/workload_code.hpp"

#include "support/attack_shapes.hpp"

#include <benchmark/benchmark.h>
#include <evmalloc/jumpdest_analysis.hpp>
#include <evmalloc/jumpdest_scan.hpp>
#include <evmalloc/padded_code.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace
{
using evmalloc::AnalysisPath;
using evmalloc::JumpdestAnalysis;
using evmalloc::PaddedCode;
using Code = std::vector<std::uint8_t>;

/// The path of this process before any benchmark overrides it.
const AnalysisPath process_path = evmalloc::analysis_path();

void set_bytes(benchmark::State& state, const Code& code)
{
    state.SetBytesProcessed(
        static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(code.size()));
}

void scan_evmalloc(benchmark::State& state, const Code* code, AnalysisPath path)
{
    const AnalysisPath before = evmalloc::analysis_path();
    if (!evmalloc::set_analysis_path(path))
    {
        state.SkipWithError("path not supported");
        return;
    }
    std::vector<std::uint8_t> padded(code->size() + PaddedCode::padding);
    std::vector<std::uint64_t> bits(JumpdestAnalysis::jumpdest_words(code->size()));
    for (auto _ : state)
    {
        const auto analysis = JumpdestAnalysis::prepare(*code, padded, bits);
        benchmark::DoNotOptimize(analysis);
        benchmark::ClobberMemory();
    }
    (void)evmalloc::set_analysis_path(before);
    set_bytes(state, *code);
}

void scan_floor(benchmark::State& state, const Code* code)
{
    std::vector<std::uint8_t> padded(code->size() + PaddedCode::padding);
    std::vector<std::uint64_t> bits(JumpdestAnalysis::jumpdest_words(code->size()));
    for (auto _ : state)
    {
        evmalloc::bench::padded_memcpy(
            code->data(), code->size(), padded.data(), PaddedCode::padding);
        benchmark::DoNotOptimize(
            evmalloc::bench::jumpdest_bitmap(padded.data(), code->size(), bits.data()));
        benchmark::ClobberMemory();
    }
    set_bytes(state, *code);
}

void scan_memcpy(benchmark::State& state, const Code* code)
{
    std::vector<std::uint8_t> padded(code->size() + PaddedCode::padding);
    for (auto _ : state)
    {
        evmalloc::bench::padded_memcpy(
            code->data(), code->size(), padded.data(), PaddedCode::padding);
        benchmark::DoNotOptimize(padded.data());
        benchmark::ClobberMemory();
    }
    set_bytes(state, *code);
}

void register_case(const std::string& prefix, const Code* code)
{
    benchmark::RegisterBenchmark((prefix + "evmalloc").c_str(), scan_evmalloc, code, process_path);
    for (const AnalysisPath path : evmalloc::all_analysis_paths)
        if (evmalloc::analysis_path_supported(path))
            benchmark::RegisterBenchmark(
                (prefix + "evmalloc." + std::string{evmalloc::analysis_path_name(path)}).c_str(),
                scan_evmalloc, code, path);
    benchmark::RegisterBenchmark((prefix + "floor").c_str(), scan_floor, code);
    benchmark::RegisterBenchmark((prefix + "memcpy").c_str(), scan_memcpy, code);
}

const std::vector<evmalloc::test::CodeShape>& shapes()
{
    static const auto all = evmalloc::test::code_shapes();
    return all;
}

[[maybe_unused]] const bool registered = [] {
    for (const auto& shape : shapes())
        register_case("attack_shapes/" + shape.name + "/", &shape.code);
    const auto& contracts = evmalloc::bench::workload_code();
    bool any_compiled = false;
    for (const auto& contract : contracts)
        any_compiled = any_compiled || !contract.synthetic;
    for (const auto& contract : contracts)
        if (!contract.synthetic || !any_compiled)
            register_case("scan_corpus/" + contract.name + "/", &contract.code);
    return true;
}();
}  // namespace
