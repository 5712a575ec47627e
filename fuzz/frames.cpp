// Fuzz target `frames`: random trees of nested calls on one FramePool, of instruction frames
// (DefaultTraits) or jumpdest frames (Op = Metadata = void), under a FramePoolConfig the input
// picks (max_frames, retain_per_tier, max_code_size above or below the largest tier,
// memory_retain_bytes, memory_limit, auto_trim): calls of any code size (every tier, above the
// largest tier, above max_code_size), returns, early releases of frames below the top (also by
// move assignment), memory growth, stack use, re-prepare, trim(), with the upstream failing
// where the input says. Against a model of the pool: every failure is the Errc it must be
// (code_too_large, call_depth_exceeded, out_of_memory) with the pool's state unchanged;
// active / peak / buffers_allocated / retained per tier / retained Memory objects and their
// bytes / bytes_retained exact; buffers reused LIFO, free Memory objects with storage handed
// out before those without (each LIFO), a Memory keeping its capacity within the budget or
// taking the storage of smaller free ones on top; oversize buffers never retained; trim() (and
// auto_trim when the last frame goes) keeping the most recent buffers and the Memory objects
// with storage first; retained buffers poisoned, a live frame's code part poisoned but for what
// its prepared code uses; max_code_size clamped to 2^32 - 2; each frame's stack
// and memory its own (patterns kept); every prepared frame's padded code, analysis, ops and
// metadata equal to the reference decoder's; the upstream holding exactly what the frames and
// the pool hold. The input's first bytes are the code the calls run (a contract from the
// corpus is a good seed). Frames on a shared analysis (AnalysisCache, the verified key) run
// beside them: their analysis, ops and metadata equal the per-frame path's reference, their
// stack-only buffers are pooled like the others, a failing cache upstream inserts nothing, and
// prepare() on them is code_too_large. The upstreams fail in the style the input picks (a
// nullptr from a FallibleResource, or std::bad_alloc from a plain std::pmr::memory_resource).
#include "caching_resource.hpp"
#include "check.hpp"
#include "reference.hpp"

#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/stack_frame.hpp>
#include <support/op_table.hpp>
#include <support/pool_state.hpp>
#include <support/recording_resource.hpp>

#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/asan_interface.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <span>
#include <type_traits>
#include <vector>

namespace
{
using evmalloc::Errc;
using evmalloc::FramePool;
using evmalloc::FramePoolConfig;
using evmalloc::Memory;
using evmalloc::StackFrame;
using evmalloc::Tier;
using evmalloc::fuzz::filled;
using evmalloc::test::RecordingResource;

/// A jumpdest frame: stack, padded code and jumpdest bits, no instruction arrays.
struct JumpdestTraits
{
    using Word = evmalloc::Word;
    using Op = void;
    using Metadata = void;
};

template <class Traits>
struct Call
{
    using Frame = StackFrame<Traits>;
    Frame frame;
    std::span<const std::uint8_t> code;  // what it was last prepared with
    std::uint8_t tag;
    std::size_t stack_items = 0;
};

struct FreeMemory
{
    const Memory* memory;  // nullptr: the model has not seen where this slot is
    std::size_t capacity;
};

template <class Traits>
class Harness
{
    using Frame = StackFrame<Traits>;
    using Pool = FramePool<Traits>;
    using Call = ::Call<Traits>;
    static constexpr bool instruction_frame = evmalloc::is_instruction_frame<Traits>;

public:
    Harness(RecordingResource& rec, evmalloc::test::FailureStyle style, FramePoolConfig config,
        std::span<const std::uint8_t> code)
      : rec_{rec},
        config_{Pool::clamped(config)},
        code_{code},
        pool_{rec.upstream(style), config},
        cache_{cache_rec_.upstream(style)}
    {
        FUZZ_CHECK(pool_.config().max_code_size == config_.max_code_size &&
                   config_.max_code_size <= evmalloc::Analysis::max_analysable_size);
    }

