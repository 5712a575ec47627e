// Benchmark support: the two call frames evmalloc's StackFrame is measured against.
//
// Both do the same work as StackFrame (the same one-pass analysis that fills ops and metadata,
// Analysis::prepare with the instruction arrays, so only the allocation style differs):
//
// - NaiveFrame: one heap allocation per component, per call, as before the refactor: the
//   stack, each of the three analysis tables, ops, metadata (operator new[], not zeroed) and
//   a fresh evmone-style Memory (its constructor mallocs its first 4 KiB page).
// - EvmoneFrame: evmone's model. A stack space per call depth, allocated the first time that
//   depth is reached and reused after (EvmoneFrameStates), with a Memory per depth reused
//   with clear(); the analysis tables, ops and metadata are allocated per call, sized by the
//   code. As in evmone, only the jumpdest bitmap is zero-filled when allocated (evmone's
//   baseline analysis builds a zeroed bitmap of code-size bits; its advanced analysis reserves
//   its instruction tables without filling them): the other tables are allocated, not
//   initialised, and the analysis writes them. Value-initialised std::vectors instead would
//   zero-fill megabytes per call for the largest codes, which no evmone does.
//
// Every allocation is observable: the constructors pass each pointer to
// benchmark::DoNotOptimize, so the compiler cannot drop a `new[]` whose array a benchmark
// never reads (frame_setup only constructs and destroys the frame).
//
// Note for allocs_per_iter: evmalloc::bench::new_calls() counts operator new only; the
// evmone-style Memory uses malloc/realloc, which it does not see. Per frame: NaiveFrame makes
// 7 operator new calls (stack, three analysis tables, ops, metadata, the Memory object),
// EvmoneFrame 5 (three analysis tables, ops, metadata).
#pragma once

#include "support/evmone_memory.hpp"

#include <benchmark/benchmark.h>

