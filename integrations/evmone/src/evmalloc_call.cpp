// evmone on evmalloc: one call's frame and the binding of an ExecutionState to it.
#include "evmalloc_call.hpp"

#include <cstdlib>
#include <memory_resource>
#include <span>
#include <string_view>

namespace evmalloc_evmone
{
evmalloc::FramePoolConfig pool_config() noexcept
{
    evmalloc::FramePoolConfig config;
    config.max_code_size = 0xFFFFFFFE;  // 2^32 - 2: any code an EVMC VM is given
    config.auto_trim = false;           // trim_past_retain() after each call instead
    config.memory_limit = Memory::limit;
    return config;
}

bool share_analyses() noexcept
{
    const char* v = std::getenv("EVMONE_EVMALLOC_CACHE");
    return v == nullptr || std::string_view{v} != "0";
}

Frames::Frames() noexcept
  : pool_{evmalloc::nothrow_new_delete_resource(), pool_config()},
    cache_{evmalloc::nothrow_new_delete_resource(), {.max_bytes = cache_bytes}},
    outputs_{OutputBuffers::create()},
    share_{share_analyses()}
{}

Frames::~Frames()
{
    if (outputs_ != nullptr)
        outputs_->drop();
}

evmc_status_code status_of(evmalloc::Errc error) noexcept
{
    switch (error)
    {
    case evmalloc::Errc::call_depth_exceeded:
        return EVMC_CALL_DEPTH_EXCEEDED;
    case evmalloc::Errc::out_of_memory:
        return EVMC_OUT_OF_MEMORY;
    default:
        return EVMC_FAILURE;
    }
}

CallFrame::CallFrame(Frames& frames, evmc::bytes_view code, bool eof_enabled) noexcept
  : frames_{frames}
{
    const bool eof = eof_enabled && evmone::is_eof_container(code);
    const std::span<const std::uint8_t> bytes{code.data(), code.size()};
    const bool shared = !eof && frames.share_;
    evmalloc::Result<Frame> frame = shared ? Frame::init(bytes, frames.pool_, frames.cache_)
                                           : Frame::init(eof ? 0 : code.size(), frames.pool_);
    if (!frame) [[unlikely]]
    {
        status_ = status_of(frame.error());
        return;
    }
    frame_.emplace(std::move(*frame));

    if (eof)
    {
        analysis_.emplace(evmone::baseline::analyze(code, true));
    }
    else
    {
        if (!shared)
        {
            if (const evmalloc::Result<void> r = frame_->prepare(bytes); !r) [[unlikely]]
            {
                status_ = status_of(r.error());
                return;
            }
        }
        const auto& a = frame_->analysis();
        // evmalloc's jumpdest bits are evmone's BitsetSpan layout: bit pc % 64 of word pc / 64.
        const std::span<const std::uint64_t> bits = a.jumpdest_bits_span();
        analysis_.emplace(evmone::bytes_view{a.code().data(), a.code().size()},
            evmone::BitsetSpan{const_cast<std::uint64_t*>(bits.data())});
    }
    frames.pending_ = this;
}

CallFrame::~CallFrame()
{
    if (frames_.pending_ == this)
        frames_.pending_ = nullptr;
    frame_.reset();
    frames_.call_ended();
}

StateBinding::StateBinding(Frames& frames, evmone::ExecutionState& state,
    const evmone::baseline::CodeAnalysis& analysis) noexcept
  : frames_{frames}, state_{state}
{
    if (CallFrame* pending = frames.pending_;
        pending != nullptr && &*pending->analysis_ == &analysis) [[likely]]
    {
        frames.pending_ = nullptr;
        Frame& frame = *pending->frame_;
        bind_state(state, frame.stack().data(), frame.memory());
        return;
    }
    // Code analysed by the caller (evmone-bench's execute rows): a stack and a Memory only.
    const evmalloc::Result<FramePool::Lease> own = frames.pool_.acquire_stack();
    if (!own) [[unlikely]]
    {
        status_ = status_of(own.error());
        return;
    }
    own_ = *own;
    bind_state(state, reinterpret_cast<intx::uint256*>(own->buffer), own->memory->memory);
}

StateBinding::~StateBinding()
{
    unbind_state(state_);
    if (own_)
    {
        frames_.pool_.release(*own_);
        frames_.call_ended();
    }
}
}  // namespace evmalloc_evmone