    ~Harness()
    {
        while (!calls_.empty())
            release(calls_.size() - 1, false);
        trim();
        check();
    }

    void step(FuzzedDataProvider& in)
    {
        const bool failing = in.ConsumeIntegral<std::uint8_t>() < 40;
        switch (in.ConsumeIntegralInRange<int>(0, 11))
        {
        case 0:
        case 1:
            call(in, failing);
            break;
        case 2:
            shared_call(in, failing);
            break;
        case 3:
        case 4:
            if (!calls_.empty())
                release(calls_.size() - 1, false);
            break;
        case 5:
            if (!calls_.empty())
                release(
                    in.ConsumeIntegralInRange<std::size_t>(0, calls_.size() - 1), in.ConsumeBool());
            break;
        case 6:
        case 7:
            if (!calls_.empty())
                grow(pick(in), in, failing);
            break;
        case 8:
            if (!calls_.empty())
                use_stack(pick(in), in);
            break;
        case 9:
            if (!calls_.empty())
                reprepare(pick(in), in);
            break;
        default:
            trim();
            break;
        }
        check();
    }

private:
    std::size_t pick(FuzzedDataProvider& in) const
    {
        return in.ConsumeBool() ? calls_.size() - 1
                                : in.ConsumeIntegralInRange<std::size_t>(0, calls_.size() - 1);
    }

    // A slice of the input's code of at most `max` bytes: mostly short (each prepare is
    // checked against the reference decoder), sometimes up to `max`.
    std::span<const std::uint8_t> pick_code(FuzzedDataProvider& in, std::size_t max) const
    {
        const std::uint8_t scale = in.ConsumeIntegral<std::uint8_t>();
        max = std::min(max, scale < 200 ? std::size_t{256} : scale < 245 ? std::size_t{2048} : max);
        const std::size_t start = in.ConsumeIntegralInRange<std::size_t>(0, code_.size());
        const std::size_t len =
            in.ConsumeIntegralInRange<std::size_t>(0, std::min(max, code_.size() - start));
        return code_.subspan(start, len);
    }

    FUZZ_NO_COVERAGE static Tier expected_tier(std::size_t n)
    {
        for (const Tier t : evmalloc::all_tiers)
            if (n <= evmalloc::code_capacity(t))
                return t;
        return Tier::kb128;
    }

