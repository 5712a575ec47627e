// evmalloc: one call frame, set up at the call site, interpreted without allocating.
//
//     auto frame = StackFrame<>::init(code.size(), pool);   // one pooled buffer, one Memory
//     if (!frame) return frame.error();                      // code_too_large, call_depth_exceeded, out_of_memory
//     if (auto r = frame->prepare(code, op_table); !r)       // padded code, analysis, ops, metadata
//         return r.error();
//     interpret(*frame);                                     // only memory() may allocate
//     // ~StackFrame: buffer and Memory go back to the pool (LIFO)
//
// The traits choose the frame's code part (code_part.hpp: the CodePart concept): the stack plus
// one of the built-in parts, or the interpreter's own (Traits::CodePart), whose prepare() runs
// into the frame's buffer (or once into a shared entry) and whose View code_part() returns.
// An instruction frame's prepare(code, table) copies the code into the frame's padded area (the
// code, then PaddedCode::padding zero bytes) and analyses that copy, filling in the same pass
// ops()[i] = table[opcode of instruction i] (the implicit STOP gets table[0x00]) and
// metadata()[i] = the immediate of PUSH1..PUSH8 as a big-endian integer (bytes past the end of
// the code read as zero), else 0. A jumpdest frame's
// prepare(code) copies the code and writes the jumpdest bits, nothing per instruction. Either
// way analysis().code() views the padded copy, so an interpreter may read a PUSH32 immediate or
// the next opcode past the end of the code without a bounds check.
//
// init() selects the tier for the code size and takes one buffer of that tier and one Memory
// from the pool; code above the largest tier (when the pool's max_code_size allows it) gets a
// buffer carved for its own size. The stack sits at the start of the buffer; prepare() carves
// the code part after it.
//
// On a shared analysis (analysis_cache.hpp) the call site is one step:
//
//     auto frame = StackFrame<>::init(code, code_hash, op_table, table_id, pool, cache);
//                                    // or without the hash; table_id: table_id.hpp
//
// and the frame comes back prepared: its code part is the cache's entry, pinned until the frame
// goes, and its own buffer (stack_buffer_size()) holds only the stack.
//
// A moved-from frame owns nothing: no buffer, no Memory, no pinned entry, code_capacity() and
// buffer_size() 0, not prepared. prepare() on it is Errc::buffer_too_small (it holds no buffer)
// in every build, and a contract violation reported in debug builds, as are stack(), memory(),
// analysis(), ops() and metadata() on it. Move assignment releases what the target held first
// (a move onto itself changes nothing).
//
// Under AddressSanitizer the code part of a frame's buffer is poisoned until prepare(), and
// afterwards everything in it that the prepared code does not use (frame_layout.hpp).
//
// Invariant: a frame that owns a buffer has pool_ != nullptr, else lease_ is empty and
// code_capacity_ is 0; stack().data() is the start of its buffer; is_prepared() iff analysis()
// (and ops(), metadata()) describe the code given to the last successful prepare() or the
// pinned entry (pin_.entry != nullptr).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "analysis_cache.hpp"
#include "code_hash.hpp"
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
    using Pool = FramePool<Traits>;
    /// The code part (code_part.hpp): Traits::CodePart, or a built-in one.
    using CodePartType = FrameCodePart<Traits>;
    /// What the code part hands the interpreter (code_part()).
    using View = typename CodePartType::View;
    /// The built-in instruction part's element types (void for other parts).
    using Op = typename detail::PartOp<CodePartType>::type;
    using Metadata = typename detail::PartOp<CodePartType>::metadata;
    /// What analysis() returns: Analysis, JumpdestAnalysis, or an interpreter-defined View.
    using AnalysisType = FrameAnalysis<Traits>;
    /// What prepare() reads besides the code: the part's Table (std::array<Op, 256> in an
    /// instruction frame). A part without one (a jumpdest frame) takes none; the type is then
    /// std::array<const void*, 256>, unused.
    using OpTable = std::conditional_t<std::is_void_v<typename CodePartType::Table>,
        std::array<const void*, 256>, detail::table_or_int<CodePartType>>;
    /// True when the part takes a table (prepare(code, table), init(..., table, ...)).
    static constexpr bool takes_table = !std::is_void_v<typename CodePartType::Table>;

    /// A frame for code of `code_size` bytes: one buffer of select_tier(code_size) (or, above
    /// the largest tier, one carved for code_size bytes) and one cleared Memory from `pool`,
    /// ready for prepare().
    /// \returns Errc::code_too_large when code_size > pool.config().max_code_size;
    ///          Errc::call_depth_exceeded when pool already has max_frames alive;
    ///          Errc::out_of_memory when the pool's upstream fails.
    ///          On error the pool is as it was.
    /// \requires `pool` outlives the frame.
    [[nodiscard]] static Result<StackFrame> init(std::size_t code_size, Pool& pool) noexcept
    {
        if (code_size <= max_code_size) [[likely]]
        {
            const Tier tier = *select_tier(code_size);
            if (code_size > pool.config().max_code_size) [[unlikely]]
                return Errc::code_too_large;
            Result<typename Pool::Lease> lease = pool.acquire(tier);
            if (!lease) [[unlikely]]
                return lease.error();
            return StackFrame{pool, *lease, tier, evmalloc::code_capacity(tier)};
        }
        Result<typename Pool::Lease> lease = pool.acquire_oversize(code_size);
        if (!lease) [[unlikely]]
            return lease.error();
        return StackFrame{pool, *lease, Tier::kb128, code_size};
    }

    /// A frame for `code` whose code part is the shared entry of `cache` (AnalysisCache or
    /// ConcurrentAnalysisCache): found by the trusted key `hash`, or built on a miss and
    /// inserted; pinned until the frame goes. The frame is_prepared() at once; its buffer holds
    /// only the stack (a pooled stack-only buffer). A miss the cache's admission policy does not
    /// admit runs on the per-frame path instead (init(code.size(), pool) + prepare: the tier's
    /// buffer, no entry). Instruction frames take the op table and the TableId the entry is
    /// keyed by (table_id.hpp: the same code through another table is another entry); without
    /// an id, table_id(table) is computed on every call (one hash of the table: compute the id
    /// once and pass it on hot paths).
    /// \returns Errc::code_too_large when code.size() > pool.config().max_code_size;
    ///          Errc::call_depth_exceeded when pool already has max_frames alive;
    ///          Errc::code_hash_mismatch when the entry under `hash` has other code (another
    ///          size, or other first or last 32 bytes; in debug builds any other byte);
    ///          Errc::out_of_memory when an upstream failed (nothing inserted).
    ///          On error the pool and the cache are as they were.
    /// \requires `hash` is the keccak-256 of exactly `code`; `id` names `table` (table_id.hpp);
    ///           `pool` and `cache` outlive the frame.
    template <class Cache>
    [[nodiscard]] static Result<StackFrame> init(std::span<const std::uint8_t> code,
        const CodeHash& hash, const OpTable& table, TableId id, Pool& pool,
        Cache& cache) noexcept requires takes_table
    {
        return init_shared(code, &hash, pool, cache, id, table);
    }

    /// As above, the table named by its contents: table_id(table), hashed on every call.
    template <class Cache>
    [[nodiscard]] static Result<StackFrame> init(std::span<const std::uint8_t> code,
        const CodeHash& hash, const OpTable& table, Pool& pool, Cache& cache) noexcept
        requires(takes_table&& hashable_table<OpTable>)
    {
        return init_shared(code, &hash, pool, cache, table_id(table), table);
    }

    /// As above, found by the verified key: a fast hash of the bytes, and the bytes compared on
    /// every hit (for callers with no code hash, such as an EVMC VM).
    template <class Cache>
    [[nodiscard]] static Result<StackFrame> init(std::span<const std::uint8_t> code,
        const OpTable& table, TableId id, Pool& pool, Cache& cache) noexcept requires takes_table
    {
        return init_shared(code, nullptr, pool, cache, id, table);
    }

    /// As above, the table named by its contents: table_id(table), hashed on every call.
    template <class Cache>
    [[nodiscard]] static Result<StackFrame> init(
        std::span<const std::uint8_t> code, const OpTable& table, Pool& pool, Cache& cache) noexcept
        requires(takes_table&& hashable_table<OpTable>)
    {
        return init_shared(code, nullptr, pool, cache, table_id(table), table);
    }

    /// A frame whose part takes no table (a jumpdest frame) on a shared entry, by the trusted
    /// key. As the instruction frame's.
    template <class Cache>
    [[nodiscard]] static Result<StackFrame> init(std::span<const std::uint8_t> code,
        const CodeHash& hash, Pool& pool, Cache& cache) noexcept requires(!takes_table)
    {
        return init_shared(code, &hash, pool, cache, TableId{});
    }

    /// As above, by the verified key.
    template <class Cache>
    [[nodiscard]] static Result<StackFrame> init(std::span<const std::uint8_t> code, Pool& pool,
        Cache& cache) noexcept requires(!takes_table)
    {
        return init_shared(code, nullptr, pool, cache, TableId{});
    }

    StackFrame(const StackFrame&) = delete;
    StackFrame& operator=(const StackFrame&) = delete;

    /// Takes everything `other` owns (buffer, Memory, pinned entry, analysis); `other` owns
    /// nothing after (see the top of this header; its destructor is a no-op).
    StackFrame(StackFrame&& other) noexcept
      : pool_{other.pool_},
        lease_{other.lease_},
        stack_{other.stack_},
        view_{other.view_},
        pin_{other.pin_},
        code_capacity_{other.code_capacity_},
        tier_{other.tier_},
        prepared_{other.prepared_}
    {
        other.disown();
    }

    /// Releases this frame's buffer, Memory and pinned entry, then takes `other`'s. A move onto
    /// itself changes nothing.
    StackFrame& operator=(StackFrame&& other) noexcept
    {
        if (this != &other)
        {
            release();
            pool_ = other.pool_;
            lease_ = other.lease_;
            stack_ = other.stack_;
            view_ = other.view_;
            pin_ = other.pin_;
            code_capacity_ = other.code_capacity_;
            tier_ = other.tier_;
            prepared_ = other.prepared_;
            other.disown();
        }
        return *this;
    }

    /// Gives the buffer and the Memory back to the pool, and unpins a shared entry.
    ~StackFrame() { release(); }

    /// The call-site step of an instruction frame: the padded copy of `code`, its analysis, and
    /// ops() and metadata() through `table` (for an interpreter-defined part: its prepare() with
    /// `table`, into the frame's buffer). May be called again with other code that fits.
    /// \returns Errc::code_too_large when code.size() is larger than the frame holds (its tier,
    ///          or the size init() was given above the largest tier; a frame on a shared entry
    ///          holds no code of its own); Errc::buffer_too_small when the frame owns no buffer
    ///          (moved from); then nothing changes (a previous prepare stays valid). An
    ///          interpreter-defined part's own error from its prepare() comes back as it is, and
    ///          the frame is then not prepared (the built-in parts have none left here).
    /// \requires the frame owns a buffer (was not moved from; checked in debug builds).
    [[nodiscard]] Result<void> prepare(
        std::span<const std::uint8_t> code, const OpTable& table) noexcept requires takes_table
    {
        return prepare_with(code, table);
    }

    /// The call-site step of a jumpdest frame: the padded copy of `code` and its jumpdest bits
    /// (for an interpreter-defined part without a table: its prepare()).
    /// \returns as prepare(code, table) above.
    [[nodiscard]] Result<void> prepare(std::span<const std::uint8_t> code) noexcept
        requires(!takes_table)
    {
        return prepare_with(code);
    }

    /// True after a successful prepare(): the interpreter's precondition.
    [[nodiscard]] bool is_prepared() const noexcept { return prepared_; }
    /// The tier of the code size (kb128 for code above the largest tier).
    [[nodiscard]] Tier tier() const noexcept { return tier_; }
    /// Bytes of this frame's buffer: frame_buffer_size<Traits>(tier()), for code above the
    /// largest tier frame_buffer_bytes<Traits>(its size), for a frame on a shared entry
    /// stack_buffer_size<Traits>().
    [[nodiscard]] std::size_t buffer_size() const noexcept { return lease_.bytes; }
    /// The largest code prepare() takes: code_capacity(tier()), or the size init() was given
    /// above the largest tier; 0 for a frame on a shared entry.
    [[nodiscard]] std::size_t code_capacity() const noexcept { return code_capacity_; }

    /// The EVM stack (1024 words at the start of the frame buffer, empty after init).
    /// \requires the frame owns a buffer (was not moved from; checked in debug builds).
    [[nodiscard]] Stack<Word>& stack() noexcept
    {
        EVMALLOC_ASSERT_MSG(pool_ != nullptr, owns_nothing);
        return stack_;
    }
    [[nodiscard]] const Stack<Word>& stack() const noexcept
    {
        EVMALLOC_ASSERT_MSG(pool_ != nullptr, owns_nothing);
        return stack_;
    }

    /// The prepared code part's view (its code() is the padded copy). \requires is_prepared()
    [[nodiscard]] const View& code_part() const noexcept
    {
        EVMALLOC_ASSERT_MSG(prepared_, not_prepared);
        return view_;
    }

    /// The analysis of the prepared code (an interpreter-defined part: its view); its code() is
    /// the padded copy. \requires is_prepared()
    [[nodiscard]] const AnalysisType& analysis() const noexcept
    {
        EVMALLOC_ASSERT_MSG(prepared_, not_prepared);
        if constexpr (detail::is_instruction_part<CodePartType>)
            return view_.analysis;
        else
            return view_;
    }

    /// ops()[i]: the handler of instruction i; instruction_count() entries.
    /// \requires is_prepared()
    [[nodiscard]] std::span<const Op> ops()
        const noexcept requires detail::is_instruction_part<CodePartType>
    {
        EVMALLOC_ASSERT_MSG(prepared_, not_prepared);
        return {view_.ops, view_.analysis.instruction_count()};
    }

    /// metadata()[i]: the PUSH1..PUSH8 immediate of instruction i, else 0;
    /// instruction_count() entries. \requires is_prepared()
    [[nodiscard]] std::span<const Metadata> metadata()
        const noexcept requires detail::is_instruction_part<CodePartType>
    {
        EVMALLOC_ASSERT_MSG(prepared_, not_prepared);
        return {view_.metadata, view_.analysis.instruction_count()};
    }

    /// The EVM memory of this call: size 0 after init, its capacity kept from earlier calls.
    /// \requires the frame owns a buffer (was not moved from; checked in debug builds).
    [[nodiscard]] Memory& memory() noexcept
    {
        EVMALLOC_ASSERT_MSG(pool_ != nullptr, owns_nothing);
        return lease_.memory->memory;
    }
    [[nodiscard]] const Memory& memory() const noexcept
    {
        EVMALLOC_ASSERT_MSG(pool_ != nullptr, owns_nothing);
        return lease_.memory->memory;
    }

