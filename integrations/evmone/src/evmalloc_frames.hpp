// evmone on evmalloc: every baseline call runs in an evmalloc jumpdest frame.
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
// The pool: max_code_size 2^32 - 2 (an EVMC VM runs any code it is given; above the largest
// tier a frame gets an exactly sized buffer that is not kept) and auto_trim on (EVMC has no
// end-of-transaction hook: the pool trims itself when the outermost call ends).
#pragma once

#include "baseline.hpp"
#include "execution_state.hpp"

#include <evmalloc/frame_pool.hpp>
#include <evmalloc/stack_frame.hpp>
#include <evmc/evmc.h>

#include <optional>

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

class CallFrame;

/// What an evmone VM holds: the pool every call takes its frame from.
class Frames
{
public:
    Frames() noexcept;

    [[nodiscard]] FramePool& pool() noexcept { return pool_; }
    [[nodiscard]] const FramePool& pool() const noexcept { return pool_; }

private:
    friend class CallFrame;
    friend class StateBinding;

    FramePool pool_;
    /// The CallFrame whose analysis the next baseline::execute(VM&, ...) runs, if any.
    CallFrame* pending_ = nullptr;
};

/// The EVMC status for a frame that could not be had.
[[nodiscard]] evmc_status_code status_of(evmalloc::Errc error) noexcept;

/// One call's frame and evmone's view of its analysis.
class CallFrame
{
public:
    /// Takes a frame for `code` and prepares it (legacy code: padded copy and jumpdest bits);
    /// for EOF code (when `eof_enabled`) a frame for the stack and memory, and evmone's EOF
    /// analysis. On failure `*this` is false and status() says why.
    CallFrame(Frames& frames, evmc::bytes_view code, bool eof_enabled) noexcept;
    ~CallFrame();

    CallFrame(const CallFrame&) = delete;
    CallFrame& operator=(const CallFrame&) = delete;

    explicit operator bool() const noexcept { return analysis_.has_value(); }
    [[nodiscard]] evmc_status_code status() const noexcept { return status_; }

    /// \requires *this is true.
    [[nodiscard]] const evmone::baseline::CodeAnalysis& analysis() const noexcept { return *analysis_; }

private:
    friend class StateBinding;

    Frames& frames_;
    std::optional<Frame> frame_;
    std::optional<evmone::baseline::CodeAnalysis> analysis_;
    evmc_status_code status_ = EVMC_SUCCESS;
};

/// Binds an ExecutionState's stack and memory to the frame of the call it runs, for the
/// duration of the call: the pending CallFrame's when `analysis` is its, else a frame of its own.
class StateBinding
{
public:
    StateBinding(Frames& frames, evmone::ExecutionState& state,
        const evmone::baseline::CodeAnalysis& analysis) noexcept;
    ~StateBinding();

    StateBinding(const StateBinding&) = delete;
    StateBinding& operator=(const StateBinding&) = delete;

    explicit operator bool() const noexcept { return status_ == EVMC_SUCCESS; }
    [[nodiscard]] evmc_status_code status() const noexcept { return status_; }

private:
    evmone::ExecutionState& state_;
    std::optional<Frame> own_;
    evmc_status_code status_ = EVMC_SUCCESS;
};
}  // namespace evmalloc_evmone