    FUZZ_NO_COVERAGE void call(FuzzedDataProvider& in, bool failing)
    {
        // The size the frame is asked for: mostly the small tiers, sometimes above the largest
        // tier (oversize, up to max_code_size) or above max_code_size.
        static constexpr std::size_t tier_weights[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7};
        const std::size_t choice =
            tier_weights[in.ConsumeIntegralInRange<std::size_t>(0, std::size(tier_weights) - 1)];
        const std::span<const std::uint8_t> code =
            pick_code(in, evmalloc::code_capacity(Tier::kb4));
        std::size_t size = code.size();
        if (choice == 6)
            size = evmalloc::max_code_size + 1 + in.ConsumeIntegralInRange<std::size_t>(0, 70000);
        else if (choice == 7)
            size = config_.max_code_size + in.ConsumeIntegralInRange<std::size_t>(1, 1000);
        else if (in.ConsumeBool())
        {
            const std::size_t cap = evmalloc::code_capacity(static_cast<Tier>(choice));
            size = std::max(size, in.ConsumeIntegralInRange<std::size_t>(cap / 2, cap));
        }

        const evmalloc::test::PoolState before = evmalloc::test::state_of(pool_);
        const std::size_t live_before = rec_.live_count();
        const bool oversize = size > evmalloc::max_code_size;
        const Tier tier = expected_tier(size);
        const std::size_t t = evmalloc::tier_index(tier);
        rec_.set_failing(failing);
        auto frame = Frame::init(size, pool_);
        rec_.set_failing(false);

        Errc expected{};
        bool fails = true;
        if (size > config_.max_code_size)
            expected = Errc::code_too_large;
        else if (calls_.size() >= config_.max_frames)
            expected = Errc::call_depth_exceeded;
        else if (failing && (oversize || buffers_[t].empty() || no_free_memory()))
            expected = Errc::out_of_memory;
        else
            fails = false;
        if (fails)
        {
            FUZZ_CHECK(!frame.has_value() && frame.error() == expected);
            FUZZ_CHECK(evmalloc::test::state_of(pool_) == before);
            FUZZ_CHECK(rec_.live_count() == live_before);
            return;
        }
        FUZZ_CHECK(frame.has_value());
        FUZZ_CHECK(frame->tier() == tier);
        FUZZ_CHECK(frame->buffer_size() == (oversize ? evmalloc::frame_buffer_bytes<Traits>(size)
                                                     : evmalloc::frame_buffer_size<Traits>(tier)));
        FUZZ_CHECK(frame->code_capacity() == (oversize ? size : evmalloc::code_capacity(tier)));
        FUZZ_CHECK(!frame->is_prepared() && frame->stack().empty());
        auto* const buffer = reinterpret_cast<std::uint8_t*>(frame->stack().data());
        FUZZ_CHECK(
            reinterpret_cast<std::uintptr_t>(buffer) % evmalloc::frame_buffer_alignment == 0);
        // The stack is addressable; the code part is poisoned until prepare().
        constexpr std::size_t stack_bytes = evmalloc::detail::code_part_offset<Traits>;
        FUZZ_CHECK(!__asan_region_is_poisoned(buffer, stack_bytes));
        FUZZ_CHECK(__asan_region_is_poisoned(buffer + stack_bytes,
                       frame->buffer_size() - stack_bytes) == buffer + stack_bytes);
        if (!oversize && !buffers_[t].empty())
        {
            FUZZ_CHECK(buffers_[t].back() == buffer);  // LIFO: the one released last
            buffers_[t].pop_back();
        }
        else
            ++allocated_;
        const Memory& m = frame->memory();
        FUZZ_CHECK(m.size() == 0 && m.limit() == config_.memory_limit);
        take_memory(m);
        peak_ = std::max(peak_, calls_.size() + 1);

        const std::uint8_t tag = static_cast<std::uint8_t>(++tags_);
        calls_.push_back({std::move(*frame), {}, tag, 0});
        // Above the largest tier the frame holds its own size: prepare code that long.
        prepare(calls_.back(),
            oversize ? std::span<const std::uint8_t>{big_code().data(), size} : code);
    }

    // A frame on the shared analysis of a slice of the code (verified key).
    FUZZ_NO_COVERAGE void shared_call(FuzzedDataProvider& in, bool failing)
    {
        const std::span<const std::uint8_t> code = pick_code(in, config_.max_code_size + 1);
        const bool cache_failing = in.ConsumeIntegral<std::uint8_t>() < 40;
        const std::vector<std::uint8_t> key(code.begin(), code.end());
        const bool cached = cached_.count(key) != 0;
        const evmalloc::test::PoolState before = evmalloc::test::state_of(pool_);
        const std::size_t live_before = rec_.live_count();
        const std::size_t entries_before = cache_.entries();
        rec_.set_failing(failing);
        cache_rec_.set_failing(cache_failing);
        auto frame = [&] {
            if constexpr (instruction_frame)
                return Frame::init(code, evmalloc::test::distinct_op_table(), pool_, cache_);
            else
                return Frame::init(code, pool_, cache_);
        }();
        rec_.set_failing(false);
        cache_rec_.set_failing(false);

        Errc expected{};
        bool fails = true;
        if (code.size() > config_.max_code_size)
            expected = Errc::code_too_large;
        else if (calls_.size() >= config_.max_frames)
            expected = Errc::call_depth_exceeded;
        else if ((cache_failing && !cached) || (failing && (stacks_.empty() || no_free_memory())))
            expected = Errc::out_of_memory;
        else
            fails = false;
        if (fails)
        {
            FUZZ_CHECK(!frame.has_value() && frame.error() == expected);
            FUZZ_CHECK(evmalloc::test::state_of(pool_) == before);
            FUZZ_CHECK(rec_.live_count() == live_before);
            FUZZ_CHECK(cache_.entries() == entries_before);
            return;
        }
        FUZZ_CHECK(frame.has_value() && frame->is_prepared());
        FUZZ_CHECK(frame->buffer_size() == evmalloc::stack_buffer_size<Traits>() &&
                   frame->code_capacity() == 0);
        auto* const buffer = reinterpret_cast<std::uint8_t*>(frame->stack().data());
        if (!stacks_.empty())
        {
            FUZZ_CHECK(stacks_.back() == buffer);
            stacks_.pop_back();
        }
        else
            ++allocated_;
        take_memory(frame->memory());
        cached_.insert(key);
        FUZZ_CHECK(cache_.entries() == cached_.size());
        peak_ = std::max(peak_, calls_.size() + 1);
        const std::uint8_t tag = static_cast<std::uint8_t>(++tags_);
        calls_.push_back({std::move(*frame), code, tag, 0});
        check_prepared(calls_.back());
        FUZZ_CHECK(cache_.pinned() == shared_frames());
    }

