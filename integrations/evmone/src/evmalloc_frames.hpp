// evmone on evmalloc: every baseline call runs in an evmalloc jumpdest frame (see also
// evmalloc_call.hpp).
//
// The evmone VM holds a Frames (evmone.patch adds the member to evmone::VM). A call through
// EVMC (baseline::execute(evmc_vm*, ...)) builds a CallFrame: one jumpdest frame from the VM's
// FramePool holding the call's stack, its padded copy of the code and the jumpdest bits, plus
// a pooled evmalloc::Memory; evmone's CodeAnalysis views the padded code and the bits. Then
// baseline::execute(VM&, ..., analysis) binds the depth's ExecutionState to that frame for the
// call (StateBinding). A caller that analysed the code itself (baseline::analyze, as
// evmone-bench's "execute" rows do) gets a frame for the stack and memory only.
//
// EOF code is validated at deployment and needs neither padding nor jumpdest bits: its frame
// holds the stack and the memory, and evmone's own EOF analysis reads the header.
//
// Shared analysis: legacy code is looked up in the VM's AnalysisCache by the verified key (an
// EVMC VM is handed only the code bytes: the cache hashes them and compares them on a hit), so
// a contract called again is not analysed again; the frame then holds only the stack. Setting
// EVMONE_EVMALLOC_CACHE=0 in the environment before the VM is created gives the per-frame path
// (every call copies and analyses its code into its own frame), for measuring one against the
// other.
//
// The pool: max_code_size 2^32 - 2 (an EVMC VM runs any code it is given; above the largest
// tier a frame gets an exactly sized buffer that is not kept). EVMC has no end-of-transaction
// hook, so the pool is trimmed when an outermost call ends, but only once it holds more than
// retain_bytes (64 MiB): a transaction that recurses 1024 deep leaves its 1025 stack buffers
// (32 MiB) for the next one, as stock evmone keeps one ExecutionState per depth, where trimming
// after every call made each such transaction allocate and fault them in again.
//
// The call boundary (evmalloc_output.hpp): make_result() puts a call's output in a pooled
// buffer instead of evmc::make_result()'s malloc, so a call allocates nothing, output included.
#pragma once

#include "evmalloc_output.hpp"

#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/frame_pool.hpp>
#include <evmalloc/stack_frame.hpp>
#include <intx/intx.hpp>

namespace evmalloc_evmone
{
/// evmone's word, and a jumpdest frame: no instruction arrays.
struct Traits
{
    using Word = intx::uint256;
    using Op = void;
    using Metadata = void;
};

using Frame = evmalloc::StackFrame<Traits>;
using FramePool = evmalloc::FramePool<Traits>;
using AnalysisCache = evmalloc::AnalysisCache<Traits>;

class CallFrame;

/// A VM's pools keep what their frames released up to this many bytes (bytes_retained()).
inline constexpr std::size_t retain_bytes = std::size_t{64} << 20;

/// The budget of a VM's shared analyses (AnalysisCacheConfig::max_bytes), per interpreter.
inline constexpr std::size_t cache_bytes = std::size_t{64} << 20;

/// The configuration of a VM's frame pools (baseline's and advanced's): max_code_size 2^32 - 2,
/// no auto_trim (trim_past_retain() after each call instead), Memory::limit.
[[nodiscard]] evmalloc::FramePoolConfig pool_config() noexcept;

/// False when EVMONE_EVMALLOC_CACHE=0 is set in the environment: every call analyses into its
/// own frame.
[[nodiscard]] bool share_analyses() noexcept;

/// After a frame of `pool` went back: trims the pool when no frame is alive and it holds more
/// than retain_bytes. Buffers only pile up when the pool takes new ones from upstream (Memory
/// objects keep to the pool's own budget), so the retained bytes are summed only when
/// buffers_allocated() moved past `checked` (updated here).
template <class Pool>
void trim_past_retain(Pool& pool, std::size_t& checked) noexcept
{
    if (pool.active() != 0 || pool.buffers_allocated() == checked) [[likely]]
        return;
    checked = pool.buffers_allocated();
    if (pool.bytes_retained() > retain_bytes)
        pool.trim();
}

/// What an evmone VM holds: the pool every call takes its frame from, and the shared analyses.
class Frames
{
public:
    Frames() noexcept;
    ~Frames();
    Frames(const Frames&) = delete;
    Frames& operator=(const Frames&) = delete;

    [[nodiscard]] FramePool& pool() noexcept { return pool_; }
    [[nodiscard]] const FramePool& pool() const noexcept { return pool_; }
    [[nodiscard]] const AnalysisCache& cache() const noexcept { return cache_; }
    /// False when EVMONE_EVMALLOC_CACHE=0 was set: every call analyses into its own frame.
    [[nodiscard]] bool shares_analyses() const noexcept { return share_; }

    /// The EVMC result of a call: evmc_make_result(), with the output copied into a pooled
    /// buffer (malloc'ed only if the pools could not be created).
    [[nodiscard]] evmc_result make_result(evmc_status_code status, std::int64_t gas_left,
        std::int64_t gas_refund, const std::uint8_t* output, std::size_t output_size) noexcept
    {
        if (outputs_ != nullptr) [[likely]]
            return outputs_->make_result(status, gas_left, gas_refund, output, output_size);
        return evmc_make_result(status, gas_left, gas_refund, output, output_size);
    }
    [[nodiscard]] const OutputBuffers* outputs() const noexcept { return outputs_; }

private:
    friend class CallFrame;
    friend class StateBinding;

    /// After a frame went back (trim_past_retain).
    void call_ended() noexcept { trim_past_retain(pool_, buffers_checked_); }

    FramePool pool_;
    AnalysisCache cache_;
    OutputBuffers* outputs_;
    std::size_t buffers_checked_ = 0;  // pool_.buffers_allocated() when call_ended() last looked
    bool share_;
    /// The CallFrame whose analysis the next baseline::execute(VM&, ...) runs, if any.
    CallFrame* pending_ = nullptr;
};

}  // namespace evmalloc_evmone
