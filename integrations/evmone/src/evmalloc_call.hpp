// evmone on evmalloc: one baseline call's frame (CallFrame) and the binding of an evmone
// ExecutionState to it (StateBinding); used by evmone's baseline_execution.cpp (evmone.patch).
#pragma once

#include "evmalloc_frames.hpp"

#include <evmc/evmc.h>
#include "baseline.hpp"
#include "execution_state.hpp"

#include <optional>

namespace evmalloc_evmone
{
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
    [[nodiscard]] const evmone::baseline::CodeAnalysis& analysis() const noexcept
    {
        return *analysis_;
    }

private:
    friend class StateBinding;

    Frames& frames_;
    std::optional<Frame> frame_;
    std::optional<evmone::baseline::CodeAnalysis> analysis_;
    evmc_status_code status_ = EVMC_SUCCESS;
};

/// Points `state`'s stack and memory at a frame's (`stack`: at least 1024 words), for one call
/// of either interpreter.
inline void bind_state(
    evmone::ExecutionState& state, intx::uint256* stack, evmalloc::Memory& memory) noexcept
{
    state.stack_space.bind(stack);
    state.memory.bind(memory);
}

/// Ends a call's binding: the output of the call's last call is not needed any more (its buffer
/// goes back now), and the stack and memory are the state's own again.
inline void unbind_state(evmone::ExecutionState& state) noexcept
{
    state.return_data.clear();
    state.stack_space.unbind();
    state.memory.unbind();
}

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
    Frames& frames_;
    evmone::ExecutionState& state_;
    std::optional<FramePool::Lease> own_;  // a stack-only buffer and a Memory of its own
    evmc_status_code status_ = EVMC_SUCCESS;
};
}  // namespace evmalloc_evmone