    // The entries live frames pin: the distinct codes of the frames on shared entries.
    FUZZ_NO_COVERAGE std::size_t shared_frames() const
    {
        std::set<std::vector<std::uint8_t>> codes;
        for (const Call& c : calls_)
            if (c.frame.code_capacity() == 0 &&
                c.frame.buffer_size() == evmalloc::stack_buffer_size<Traits>())
                codes.emplace(c.code.begin(), c.code.end());
        return codes.size();
    }

    /// max_code_size + 2 bytes of code for the frames above the largest tier.
    static const std::vector<std::uint8_t>& big_code()
    {
        static const std::vector<std::uint8_t> code = [] {
            std::vector<std::uint8_t> c(evmalloc::max_code_size + 80000);
            for (std::size_t i = 0; i < c.size(); ++i)
                c[i] = static_cast<std::uint8_t>(i % 7 == 0 ? 0x5B : i % 11 == 0 ? 0x61 : i);
            return c;
        }();
        return code;
    }

    static evmalloc::Result<void> prepare_frame(Frame& f, std::span<const std::uint8_t> code)
    {
        if constexpr (instruction_frame)
            return f.prepare(code, evmalloc::test::distinct_op_table());
        else
            return f.prepare(code);
    }

    FUZZ_NO_COVERAGE void prepare(Call& c, std::span<const std::uint8_t> code)
    {
        const auto r = prepare_frame(c.frame, code);
        FUZZ_CHECK(r.has_value() && c.frame.is_prepared());
        c.code = code;
        check_prepared(c);
    }

