// evmone on evmalloc: the advanced interpreter's code part, frames and calls (see
// evmalloc_advanced.hpp).
#include "evmalloc_advanced.hpp"

#include "advanced_analysis.hpp"
#include "evmalloc_advanced_frames.hpp"
#include "evmalloc_call.hpp"
#include "vm.hpp"

#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/code_part.hpp>
#include <evmalloc/frame_pool.hpp>
#include <evmalloc/padded_code.hpp>
#include <evmalloc/stack_frame.hpp>

#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>

namespace evmalloc_evmone
{
namespace adv = evmone::advanced;

namespace
{
/// The parts of an AdvancedCodePart for code of n bytes, in order.
enum Part : std::size_t
{
    instrs_part,
    push_values_part,
    jumpdest_offsets_part,
    jumpdest_targets_part,
    code_part,
    part_count
};
}  // namespace

/// evmone's advanced analysis as an evmalloc code part: instrs | push values | jumpdest offsets
/// | jumpdest targets | padded code, laid out for the code's real size.
struct AdvancedCodePart
{
    using Table = adv::OpTable;

    struct View
    {
        adv::AdvancedCodeView analysis;
        const std::uint8_t* code_data;
        std::size_t code_size;

        [[nodiscard]] std::span<const std::uint8_t> code() const noexcept
        {
            return {code_data, code_size};
        }
    };

    /// The largest code analysed: jumpdest offsets and instruction indexes (up to n + 1) are
    /// int32_t in evmone's analysis.
    static constexpr std::size_t max_code_size = std::size_t{INT32_MAX} - 1;

    /// The instruction array: the OPX_BEGINBLOCK prologue, at most one per code byte, the STOP.
    static constexpr std::size_t instrs(std::size_t n) noexcept { return n + 2; }
    /// PUSH9..PUSH32 each take ten bytes of code, but the last may be cut by the end.
    static constexpr std::size_t push_values(std::size_t n) noexcept { return n / 10 + 1; }

    [[nodiscard]] static constexpr std::array<evmalloc::Allocation, part_count> parts(
        std::size_t n) noexcept
    {
        return {{{instrs(n) * sizeof(adv::Instruction), alignof(adv::Instruction), false},
            {push_values(n) * sizeof(intx::uint256), alignof(intx::uint256), false},
            {n * sizeof(std::int32_t), alignof(std::int32_t), false},
            {n * sizeof(std::int32_t), alignof(std::int32_t), false},
            evmalloc::PaddedCode::calculate_allocation(n)}};
    }

    /// The start of each part from offset 0, and (last) the end of the last part.
    [[nodiscard]] static constexpr std::array<std::size_t, part_count + 1> offsets(
        std::size_t n) noexcept
    {
        std::array<std::size_t, part_count + 1> at{};
        std::size_t end = 0;
        const auto p = parts(n);
        for (std::size_t i = 0; i < part_count; ++i)
        {
            at[i] = evmalloc::align_up(end, p[i].alignment);
            end = at[i] + p[i].size;
        }
        at[part_count] = end;
        return at;
    }

    [[nodiscard]] static constexpr evmalloc::Allocation calculate_allocation(std::size_t n) noexcept
    {
        std::size_t alignment = 1;
        for (const auto& a : parts(n))
            alignment = a.alignment > alignment ? a.alignment : alignment;
        return {offsets(n)[part_count], alignment, false};
    }

    /// evmone's analysis of `code` through `table`, written into `storage`.
    /// \returns the view; Errc::code_too_large above max_code_size,
    ///          Errc::buffer_too_small when `storage` is smaller than calculate_allocation().
    [[nodiscard]] static evmalloc::Result<View> prepare(std::span<std::byte> storage,
        std::span<const std::uint8_t> code, const Table& table) noexcept
    {
        const std::size_t n = code.size();
        if (n > max_code_size) [[unlikely]]
            return evmalloc::Errc::code_too_large;
        if (storage.size() < calculate_allocation(n).size) [[unlikely]]
            return evmalloc::Errc::buffer_too_small;
        const auto at = offsets(n);
        std::byte* const base = storage.data();
        const auto padded = evmalloc::PaddedCode::copy(code,
            {reinterpret_cast<std::uint8_t*>(base + at[code_part]), parts(n)[code_part].size});
        const adv::AdvancedCodeStorage into{
            reinterpret_cast<adv::Instruction*>(base + at[instrs_part]),
            reinterpret_cast<intx::uint256*>(base + at[push_values_part]),
            reinterpret_cast<std::int32_t*>(base + at[jumpdest_offsets_part]),
            reinterpret_cast<std::int32_t*>(base + at[jumpdest_targets_part])};
        const adv::AdvancedCodeView view =
            adv::analyze(table, evmone::bytes_view{padded.data(), padded.size()}, into);
        return View{view, padded.data(), padded.size()};
    }
};
static_assert(evmalloc::CodePart<AdvancedCodePart>);

struct AdvancedTraits
{
    using Word = intx::uint256;
    using CodePart = AdvancedCodePart;
};

using AdvancedFrame = evmalloc::StackFrame<AdvancedTraits>;

/// The advanced interpreter's pool and shared analyses (as Frames' for baseline), and one
/// AdvancedExecutionState per call depth, made on the depth's first call and reused.
class AdvancedFrames
{
public:
    /// EVMC call depths run from 0 to 1024.
    static constexpr std::size_t max_depth = 1024;

