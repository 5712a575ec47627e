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
// The pool: max_code_size 2^32 - 2 (an EVMC VM runs any code it is given; above the largest
// tier a frame gets an exactly sized buffer that is not kept) and auto_trim on (EVMC has no
// end-of-transaction hook: the pool trims itself when the outermost call ends).
#pragma once

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

}  // namespace evmalloc_evmone