    FUZZ_NO_COVERAGE void check_prepared(const Call& c) const
    {
        using evmalloc::fuzz::same_elements;
        const auto ref = evmalloc::fuzz::reference_decode(c.code);
        const auto& a = c.frame.analysis();
        const std::size_t n = c.code.size();
        // The padded copy: the code, then PaddedCode::padding zero bytes.
        FUZZ_CHECK(a.code().size() == n && a.code().data() != c.code.data());
        FUZZ_CHECK(same_elements(a.code().data(), c.code.data(), n));
        FUZZ_CHECK(filled(a.code().data() + n, evmalloc::PaddedCode::padding, 0));
        if (c.frame.code_capacity() != 0)  // the frame's own code part (not a shared entry)
        {
            // What the code uses is addressable, the byte after its padding is not.
            FUZZ_CHECK(!__asan_region_is_poisoned(
                const_cast<std::uint8_t*>(a.code().data()), n + evmalloc::PaddedCode::padding));
            FUZZ_CHECK(
                __asan_address_is_poisoned(a.code().data() + n + evmalloc::PaddedCode::padding));
        }
        FUZZ_CHECK(a.jumpdest_bits_span().size() == ref.jumpdest_bits.size());
        FUZZ_CHECK(same_elements(
            a.jumpdest_bits_span().data(), ref.jumpdest_bits.data(), ref.jumpdest_bits.size()));
        FUZZ_CHECK(!a.is_jumpdest(n) && !a.is_jumpdest(~std::uint64_t{0}));
        if (n != 0)
            FUZZ_CHECK(a.is_jumpdest(n - 1) == ref.is_jumpdest(n - 1));
        if constexpr (instruction_frame)
        {
            const std::size_t count = ref.inst_to_pc.size();
            const auto& table = evmalloc::test::distinct_op_table();
            FUZZ_CHECK(a.instruction_count() == count);
            FUZZ_CHECK(same_elements(a.inst_to_pc_span().data(), ref.inst_to_pc.data(), count));
            FUZZ_CHECK(same_elements(a.pc_to_inst_span().data(), ref.pc_to_inst.data(), n + 1));
            FUZZ_CHECK(c.frame.ops().size() == count && c.frame.metadata().size() == count);
            std::vector<typename Frame::Op> ops(count);
            for (std::size_t i = 0; i < count; ++i)
                ops[i] = table[ref.opcode[i]];
            FUZZ_CHECK(same_elements(c.frame.ops().data(), ops.data(), count));
            FUZZ_CHECK(same_elements(c.frame.metadata().data(), ref.push_value.data(), count));
        }
    }

    // Code of the frame's tier again, or code too large for it (nothing changes then).
    FUZZ_NO_COVERAGE void reprepare(std::size_t i, FuzzedDataProvider& in)
    {
        Call& c = calls_[i];
        if (c.frame.code_capacity() == 0)
        {
            // A frame on a shared entry holds no code of its own: any prepare is refused.
            const auto r = prepare_frame(c.frame, pick_code(in, 64));
            FUZZ_CHECK(!r.has_value() && r.error() == Errc::code_too_large);
            check_prepared(c);
            return;
        }
        if (in.ConsumeBool())
        {
            const std::size_t over = c.frame.code_capacity() + 1;
            const auto r = prepare_frame(c.frame, std::span{big_code()}.first(over));
            FUZZ_CHECK(!r.has_value() && r.error() == Errc::code_too_large);
            FUZZ_CHECK(c.frame.is_prepared());
            check_prepared(c);
            return;
        }
        prepare(c, pick_code(in, c.frame.code_capacity()));
    }

    FUZZ_NO_COVERAGE void grow(std::size_t i, FuzzedDataProvider& in, bool failing)
    {
        Call& c = calls_[i];
        Memory& m = c.frame.memory();
        const std::size_t size = m.size();
        const std::uint8_t reach = in.ConsumeIntegral<std::uint8_t>();
        const std::uint64_t offset = reach < 200 ? in.ConsumeIntegralInRange<std::uint64_t>(0, 8192)
                                     : reach < 250
                                         ? in.ConsumeIntegralInRange<std::uint64_t>(0, 70000)
                                         : in.ConsumeIntegral<std::uint64_t>();
        const std::uint64_t length = in.ConsumeIntegralInRange<std::uint64_t>(0, 2048);
        rec_.set_failing(failing);
        const auto r = m.expand(offset, length);
        rec_.set_failing(false);
        const unsigned __int128 end = static_cast<unsigned __int128>(offset) + length;
        const unsigned __int128 needed = (end + 31) / 32 * 32;
        if (length == 0 || end <= size)
            FUZZ_CHECK(r.has_value() && m.size() == size);
        else if (needed > config_.memory_limit)
            FUZZ_CHECK(
                !r.has_value() && r.error() == Errc::memory_limit_exceeded && m.size() == size);
        else if (!r.has_value())
            FUZZ_CHECK(failing && r.error() == Errc::out_of_memory && m.size() == size);
        else
            FUZZ_CHECK(m.size() == needed && filled(m.data() + size, m.size() - size, 0));
        // The frame's memory holds its own tag everywhere.
        if (m.size() != 0)
        {
            FUZZ_CHECK(size == 0 || filled(m.data(), size, c.tag));
            std::memset(m.data(), c.tag, m.size());
        }
    }