#include <evmalloc/analysis.hpp>
#include <evmalloc/stack_frame.hpp>
#include <evmalloc/traits.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace evmalloc::bench
{
using BaselineOp = DefaultTraits::Op;
using BaselineMetadata = DefaultTraits::Metadata;
using BaselineOpTable = std::array<BaselineOp, 256>;

/// Analysis, ops and metadata into the given tables: what StackFrame::prepare does.
/// \returns false when the analysis refused the code.
inline bool prepare_into(std::span<const std::uint8_t> code, const BaselineOpTable& table,
    const AnalysisBuffers& buffers, std::span<BaselineOp> ops, std::span<BaselineMetadata> metadata,
    Analysis& analysis) noexcept
{
    const auto result = Analysis::prepare(code, buffers, table, ops, metadata);
    if (!result)
        return false;
    analysis = *result;
    return true;
}

class NaiveFrame
{
public:
    /// Allocates every component for code of `code_size` bytes.
    explicit NaiveFrame(std::size_t code_size)
      : code_size_{code_size},
        stack_{new Word[1024]},
        inst_to_pc_{new std::uint32_t[code_size + 1]},
        pc_to_inst_{new std::uint32_t[code_size + 1]},
        jumpdest_bits_{new std::uint64_t[(code_size + 64) / 64]},
        ops_{new BaselineOp[code_size + 1]},
        metadata_{new BaselineMetadata[code_size + 1]},
        memory_{std::make_unique<EvmoneMemory>()}
    {
        benchmark::DoNotOptimize(stack_.get());
        benchmark::DoNotOptimize(inst_to_pc_.get());
        benchmark::DoNotOptimize(pc_to_inst_.get());
        benchmark::DoNotOptimize(jumpdest_bits_.get());
        benchmark::DoNotOptimize(ops_.get());
        benchmark::DoNotOptimize(metadata_.get());
        benchmark::DoNotOptimize(memory_->data());
    }

    bool prepare(std::span<const std::uint8_t> code, const BaselineOpTable& table) noexcept
    {
        const AnalysisBuffers buffers{{inst_to_pc_.get(), code_size_ + 1},
            {pc_to_inst_.get(), code_size_ + 1}, {jumpdest_bits_.get(), (code_size_ + 64) / 64}};
        return prepare_into(code, table, buffers, {ops_.get(), code_size_ + 1},
            {metadata_.get(), code_size_ + 1}, analysis_);
    }

    [[nodiscard]] Word* stack() noexcept { return stack_.get(); }
    [[nodiscard]] const Analysis& analysis() const noexcept { return analysis_; }
    [[nodiscard]] EvmoneMemory& memory() noexcept { return *memory_; }

private:
    std::size_t code_size_;
    std::unique_ptr<Word[]> stack_;
    std::unique_ptr<std::uint32_t[]> inst_to_pc_;
    std::unique_ptr<std::uint32_t[]> pc_to_inst_;
    std::unique_ptr<std::uint64_t[]> jumpdest_bits_;
    std::unique_ptr<BaselineOp[]> ops_;
    std::unique_ptr<BaselineMetadata[]> metadata_;
    std::unique_ptr<EvmoneMemory> memory_;
    Analysis analysis_{};
};

/// What evmone keeps per call depth and reuses: a stack space and a Memory.
class EvmoneFrameStates
{
public:
    struct State
    {
        std::unique_ptr<Word[]> stack;  ///< allocated the first time the depth is reached
        std::unique_ptr<EvmoneMemory> memory;
    };

    /// The state of `depth`, allocated on first use, memory cleared.
    State& at(std::size_t depth)
    {
        if (depth >= states_.size())
            states_.resize(depth + 1);
        State& s = states_[depth];
        if (!s.stack)
        {
            s.stack.reset(new Word[1024]);
            s.memory = std::make_unique<EvmoneMemory>();
        }
        s.memory->clear();
        return s;
    }

private:
    std::vector<State> states_;
};

class EvmoneFrame
{
public:
    /// The reused state of `depth`, and per-call analysis tables for `code_size` bytes.
    EvmoneFrame(EvmoneFrameStates& states, std::size_t depth, std::size_t code_size)
      : state_{&states.at(depth)},
        code_size_{code_size},
        inst_to_pc_{new std::uint32_t[code_size + 1]},
        pc_to_inst_{new std::uint32_t[code_size + 1]},
        jumpdest_bits_((code_size + 64) / 64),
        ops_{new BaselineOp[code_size + 1]},
        metadata_{new BaselineMetadata[code_size + 1]}
    {
        benchmark::DoNotOptimize(inst_to_pc_.get());
        benchmark::DoNotOptimize(pc_to_inst_.get());
        benchmark::DoNotOptimize(jumpdest_bits_.data());
        benchmark::DoNotOptimize(ops_.get());
        benchmark::DoNotOptimize(metadata_.get());
    }

    bool prepare(std::span<const std::uint8_t> code, const BaselineOpTable& table) noexcept
    {
        const AnalysisBuffers buffers{{inst_to_pc_.get(), code_size_ + 1},
            {pc_to_inst_.get(), code_size_ + 1}, jumpdest_bits_};
        return prepare_into(code, table, buffers, {ops_.get(), code_size_ + 1},
            {metadata_.get(), code_size_ + 1}, analysis_);
    }

    [[nodiscard]] Word* stack() noexcept { return state_->stack.get(); }
    [[nodiscard]] const Analysis& analysis() const noexcept { return analysis_; }
    [[nodiscard]] EvmoneMemory& memory() noexcept { return *state_->memory; }

private:
    EvmoneFrameStates::State* state_;
    std::size_t code_size_;
    std::unique_ptr<std::uint32_t[]> inst_to_pc_;  ///< allocated, not initialised
    std::unique_ptr<std::uint32_t[]> pc_to_inst_;
    std::vector<std::uint64_t> jumpdest_bits_;  ///< zero-filled, as evmone's bitmap
    std::unique_ptr<BaselineOp[]> ops_;
    std::unique_ptr<BaselineMetadata[]> metadata_;
    Analysis analysis_{};
};
}  // namespace evmalloc::bench