    AdvancedFrames() noexcept
      : pool_{evmalloc::nothrow_new_delete_resource(), pool_config()},
        cache_{evmalloc::nothrow_new_delete_resource(), {.max_bytes = cache_bytes}},
        share_{share_analyses()}
    {}

    [[nodiscard]] evmalloc::FramePool<AdvancedTraits>& pool() noexcept { return pool_; }
    [[nodiscard]] evmalloc::AnalysisCache<AdvancedTraits>& cache() noexcept { return cache_; }
    [[nodiscard]] bool shares_analyses() const noexcept { return share_; }

    /// The state of calls at `depth` (at most max_depth). nullptr when it cannot be made.
    adv::AdvancedExecutionState* state(std::size_t depth) noexcept
    {
        auto& s = states_[depth];
        if (s == nullptr) [[unlikely]]
            s.reset(new (std::nothrow) adv::AdvancedExecutionState{});
        return s.get();
    }

    /// After a call's frame went back (Frames::call_ended()).
    void call_ended() noexcept { trim_past_retain(pool_, buffers_checked_); }

private:
    evmalloc::FramePool<AdvancedTraits> pool_;
    evmalloc::AnalysisCache<AdvancedTraits> cache_;
    bool share_;
    std::size_t buffers_checked_ = 0;
    std::array<std::unique_ptr<adv::AdvancedExecutionState>, max_depth + 1> states_{};
};

void AdvancedFramesDeleter::operator()(AdvancedFrames* frames) const noexcept
{
    delete frames;
}

namespace
{
evmc_result failure(evmc_status_code status) noexcept
{
    return evmc::make_result(status, 0, 0, nullptr, 0);
}

/// The state bound to the frame for one call (bind_state, unbind_state).
class AdvancedBinding
{
public:
    AdvancedBinding(adv::AdvancedExecutionState& state, AdvancedFrame& frame) noexcept
      : state_{state}
    {
        bind_state(state, frame.stack().data(), frame.memory());
    }
    ~AdvancedBinding() { unbind_state(state_); }
    AdvancedBinding(const AdvancedBinding&) = delete;
    AdvancedBinding& operator=(const AdvancedBinding&) = delete;

private:
    adv::AdvancedExecutionState& state_;
};

evmc_result run(evmone::VM& vm, AdvancedFrames& frames, const evmc_host_interface& host,
    evmc_host_context* ctx, evmc_revision rev, const evmc_message& msg,
    evmc::bytes_view code) noexcept
{
    if (msg.depth < 0 || static_cast<std::size_t>(msg.depth) > AdvancedFrames::max_depth)
        [[unlikely]]
        return failure(EVMC_FAILURE);
    adv::AdvancedExecutionState* const state = frames.state(static_cast<std::size_t>(msg.depth));
    if (state == nullptr) [[unlikely]]
        return failure(EVMC_OUT_OF_MEMORY);

    const adv::OpTable& table = adv::get_op_table(rev);
    // One table per revision: the revision names it in the cache.
    const evmalloc::TableId table_id{static_cast<std::uint64_t>(rev) + 1};
    const std::span<const std::uint8_t> bytes{code.data(), code.size()};
    evmalloc::Result<AdvancedFrame> frame =
        frames.shares_analyses()
            ? AdvancedFrame::init(bytes, table, table_id, frames.pool(), frames.cache())
            : AdvancedFrame::init(code.size(), frames.pool());
    if (!frame) [[unlikely]]
        return failure(status_of(frame.error()));
    if (!frame->is_prepared())
    {
        if (const evmalloc::Result<void> r = frame->prepare(bytes, table); !r) [[unlikely]]
            return failure(status_of(r.error()));
    }

    const AdvancedBinding binding{*state, *frame};
    state->reset(msg, rev, host, ctx, code);
    // evmone's advanced::execute(state, analysis), with the output in a pooled buffer.
    const adv::AdvancedCodeView analysis = frame->code_part().analysis;
    state->analysis.advanced = &analysis;
    for (const adv::Instruction* instr = analysis.instrs; instr != nullptr;)
        instr = instr->fn(instr, *state);
    const evmc_status_code status = state->status;
    const bool keeps_gas = status == EVMC_SUCCESS || status == EVMC_REVERT;
    return vm.frames.make_result(status, keeps_gas ? state->gas_left : 0,
        status == EVMC_SUCCESS ? state->gas_refund : 0, state->memory.data() + state->output_offset,
        state->output_size);
}
}  // namespace

evmc_result execute_advanced(evmc_vm* c_vm, const evmc_host_interface& host, evmc_host_context* ctx,
    evmc_revision rev, const evmc_message& msg, evmc::bytes_view code) noexcept
{
    auto& vm = *static_cast<evmone::VM*>(c_vm);
    if (vm.advanced_frames == nullptr) [[unlikely]]
    {
        vm.advanced_frames.reset(new (std::nothrow) AdvancedFrames{});
        if (vm.advanced_frames == nullptr)
            return failure(EVMC_OUT_OF_MEMORY);
    }
    AdvancedFrames& frames = *vm.advanced_frames;
    const evmc_result result = run(vm, frames, host, ctx, rev, msg, code);
    frames.call_ended();  // the call's frame is back in the pool
    return result;
}
}  // namespace evmalloc_evmone

extern "C" std::size_t evmalloc_evmone_advanced_part_bytes(std::size_t code_size) noexcept
{
    return evmalloc_evmone::AdvancedCodePart::calculate_allocation(code_size).size;
}