    FUZZ_NO_COVERAGE void use_stack(std::size_t i, FuzzedDataProvider& in)
    {
        Call& c = calls_[i];
        auto& stack = c.frame.stack();
        FUZZ_CHECK(stack.size() == c.stack_items);
        const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 40);
        if (in.ConsumeBool())
        {
            for (std::size_t k = 0; k < n; ++k)
            {
                const auto r = stack.push(evmalloc::Word::from(c.tag));
                if (c.stack_items == stack.capacity)
                {
                    FUZZ_CHECK(!r.has_value() && r.error() == Errc::stack_overflow);
                    break;
                }
                FUZZ_CHECK(r.has_value());
                ++c.stack_items;
            }
        }
        else
        {
            for (std::size_t k = 0; k < n; ++k)
            {
                const auto r = stack.pop();
                if (c.stack_items == 0)
                {
                    FUZZ_CHECK(!r.has_value() && r.error() == Errc::stack_underflow);
                    break;
                }
                FUZZ_CHECK(r.has_value() && *r == evmalloc::Word::from(c.tag));
                --c.stack_items;
            }
        }
    }

    // Releases frame i: by its destructor, or by move-assigning the top frame over it.
    FUZZ_NO_COVERAGE void release(std::size_t i, bool by_assignment)
    {
        Call& c = calls_[i];
        Memory& m = c.frame.memory();
        FUZZ_CHECK(filled(m.data() == nullptr ? nullptr : m.data(), m.size(), c.tag));
        FUZZ_CHECK(c.frame.stack().size() == c.stack_items);
        for (std::size_t k = 0; k < c.stack_items; ++k)
            FUZZ_CHECK(c.frame.stack().data()[k] == evmalloc::Word::from(c.tag));
        const std::size_t capacity = m.capacity();
        const Memory* const memory = &m;
        auto* const buffer = reinterpret_cast<std::uint8_t*>(c.frame.stack().data());
        const std::size_t size = c.frame.buffer_size();
        const std::size_t t = evmalloc::tier_index(c.frame.tier());
        const bool oversize = c.frame.code_capacity() > evmalloc::max_code_size;
        const bool shared =
            c.frame.code_capacity() == 0 && size == evmalloc::stack_buffer_size<Traits>();

        if (by_assignment && i + 1 < calls_.size())
        {
            c.frame = std::move(calls_.back().frame);
            c.code = calls_.back().code;
            c.tag = calls_.back().tag;
            c.stack_items = calls_.back().stack_items;
            FUZZ_CHECK(!calls_.back().frame.is_prepared());
            calls_.pop_back();
            check_prepared(c);
        }
        else
            calls_.erase(calls_.begin() + static_cast<std::ptrdiff_t>(i));

        if (shared)
        {
            stacks_.push_back(buffer);
            FUZZ_CHECK(__asan_address_is_poisoned(buffer) &&
                       __asan_address_is_poisoned(buffer + size - 1));
        }
        else if (!oversize)
        {
            buffers_[t].push_back(buffer);
            FUZZ_CHECK(__asan_address_is_poisoned(buffer) &&
                       __asan_address_is_poisoned(buffer + size - 1));
        }
        give_memory(memory, capacity);
        if (calls_.empty() && config_.auto_trim)
            trim_model();
    }

    bool no_free_memory() const { return warm_.empty() && bare_.empty(); }

    // The Memory a new frame gets: the free one with storage released last, else the one
    // without released last, else a new one.
    FUZZ_NO_COVERAGE void take_memory(const Memory& m)
    {
        std::vector<FreeMemory>& list = !warm_.empty() ? warm_ : bare_;
        if (list.empty())
        {
            FUZZ_CHECK(m.capacity() == 0);
            return;
        }
        FUZZ_CHECK(list.back().memory == nullptr || list.back().memory == &m);
        FUZZ_CHECK(m.capacity() == list.back().capacity);
        list.pop_back();
    }

