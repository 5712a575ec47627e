// Fuzz target `admission`: the analysis cache's bookkeeping against a plain model
// (tests/support/admission_model.hpp): each input picks the policy (TinyLFU or always), the
// budget in entries (0 to 15) and then one operation per byte: a call of one of 24 codes, its
// frame kept or let go at once; letting a kept frame go; clear(). Every call's outcome (hit,
// admitted miss, not admitted), every counter and every frame's code are checked after each
// operation. Inputs longer than 8192 bytes reach the counts' halving.
#include "check.hpp"

#include <support/admission_model.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1)
        return 0;
    const auto policy =
        (data[0] & 0x80) != 0 ? evmalloc::Admission::always : evmalloc::Admission::tiny_lfu;
    const std::size_t budget_entries = data[0] & 0x0F;
    const std::size_t one = evmalloc::test::entry_bytes<evmalloc::test::ModelTraits>(400);
    const std::string diff = evmalloc::test::run_admission_model(
        std::span<const std::uint8_t>{data + 1, size - 1}, policy, budget_entries * one);
    if (!diff.empty())
        std::fprintf(stderr, "admission model: %s\n", diff.c_str());
    FUZZ_CHECK(diff.empty());
    return 0;
}
