// evmalloc: one call frame, set up at the call site, interpreted without allocating.
//
//     auto frame = StackFrame<>::init(code.size(), pool);   // one pooled buffer, one Memory
//     if (!frame) return frame.error();                      // code_too_large, call_depth_exceeded, out_of_memory
//     if (auto r = frame->prepare(code, op_table); !r)       // analysis, ops, metadata
//         return r.error();
//     interpret(*frame);                                     // only memory() may allocate
//     // ~StackFrame: buffer and Memory go back to the pool (LIFO)
//
// init() selects the tier for the code size, takes one frame buffer of that tier and one
// Memory from the pool and carves the buffer (Stack | Analysis buffers | Ops | Metadata).
// prepare() analyses the code into the carved buffers and, in the same pass over the code,
// fills for every instruction i ops()[i] = op_table[opcode] (the implicit STOP gets
// op_table[0x00]) and metadata()[i] = the immediate of PUSH1..PUSH8 as a big-endian integer
// (bytes past the end of the code read as zero), else 0. The interpreter reads those arrays
// and never allocates, except when memory() grows.
//
// Invariant: a frame that owns a buffer has pool_ != nullptr; stack().data() is the start of
// its buffer; is_prepared() iff analysis(), ops() and metadata() describe the last code given
// to a successful prepare().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "analysis.hpp"
#include "config.hpp"
#include "frame_layout.hpp"
#include "frame_pool.hpp"
#include "memory.hpp"
#include "result.hpp"
#include "stack.hpp"
#include "tier.hpp"
#include "traits.hpp"

namespace evmalloc
{
template <class Traits = DefaultTraits>
class StackFrame
{
public:
    using Word = typename Traits::Word;
    using Op = typename Traits::Op;
    using Metadata = typename Traits::Metadata;
    using Pool = FramePool<Traits>;
    using OpTable = std::array<Op, 256>;

    /// A frame for code of `code_size` bytes: one buffer of select_tier(code_size) and one
    /// cleared Memory from `pool`, carved and ready for prepare().
    /// \returns Errc::code_too_large when code_size > max_code_size;
    ///          Errc::call_depth_exceeded when pool already has max_frames alive;
    ///          Errc::out_of_memory when the pool's upstream throws.
    ///          On error the pool is as it was.
    /// \requires `pool` outlives the frame.
    [[nodiscard]] static Result<StackFrame> init(std::size_t code_size, Pool& pool) noexcept
    {
        const Result<Tier> tier = select_tier(code_size);
        if (!tier) [[unlikely]]
            return tier.error();
        Result<typename Pool::Lease> lease = pool.acquire(*tier);
        if (!lease) [[unlikely]]
            return lease.error();
        return StackFrame{pool, *tier, *lease};
    }

    StackFrame(const StackFrame&) = delete;
    StackFrame& operator=(const StackFrame&) = delete;

    /// Takes `other`'s buffer and Memory; `other` owns nothing after (its destructor is a no-op).
    StackFrame(StackFrame&& other) noexcept
      : pool_{std::exchange(other.pool_, nullptr)},
        memory_{other.memory_},
        ops_{other.ops_},
        metadata_{other.metadata_},
        stack_{other.stack_},
        analysis_{other.analysis_},
        tier_{other.tier_},
        prepared_{std::exchange(other.prepared_, false)}
    {}

    /// Releases this frame's buffer and Memory, then takes `other`'s.
    StackFrame& operator=(StackFrame&& other) noexcept
    {
        if (this != &other)
        {
            release();
            pool_ = std::exchange(other.pool_, nullptr);
            memory_ = other.memory_;
            ops_ = other.ops_;
            metadata_ = other.metadata_;
            stack_ = other.stack_;
            analysis_ = other.analysis_;
            tier_ = other.tier_;
            prepared_ = std::exchange(other.prepared_, false);
        }
        return *this;
    }

    /// Gives the buffer and the Memory back to the pool.
    ~StackFrame() { release(); }

