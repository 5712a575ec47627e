// The benchmark executable's main: Google Benchmark's usual main, plus
//  - context for the report (bench/report.py): the code set used by workloads 3 and 5
//    (corpus or generated, from support/workload_code.hpp), the compiler, evmalloc's asserts;
//  - an instruction-count window for `bench/run --instructions` (callgrind).
//
// The instruction-count window. Google Benchmark 1.7.1 has no fixed-iteration flag
// (`--benchmark_min_time=<N>x` came later) and a registered benchmark's iteration count cannot
// be changed after registration. But when a MemoryManager is registered, the runner makes one
// extra run of every benchmark after the timed ones with exactly min(16, iterations)
// iterations, between MemoryManager::Start() and Stop(). With EVMALLOC_BENCH_CALLGRIND=1 we
// register a MemoryManager that calls two empty out-of-line marker functions there, and
// bench/run starts callgrind with
//     --zero-before=evmalloc_bench_window_open --dump-before=evmalloc_bench_window_close
// so callgrind writes one profile per benchmark holding the instructions of exactly that run
// (dumps in run order, matching the JSON's run order). bench/run runs the executable twice,
// once with min_time 0 (n1 = 1 iteration) and once with a min_time that gives n2 = 2..16, and
// reports (Ir_n2 - Ir_n1) / (n2 - n1): the setup before the benchmark loop cancels out.
#include "support/workload_code.hpp"

#include <benchmark/benchmark.h>
#include <evmalloc/config.hpp>

#include <cstdlib>
#include <string>

extern "C" {
// Markers for callgrind's --zero-before / --dump-before: never inlined, never merged.
[[gnu::noinline]] void evmalloc_bench_window_open()
{
    asm volatile("" ::: "memory");
}
[[gnu::noinline]] void evmalloc_bench_window_close()
{
    asm volatile("" ::: "memory");
}
}

namespace
{
class InstructionWindow final : public benchmark::MemoryManager
{
public:
    void Start() override { evmalloc_bench_window_open(); }
    // Google Benchmark 1.7.1 still declares the pointer form pure virtual.
    void Stop(Result* /*result*/) override { evmalloc_bench_window_close(); }
    void Stop(Result& result) override { Stop(&result); }
};

std::string compiler_name()
{
#if defined(__clang__)
    return std::string{"clang++ "} + __clang_version__;
#elif defined(__GNUC__)
    return std::string{"g++ "} + __VERSION__;
#else
    return "unknown";
#endif
}

bool env_flag(const char* name)
{
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' && std::string{value} != "0";
}
}  // namespace

int main(int argc, char** argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;

    benchmark::AddCustomContext(
        "code_source", std::string{evmalloc::bench::workload_code_source()});
    benchmark::AddCustomContext("compiler", compiler_name());
#ifdef NDEBUG
    benchmark::AddCustomContext(
        "evmalloc_build", evmalloc::enable_asserts ? "NDEBUG, asserts on" : "NDEBUG, asserts off");
#else
    benchmark::AddCustomContext("evmalloc_build", "debug (asserts on): timings are not meaningful");
#endif

    InstructionWindow window;
    const bool callgrind = env_flag("EVMALLOC_BENCH_CALLGRIND");
    if (callgrind)
    {
        benchmark::RegisterMemoryManager(&window);
        benchmark::AddCustomContext("instruction_window", "min(16, iterations)");
    }

    benchmark::RunSpecifiedBenchmarks();
    if (callgrind)
        benchmark::RegisterMemoryManager(nullptr);
    benchmark::Shutdown();
    return 0;
}