private:
    using Lease = typename Pool::Lease;

    static constexpr const char* owns_nothing = "StackFrame: the frame owns no buffer (moved from)";
    static constexpr const char* not_prepared = "StackFrame: the frame is not prepared";

    /// \requires code_capacity <= Analysis::max_analysable_size (the pool's max_code_size is).
    StackFrame(Pool& pool, const Lease& lease, Tier tier, std::size_t code_capacity) noexcept
      : pool_{&pool},
        lease_{lease},
        stack_{{reinterpret_cast<Word*>(lease.buffer), Stack<Word>::capacity}},
        code_capacity_{static_cast<std::uint32_t>(code_capacity)},
        tier_{tier}
    {
        EVMALLOC_ASSERT(code_capacity <= Analysis::max_analysable_size);
        poison_code_part<Traits>({lease.buffer, lease.bytes});  // nothing prepared yet
    }

    /// What a move leaves behind: a frame that owns nothing (what it owned went elsewhere). The
    /// view stays as it was, unreachable: not prepared.
    void disown() noexcept
    {
        pool_ = nullptr;
        lease_.buffer = nullptr;
        lease_.bytes = 0;
        stack_ = Stack<Word>{};
        pin_ = {};
        code_capacity_ = 0;
        prepared_ = false;
    }

    template <class Cache, class... Table>
    static Result<StackFrame> init_shared(std::span<const std::uint8_t> code, const CodeHash* hash,
        Pool& pool, Cache& cache, TableId id, const Table&... table) noexcept
    {
        if (code.size() > pool.config().max_code_size) [[unlikely]]
            return Errc::code_too_large;
        if (pool.active() >= pool.config().max_frames) [[unlikely]]
            return Errc::call_depth_exceeded;
        Result<detail::PinnedEntry<Traits>> pinned = cache.pin(code, hash, id, table...);
        if (!pinned) [[unlikely]]
            return pinned.error();
        if (pinned->entry == nullptr)  // not admitted: the per-frame path
        {
            Result<StackFrame> frame = init(code.size(), pool);
            if (frame)
            {
                // The tier fits code.size(): only the code part's own prepare() can say no.
                if (const Result<void> prepared = frame->prepare_with(code, table...); !prepared)
                    [[unlikely]]
                    frame = prepared.error();
            }
            if (!frame) [[unlikely]]
            {
                cache.abandon(*pinned);
                return frame.error();
            }
            cache.commit(*pinned);
            return frame;
        }
        const Result<Lease> lease = pool.acquire_stack();
        if (!lease) [[unlikely]]
        {
            cache.abandon(*pinned);
            return lease.error();
        }
        const auto* const e = cache.commit(*pinned);
        const Tier tier = code.size() <= max_code_size ? *select_tier(code.size()) : Tier::kb128;
        StackFrame frame{pool, *lease, tier, 0};
        frame.view_ = e->view;
        frame.pin_ = pinned->pin;
        frame.prepared_ = true;
        return frame;
    }

    template <class... Table>
    Result<void> prepare_with(std::span<const std::uint8_t> code, const Table&... table) noexcept
    {
        EVMALLOC_ASSERT_MSG(pool_ != nullptr, owns_nothing);
        if (code.size() > code_capacity_ || pin_.entry != nullptr || pool_ == nullptr) [[unlikely]]
            return pool_ == nullptr ? Errc::buffer_too_small : Errc::code_too_large;
        const std::span<std::byte> buffer{lease_.buffer, lease_.bytes};
        poison_unused<Traits>(buffer, code.size());  // what the part may write is addressable
        const Result<View> view = detail::prepare_code<Traits>(
            code_part_block<Traits>(buffer, code_capacity_), code, table...);
        if (!view) [[unlikely]]
        {
            // A built-in part does not fail here (the block is sized for code_capacity_); an
            // interpreter-defined one may. The frame is not prepared then.
            prepared_ = false;
            return view.error();
        }
        view_ = *view;
        prepared_ = true;
        return {};
    }

    void release() noexcept
    {
        if (pool_ != nullptr)
        {
            pool_->release(lease_);
            pool_ = nullptr;
            prepared_ = false;
        }
        if (pin_.entry != nullptr)
        {
            const detail::CachePin pin = std::exchange(pin_, {});
            pin.unpin(pin.entry);
        }
    }

    Pool* pool_ = nullptr;
    Lease lease_{};
    Stack<Word> stack_{};
    View view_{};
    detail::CachePin pin_{};           // the shared entry this frame runs, if any
    std::uint32_t code_capacity_ = 0;  // <= Analysis::max_analysable_size
    Tier tier_ = Tier::kb4;
    bool prepared_ = false;
};
}  // namespace evmalloc