    /// The call-site step: analyses `code` into the frame's buffers and fills ops() and
    /// metadata() through `table`. May be called again with other code of the tier.
    /// \returns Errc::code_too_large when code.size() > max_code_size or is larger than the
    ///          frame's tier holds; then nothing changes (a previous prepare stays valid).
    /// \requires the frame owns a buffer (was not moved from); `code` outlives the use of
    /// analysis().
    [[nodiscard]] Result<void> prepare(std::span<const std::uint8_t> code, const OpTable& table) noexcept
    {
        EVMALLOC_ASSERT(pool_ != nullptr);
        if (code.size() > code_capacity(tier_)) [[unlikely]]
            return Errc::code_too_large;  // also covers code.size() > max_code_size
        const FrameSpans<Traits> spans = carve_frame<Traits>(buffer(), tier_);
        const Result<Analysis> analysis =
            Analysis::prepare(code, spans.analysis, table, spans.ops, spans.metadata);
        if (!analysis) [[unlikely]]
            return analysis.error();  // not reachable: the carve is sized for the tier
        analysis_ = *analysis;
        prepared_ = true;
        return {};
    }

    /// True after a successful prepare(): the interpreter's precondition.
    [[nodiscard]] bool is_prepared() const noexcept { return prepared_; }
    /// The tier init() chose for the code size.
    [[nodiscard]] Tier tier() const noexcept { return tier_; }
    /// Bytes of this frame's buffer: frame_buffer_size<Traits>(tier()).
    [[nodiscard]] std::size_t buffer_size() const noexcept { return frame_buffer_size<Traits>(tier_); }

    /// The EVM stack (1024 words in the frame buffer, empty after init).
    [[nodiscard]] Stack<Word>& stack() noexcept { return stack_; }
    [[nodiscard]] const Stack<Word>& stack() const noexcept { return stack_; }

    /// The analysis of the prepared code. \requires is_prepared()
    [[nodiscard]] const Analysis& analysis() const noexcept
    {
        EVMALLOC_ASSERT(prepared_);
        return analysis_;
    }

    /// ops()[i]: the handler of instruction i; instruction_count() entries.
    /// \requires is_prepared()
    [[nodiscard]] std::span<Op> ops() const noexcept
    {
        EVMALLOC_ASSERT(prepared_);
        return {ops_, analysis_.instruction_count()};
    }

    /// metadata()[i]: the PUSH1..PUSH8 immediate of instruction i, else 0;
    /// instruction_count() entries. \requires is_prepared()
    [[nodiscard]] std::span<Metadata> metadata() const noexcept
    {
        EVMALLOC_ASSERT(prepared_);
        return {metadata_, analysis_.instruction_count()};
    }

    /// The EVM memory of this call: size 0 after init, its capacity kept from earlier calls.
    /// \requires the frame owns a buffer (was not moved from).
    [[nodiscard]] Memory& memory() noexcept
    {
        EVMALLOC_ASSERT(memory_ != nullptr);
        return memory_->memory;
    }
    [[nodiscard]] const Memory& memory() const noexcept
    {
        EVMALLOC_ASSERT(memory_ != nullptr);
        return memory_->memory;
    }

private:
    StackFrame(Pool& pool, Tier tier, typename Pool::Lease lease) noexcept
      : StackFrame{pool, tier, lease, carve_frame<Traits>({lease.buffer, frame_buffer_size<Traits>(tier)}, tier)}
    {}

    StackFrame(Pool& pool, Tier tier, typename Pool::Lease lease, const FrameSpans<Traits>& spans) noexcept
      : pool_{&pool},
        memory_{lease.memory},
        ops_{spans.ops.data()},
        metadata_{spans.metadata.data()},
        stack_{spans.stack},
        tier_{tier},
        prepared_{false}
    {
        EVMALLOC_ASSERT(static_cast<void*>(spans.stack.data()) == static_cast<void*>(lease.buffer));
    }

    // The frame buffer: the stack is carved first, at its start.
    [[nodiscard]] std::span<std::byte> buffer() const noexcept
    {
        return {reinterpret_cast<std::byte*>(stack_.data()), frame_buffer_size<Traits>(tier_)};
    }

    void release() noexcept
    {
        if (pool_ != nullptr)
        {
            pool_->release(tier_, {buffer().data(), memory_});
            pool_ = nullptr;
            prepared_ = false;
        }
    }

    // Pointers first, then the small fields: no padding between members.
    Pool* pool_;
    typename Pool::MemorySlot* memory_;
    Op* ops_;
    Metadata* metadata_;
    Stack<Word> stack_;
    Analysis analysis_{};
    Tier tier_;
    bool prepared_;
};
}  // namespace evmalloc