    // The memory budget: a released Memory keeps its capacity while the free ones stay within
    // it; else the free ones with storage on top that are smaller give theirs if that makes
    // room; else it gives back its own.
    FUZZ_NO_COVERAGE void give_memory(const Memory* memory, std::size_t capacity)
    {
        const std::size_t budget = config_.memory_retain_bytes;
        bool keep = capacity != 0 && capacity <= budget - memory_bytes();
        if (capacity != 0 && !keep && capacity <= budget)
        {
            std::size_t room = budget - memory_bytes();
            std::size_t taken = 0;
            for (auto it = warm_.rbegin(); room < capacity; ++it, ++taken)
            {
                if (it == warm_.rend() || it->capacity >= capacity)
                    break;
                room += it->capacity;
            }
            if (room >= capacity)
            {
                for (; taken != 0; --taken)
                {
                    bare_.push_back({warm_.back().memory, 0});
                    warm_.pop_back();
                }
                keep = true;
            }
        }
        if (keep)
            warm_.push_back({memory, capacity});
        else
            bare_.push_back({memory, 0});
    }

    std::size_t memory_bytes() const
    {
        std::size_t bytes = 0;
        for (const FreeMemory& f : warm_)
            bytes += f.capacity;
        return bytes;
    }

    FUZZ_NO_COVERAGE void trim()
    {
        pool_.trim();
        trim_model();
    }

    FUZZ_NO_COVERAGE void trim_model()
    {
        if (stacks_.size() > config_.retain_per_tier)
            stacks_.erase(stacks_.begin(),
                stacks_.end() - static_cast<std::ptrdiff_t>(config_.retain_per_tier));
        for (auto& list : buffers_)
            if (list.size() > config_.retain_per_tier)
                list.erase(list.begin(),
                    list.end() - static_cast<std::ptrdiff_t>(config_.retain_per_tier));
        // Memory objects: those with storage first, the most recently released of each list.
        const std::size_t keep_warm = std::min(config_.retain_per_tier, warm_.size());
        const std::size_t keep_bare = config_.retain_per_tier - keep_warm;
        if (warm_.size() > keep_warm)
            warm_.erase(warm_.begin(), warm_.end() - static_cast<std::ptrdiff_t>(keep_warm));
        if (bare_.size() > keep_bare)
            bare_.erase(bare_.begin(), bare_.end() - static_cast<std::ptrdiff_t>(keep_bare));
    }

    FUZZ_NO_COVERAGE void check() const
    {
        FUZZ_CHECK(pool_.active() == calls_.size());
        FUZZ_CHECK(pool_.peak_active() == peak_);
        FUZZ_CHECK(pool_.buffers_allocated() == allocated_);
        std::size_t bytes = 0;
        std::size_t live = 0;
        for (const Tier t : evmalloc::all_tiers)
        {
            const auto& list = buffers_[evmalloc::tier_index(t)];
            FUZZ_CHECK(pool_.retained(t) == list.size());
            bytes += list.size() * evmalloc::frame_buffer_size<Traits>(t);
            live += list.size();
        }
        FUZZ_CHECK(pool_.retained_memories() == warm_.size() + bare_.size());
        FUZZ_CHECK(pool_.retained_stacks() == stacks_.size());
        bytes += stacks_.size() * evmalloc::stack_buffer_size<Traits>();
        live += stacks_.size();
        FUZZ_CHECK(cache_.pinned() == shared_frames());
        FUZZ_CHECK(pool_.memory_bytes_retained() == memory_bytes());
        FUZZ_CHECK(memory_bytes() <= config_.memory_retain_bytes);
        for (const auto* list : {&warm_, &bare_})
            for (const FreeMemory& f : *list)
            {
                bytes += sizeof(typename Pool::MemorySlot) + f.capacity;
                live += 1 + (f.capacity != 0 ? 1 : 0);
            }
        FUZZ_CHECK(pool_.bytes_retained() == bytes);
        // The upstream holds the live frames' buffers, Memory slots and storage, and what the
        // pool retains: nothing else.
        for (const Call& c : calls_)
        {
            bytes += c.frame.buffer_size() + sizeof(typename Pool::MemorySlot) +
                     c.frame.memory().capacity();
            live += 2 + (c.frame.memory().capacity() != 0 ? 1 : 0);
        }
        FUZZ_CHECK(rec_.live_bytes() == bytes && rec_.live_count() == live);
    }

    RecordingResource& rec_;
    FramePoolConfig config_;
    std::span<const std::uint8_t> code_;
    Pool pool_;
    std::vector<Call> calls_;
    std::array<std::vector<std::uint8_t*>, evmalloc::tier_count> buffers_;
    std::vector<std::uint8_t*> stacks_;
    RecordingResource cache_rec_;  // the cache's own upstream: not part of the pool's accounting
    evmalloc::AnalysisCache<Traits> cache_;
    std::set<std::vector<std::uint8_t>> cached_;
    std::vector<FreeMemory> warm_;  // free Memory objects with storage, the top last
    std::vector<FreeMemory> bare_;  // free ones without storage, the top last
    std::size_t peak_ = 0;
    std::size_t allocated_ = 0;
    unsigned tags_ = 0;
};

FramePoolConfig pick_config(FuzzedDataProvider& in)
{
    FramePoolConfig c;
    c.max_frames = in.ConsumeIntegral<std::uint8_t>() < 8
                       ? 1025
                       : in.ConsumeIntegralInRange<std::size_t>(0, 24);
    c.retain_per_tier = in.ConsumeIntegralInRange<std::size_t>(0, 4);
    constexpr std::size_t code_limits[] = {evmalloc::max_code_size, evmalloc::max_code_size, 4096,
        20000, evmalloc::max_code_size + 70000, SIZE_MAX};  // SIZE_MAX: clamped to 2^32 - 2
    c.max_code_size = code_limits[in.ConsumeIntegralInRange<std::size_t>(0, 5)];
    constexpr std::size_t retain[] = {
        0, 4096, 8192, 20000, 64 * 1024, 1 << 20, std::size_t{32} << 20};
    c.memory_retain_bytes = retain[in.ConsumeIntegralInRange<std::size_t>(0, 6)];
    c.auto_trim = in.ConsumeBool();
    constexpr std::size_t limits[] = {0, 32, 1000, 4096, 65536, Memory::default_limit};
    c.memory_limit = limits[in.ConsumeIntegralInRange<std::size_t>(0, 5)];
    return c;
}
}  // namespace

/// Steps one input drives at most: long inputs stay cheap, and the corpus keeps its variety.
constexpr int max_steps = 32;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider in{data, size};
    // The code from the front of the input, the choices from its back.
    const std::vector<std::uint8_t> code =
        in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(
            0, std::min<std::size_t>(in.remaining_bytes(), evmalloc::max_code_size)));
    RecordingResource rec{&evmalloc::fuzz::CachingResource::instance()};
    const FramePoolConfig config = pick_config(in);
    const evmalloc::test::FailureStyle style = evmalloc::fuzz::pick_failure_style(in);
    const auto run = [&](auto* traits) {
        Harness<std::remove_pointer_t<decltype(traits)>> h{rec, style, config, code};
        for (int steps = 0; steps < max_steps && in.remaining_bytes() != 0; ++steps)
            h.step(in);
    };
    if (in.ConsumeBool())
        run(static_cast<evmalloc::DefaultTraits*>(nullptr));
    else
        run(static_cast<JumpdestTraits*>(nullptr));
    FUZZ_CHECK(rec.check());
    return 0;
}
