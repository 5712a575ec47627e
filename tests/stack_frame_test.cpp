#include "catch.hpp"
#include "support/corpus.hpp"
#include "support/op_table.hpp"
#include "support/pool_state.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/sanitizer.hpp>
#include <evmalloc/stack_frame.hpp>

#if EVMALLOC_HAS_ASAN
#include <sanitizer/asan_interface.h>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <type_traits>
#include <vector>

using evmalloc::all_tiers;
using evmalloc::code_capacity;
using evmalloc::Errc;
using evmalloc::frame_buffer_size;
using evmalloc::FramePool;
using evmalloc::FramePoolConfig;
using evmalloc::Tier;
using evmalloc::Word;
using evmalloc::test::RecordingResource;

namespace
{
using Frame = evmalloc::StackFrame<>;
using Pool = FramePool<>;
using Code = std::vector<std::uint8_t>;

const Frame::OpTable& op_table()
{
    return evmalloc::test::distinct_op_table();
}

struct Expected
{
    std::vector<const void*> ops;
    std::vector<std::uint64_t> metadata;
};

// The plain reference: decode left to right; PUSH1..PUSH8 immediates as big-endian
// integers with bytes past the end read as zero.
Expected reference(const Code& code, const Frame::OpTable& table)
{
    Expected e;
    std::size_t pc = 0;
    while (pc < code.size())
    {
        const std::uint8_t op = code[pc];
        e.ops.push_back(table[op]);
        std::uint64_t imm = 0;
        if (op >= 0x60 && op <= 0x67)
            for (std::size_t k = 1; k <= std::size_t{op} - 0x5Fu; ++k)
                imm = imm * 256 + (pc + k < code.size() ? code[pc + k] : 0u);
        e.metadata.push_back(imm);
        pc += 1 + (op >= 0x60 && op <= 0x7F ? std::size_t{op} - 0x5Fu : 0u);
    }
    e.ops.push_back(table[0x00]);
    e.metadata.push_back(0);
    return e;
}

void check_against_reference(Frame& frame, const Code& code)
{
    REQUIRE(frame.prepare(code, op_table()).has_value());
    REQUIRE(frame.is_prepared());
    const Expected e = reference(code, op_table());
    REQUIRE(frame.analysis().instruction_count() == e.ops.size());
    REQUIRE(frame.ops().size() == e.ops.size());
    REQUIRE(frame.metadata().size() == e.metadata.size());
    std::size_t op_mismatches = 0, metadata_mismatches = 0;
    for (std::size_t i = 0; i < e.ops.size(); ++i)
    {
        op_mismatches += frame.ops()[i] != e.ops[i] ? 1u : 0u;
        metadata_mismatches += frame.metadata()[i] != e.metadata[i] ? 1u : 0u;
    }
    CHECK(op_mismatches == 0);
    CHECK(metadata_mismatches == 0);

    // The frame's analysis (decoded in the same pass as ops and metadata) is the one
    // Analysis::prepare alone gives.
    std::vector<std::uint32_t> i2p(code.size() + 1), p2i(code.size() + 1);
    std::vector<std::uint64_t> bits((code.size() + 64) / 64);
    const auto plain = evmalloc::Analysis::prepare(code, {i2p, p2i, bits});
    REQUIRE(plain.has_value());
    const evmalloc::Analysis& a = frame.analysis();
    CHECK(std::ranges::equal(a.inst_to_pc_span(), plain->inst_to_pc_span()));
    CHECK(std::ranges::equal(a.pc_to_inst_span(), plain->pc_to_inst_span()));
    CHECK(std::ranges::equal(a.jumpdest_bits_span(), plain->jumpdest_bits_span()));
    // code() is the frame's own padded copy: the same bytes, then at least 33 zeros.
    CHECK(a.code().data() != code.data());
    CHECK(std::ranges::equal(a.code(), code));
    CHECK(std::all_of(a.code().data() + code.size(), a.code().data() + code.size() + 33,
        [](std::uint8_t b) { return b == 0; }));
}

Code random_code(std::mt19937& rng, std::size_t size)
{
    std::uniform_int_distribution<int> byte{0, 255};
    std::uniform_int_distribution<int> kind{0, 9};
    Code code(size);
    for (auto& b : code)
    {
        const int k = kind(rng);  // PUSH1..PUSH8 often, JUMPDEST sometimes, anything else
        b = static_cast<std::uint8_t>(k < 4 ? 0x60 + byte(rng) % 8 : k == 4 ? 0x5B : byte(rng));
    }
    return code;
}

using evmalloc::test::PoolState;
using evmalloc::test::state_of;

Frame make(std::size_t code_size, Pool& pool)
{
    auto frame = Frame::init(code_size, pool);
    REQUIRE(frame.has_value());
    return std::move(*frame);
}
}  // namespace

TEST_CASE("StackFrame is a small move-only handle", "[stack_frame]")
{
    STATIC_REQUIRE(std::is_nothrow_move_constructible_v<Frame>);
    STATIC_REQUIRE(std::is_nothrow_move_assignable_v<Frame>);
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<Frame>);
    STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<Frame>);
    // The pool, the lease, the stack's three pointers, the analysis, ops and metadata, the
    // shared entry's pin (two pointers), the code capacity, the tier and a flag: 152 bytes on
    // 64-bit targets.
    STATIC_REQUIRE(sizeof(Frame) <= 5 * sizeof(void*) + sizeof(Pool::Lease) +
                                        sizeof(evmalloc::Stack<>) + sizeof(evmalloc::Analysis) + 8);
}

TEST_CASE(
    "StackFrame::init picks the tier for the code size and carves its buffer", "[stack_frame]")
{
    Pool pool;
    const std::pair<std::size_t, Tier> cases[] = {{0, Tier::kb4}, {1, Tier::kb4}, {4096, Tier::kb4},
        {4097, Tier::kb8}, {24576, Tier::kb32}, {65536, Tier::kb64}, {65537, Tier::kb128},
        {131072, Tier::kb128}};
    for (const auto& [size, tier] : cases)
    {
        INFO(size);
        Frame frame = make(size, pool);
        CHECK(frame.tier() == tier);
        CHECK(frame.buffer_size() == frame_buffer_size(tier));
        CHECK_FALSE(frame.is_prepared());
        CHECK(frame.stack().empty());
        CHECK(reinterpret_cast<std::uintptr_t>(frame.stack().data()) % 64 == 0);
        CHECK(frame.memory().size() == 0);
        CHECK(pool.active() == 1);
    }
    CHECK(pool.active() == 0);
}

TEST_CASE("StackFrame::init refuses code over 131072 bytes, losing nothing", "[stack_frame]")
{
    RecordingResource upstream;
    Pool pool{&upstream};
    {
        Frame warm = make(100, pool);
    }
    const PoolState before = state_of(pool);
    for (const std::size_t size : {std::size_t{131073}, std::size_t{1} << 20, SIZE_MAX})
    {
        const auto frame = Frame::init(size, pool);
        REQUIRE_FALSE(frame.has_value());
        CHECK(frame.error() == Errc::code_too_large);
    }
    CHECK(state_of(pool) == before);
    CHECK(upstream.allocations() == 2);
    Frame ok = make(131072, pool);  // usable after
    CHECK(ok.tier() == Tier::kb128);
}

TEST_CASE("StackFrame::prepare refuses code larger than the frame's tier, losing nothing",
    "[stack_frame]")
{
    Pool pool;
    std::mt19937 rng{7};
    const Code small = random_code(rng, 300);

    SECTION("larger than the tier")
    {
        Frame frame = make(300, pool);
        REQUIRE(frame.tier() == Tier::kb4);
        const Code big = random_code(rng, 4097);
        CHECK(frame.prepare(big, op_table()).error() == Errc::code_too_large);
        CHECK_FALSE(frame.is_prepared());
        // The frame is still usable, and a prepared frame stays prepared on a refused call.
        check_against_reference(frame, small);
        const std::vector<const void*> ops_before(frame.ops().begin(), frame.ops().end());
        CHECK(frame.prepare(big, op_table()).error() == Errc::code_too_large);
        CHECK(frame.is_prepared());
        CHECK(frame.analysis().code().size() == small.size());
        CHECK(std::vector<const void*>(frame.ops().begin(), frame.ops().end()) == ops_before);
    }
    SECTION("over max_code_size on the largest tier")
    {
        Frame frame = make(131072, pool);
        const Code huge(131073, 0x5B);
        CHECK(frame.prepare(huge, op_table()).error() == Errc::code_too_large);
        CHECK_FALSE(frame.is_prepared());
        const Code fits(131072, 0x5B);
        REQUIRE(frame.prepare(fits, op_table()).has_value());
        CHECK(frame.analysis().instruction_count() == 131073);
    }
    CHECK(pool.active() == 0);
}

TEST_CASE(
    "StackFrame: the 1026th live frame is call_depth_exceeded, losing nothing", "[stack_frame]")
{
    Pool pool;
    std::vector<Frame> frames;
    frames.reserve(1025);
    for (std::size_t depth = 0; depth < 1025; ++depth)
        frames.push_back(make(depth % 3 == 0 ? 5000 : 45, pool));
    CHECK(pool.active() == 1025);
    const PoolState before = state_of(pool);
    const auto refused = Frame::init(45, pool);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == Errc::call_depth_exceeded);
    CHECK(Frame::init(5000, pool).error() == Errc::call_depth_exceeded);
    CHECK(state_of(pool) == before);
    frames.pop_back();  // a frame returns: a new one may start
    Frame again = make(45, pool);
    CHECK(pool.active() == 1025);
    frames.clear();
}

TEST_CASE(
    "StackFrame::init reports out_of_memory when upstream throws, losing nothing", "[stack_frame]")
{
    RecordingResource upstream;
    Pool pool{&upstream};
    {
        Frame warm = make(100, pool);
    }  // one kb4 buffer and one Memory retained
    const PoolState before = state_of(pool);

    upstream.set_failing(true);
    const auto fresh_tier = Frame::init(10000, pool);  // kb16: needs a new buffer
    REQUIRE_FALSE(fresh_tier.has_value());
    CHECK(fresh_tier.error() == Errc::out_of_memory);
    CHECK(state_of(pool) == before);
    {
        Frame reused = make(100, pool);              // the retained buffer needs no upstream
        const auto second = Frame::init(100, pool);  // a second kb4 buffer does
        CHECK(second.error() == Errc::out_of_memory);
        CHECK(pool.active() == 1);
    }
    upstream.fail_after(1);  // the buffer comes, the Memory slot does not
    CHECK(Frame::init(10000, pool).error() == Errc::out_of_memory);
    CHECK(state_of(pool) == before);
    CHECK(upstream.live_count() == 2);

    upstream.stop_failing();
    Frame ok = make(10000, pool);
    CHECK(ok.tier() == Tier::kb16);
    CHECK(upstream.errors().empty());
}

TEST_CASE("StackFrame ops and metadata match a reference on random code across every tier",
    "[stack_frame]")
{
    Pool pool;
    std::mt19937 rng{2024};
    std::vector<std::size_t> sizes = {0, 1, 2, 8, 9, 10, 17, 100, 4095, 4096, 4097};
    for (const Tier t : all_tiers)
    {
        sizes.push_back(code_capacity(t) - 1);
        sizes.push_back(code_capacity(t));
    }
    for (int i = 0; i < 300; ++i)
        sizes.push_back(std::uniform_int_distribution<std::size_t>{0, 3000}(rng));
    for (const std::size_t size : sizes)
    {
        INFO("size " << size);
        const Code code = random_code(rng, size);
        Frame frame = make(size, pool);
        check_against_reference(frame, code);
    }
}

TEST_CASE(
    "StackFrame ops, metadata and analysis match a reference on every small size", "[stack_frame]")
{
    // Sizes 0..200: every split of prepare's pass into its two-instruction loop, one-instruction
    // loop and tail, in a frame reused from one prepare to the next (stale entries must not show).
    Pool pool;
    Frame frame = make(4096, pool);
    std::mt19937 rng{77};
    for (std::size_t size = 0; size <= 200; ++size)
        for (int r = 0; r < 4; ++r)
        {
            INFO("size " << size);
            check_against_reference(frame, random_code(rng, size));
        }
}

TEST_CASE("StackFrame metadata of PUSH1..PUSH8, whole and truncated at the end", "[stack_frame]")
{
    Pool pool;
    Frame frame = make(64, pool);
    for (std::size_t n = 1; n <= 8; ++n)
    {
        // Whole: PUSHn 0x11 0x22 ... then STOP, and padding so the 8-byte fast path applies.
        Code whole{static_cast<std::uint8_t>(0x5F + n)};
        std::uint64_t value = 0;
        for (std::size_t k = 1; k <= n; ++k)
        {
            whole.push_back(static_cast<std::uint8_t>(0x11 * k));
            value = value << 8 | (0x11 * k);
        }
        whole.insert(whole.end(), 16, 0x00);
        REQUIRE(frame.prepare(whole, op_table()).has_value());
        CHECK(frame.metadata()[0] == value);
        CHECK(frame.metadata()[1] == 0);

        // Truncated: only `have` of the n bytes are there; the rest read as zero.
        for (std::size_t have = 0; have < n; ++have)
        {
            INFO("PUSH" << n << " with " << have << " bytes");
            Code code = {0x01, 0x02, static_cast<std::uint8_t>(0x5F + n)};
            std::uint64_t expected = 0;
            for (std::size_t k = 1; k <= n; ++k)
            {
                const std::uint8_t b = k <= have ? static_cast<std::uint8_t>(0xA0 + k) : 0;
                if (k <= have)
                    code.push_back(b);
                expected = expected << 8 | b;
            }
            REQUIRE(frame.prepare(code, op_table()).has_value());
            REQUIRE(frame.analysis().instruction_count() == 4);
            CHECK(frame.metadata()[2] == expected);
            CHECK(frame.ops()[2] == op_table()[0x5F + n]);
            CHECK(frame.ops()[3] == op_table()[0x00]);  // the implicit STOP
            CHECK(frame.metadata()[3] == 0);
        }
    }
    // PUSH9..PUSH32 and PUSH0 carry no metadata.
    const Code wide = {0x5F, 0x68, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x7F};
    REQUIRE(frame.prepare(wide, op_table()).has_value());
    CHECK(frame.metadata()[0] == 0);
    CHECK(frame.metadata()[1] == 0);
    CHECK(frame.metadata()[2] == 0);
}

TEST_CASE("StackFrame ops and metadata match a reference on every corpus contract",
    "[stack_frame][corpus]")
{
    const auto dir = evmalloc::test::corpus_dir();
    if (!dir)
    {
        EVMALLOC_SKIP(
            "bytecode corpus not found (set EVMALLOC_CORPUS or place it in ../shared/corpus)");
    }
    else
    {
        Pool pool;
        const auto corpus = evmalloc::test::load_corpus(*dir);
        REQUIRE(!corpus.empty());
        for (const auto& entry : corpus)
        {
            INFO(entry.file);
            Frame frame = make(entry.code.size(), pool);
            check_against_reference(frame, entry.code);
            CHECK(frame.analysis().instruction_count() == entry.instructions + 1);
        }
    }
}

TEST_CASE("StackFrame gives its buffer back on destruction and move, LIFO", "[stack_frame]")
{
    RecordingResource upstream;
    Pool pool{&upstream};
    const Word* first = nullptr;
    {
        Frame a = make(100, pool);
        first = a.stack().data();
    }
    CHECK(pool.active() == 0);
    CHECK(pool.retained(Tier::kb4) == 1);
    Frame b = make(200, pool);
    CHECK(b.stack().data() == first);  // the same buffer back

    Frame c = std::move(b);  // the handle moves, the buffer stays
    CHECK(c.stack().data() == first);
    CHECK(pool.active() == 1);

    Frame d = make(5000, pool);
    CHECK(pool.active() == 2);
    d = std::move(c);  // d's kb8 buffer goes back, d now holds the kb4 one
    CHECK(pool.active() == 1);
    CHECK(pool.retained(Tier::kb8) == 1);
    CHECK(d.tier() == Tier::kb4);
    CHECK(d.stack().data() == first);
    {
        Frame moved = std::move(d);
    }
    CHECK(pool.active() == 0);
    CHECK(pool.retained(Tier::kb4) == 1);
    CHECK(upstream.errors().empty());
}

namespace
{
// JUMPDEST at 0: a frame prepared with it says is_jumpdest(0).
const Code jumpdest_code{0x5B, 0x60, 0x01, 0x00};
const Code other_code{0x00, 0x00, 0x00, 0x00};

template <class Traits>
evmalloc::Result<void> prepare_any(evmalloc::StackFrame<Traits>& f, const Code& code)
{
    if constexpr (evmalloc::is_instruction_frame<Traits>)
        return f.prepare(code, op_table());
    else
        return f.prepare(code);
}

// A frame moved from (by construction or assignment) owns nothing, and prepare() on it is
// Errc::buffer_too_small that writes nothing: the frame moved to keeps its code. Debug builds
// stop at the assertion instead (tests/death/contracts.cpp), so this part runs where assertions
// are compiled out (evmalloc_tests_no_asserts, and the release preset).
template <class Traits>
void check_prepare_on_moved_from()
{
    using F = evmalloc::StackFrame<Traits>;
    RecordingResource upstream;
    FramePool<Traits> pool{&upstream};
    auto made = F::init(jumpdest_code.size(), pool);
    REQUIRE(made.has_value());
    REQUIRE(prepare_any(*made, jumpdest_code).has_value());
    F& source = *made;
    F target = std::move(source);
    CHECK(prepare_any(source, other_code).error() == Errc::buffer_too_small);
    CHECK(prepare_any(source, {}).error() == Errc::buffer_too_small);
    REQUIRE(target.is_prepared());
    CHECK(target.analysis().code()[0] == 0x5B);
    CHECK(target.analysis().is_jumpdest(0));
    // Its stack has no storage: nothing lands in the target's.
    CHECK(source.stack().push(Word::from(1)).error() == Errc::stack_overflow);
    CHECK(target.stack().empty());

    auto other = F::init(10, pool);
    REQUIRE(other.has_value());
    *other = std::move(target);
    CHECK(prepare_any(target, other_code).error() == Errc::buffer_too_small);
    CHECK(other->analysis().code()[0] == 0x5B);
    *other = std::move(source);  // a frame that owns nothing, onto a live one
    CHECK(pool.active() == 0);
    CHECK(prepare_any(*other, jumpdest_code).error() == Errc::buffer_too_small);
    CHECK(upstream.errors().empty());
}

template <class Traits>
void check_moved_from_owns_nothing()
{
    using F = evmalloc::StackFrame<Traits>;
    RecordingResource upstream;
    FramePool<Traits> pool{&upstream};
    evmalloc::AnalysisCache<Traits> cache{&upstream};
    auto made = F::init(jumpdest_code.size(), pool);
    REQUIRE(made.has_value());
    REQUIRE(prepare_any(*made, jumpdest_code).has_value());
    const std::size_t buffer_bytes = made->buffer_size();

    // Move construction: everything goes to the new frame.
    F a = std::move(*made);
    CHECK(pool.active() == 1);
    CHECK_FALSE(made->is_prepared());
    CHECK(made->code_capacity() == 0);
    CHECK(made->buffer_size() == 0);
    CHECK(a.is_prepared());
    CHECK(a.buffer_size() == buffer_bytes);
    CHECK(a.code_capacity() == code_capacity(Tier::kb4));
    CHECK(a.analysis().is_jumpdest(0));

    // A frame on a shared entry: the pin moves with it, once.
    auto shared = [&] {
        if constexpr (evmalloc::is_instruction_frame<Traits>)
            return F::init(jumpdest_code, op_table(), pool, cache);
        else
            return F::init(jumpdest_code, pool, cache);
    }();
    REQUIRE(shared.has_value());
    CHECK(cache.pinned() == 1);
    {
        F s = std::move(*shared);
        CHECK(cache.pinned() == 1);
        CHECK_FALSE(shared->is_prepared());
        CHECK(shared->buffer_size() == 0);
        CHECK(s.is_prepared());
        CHECK(s.analysis().is_jumpdest(0));
        // Move assignment releases what the target held: a's buffer and Memory go back.
        F b = std::move(s);
        CHECK(pool.active() == 2);
        b = std::move(a);
        CHECK(pool.active() == 1);
        CHECK(cache.pinned() == 0);  // the shared entry b held is unpinned
        CHECK(pool.retained_stacks() == 1);
        CHECK(b.is_prepared());
        CHECK(b.buffer_size() == buffer_bytes);
        CHECK_FALSE(a.is_prepared());
        CHECK(a.buffer_size() == 0);
        // A move onto itself changes nothing.
        F& alias = b;
        b = std::move(alias);
        CHECK(pool.active() == 1);
        CHECK(b.is_prepared());
        CHECK(b.analysis().is_jumpdest(0));
        CHECK(b.stack().empty());
        // A frame that owns nothing, moved onto a live one: that one is released.
        b = std::move(s);
        CHECK(pool.active() == 0);
        CHECK_FALSE(b.is_prepared());
        CHECK(b.buffer_size() == 0);
    }
    CHECK(pool.active() == 0);
    CHECK(cache.pinned() == 0);
    CHECK(upstream.errors().empty());
}
}  // namespace

TEST_CASE("A moved-from StackFrame owns nothing: no buffer, no pin, no capacity, not prepared",
    "[stack_frame]")
{
    check_moved_from_owns_nothing<evmalloc::DefaultTraits>();
    check_moved_from_owns_nothing<evmalloc::JumpdestTraits>();
}

TEST_CASE("prepare() on a moved-from StackFrame is buffer_too_small, the frame moved to unchanged",
    "[stack_frame]")
{
    if constexpr (evmalloc::enable_asserts)
    {
        EVMALLOC_SKIP("a debug build stops at the assertion (tests/death/contracts.cpp)");
    }
    else
    {
        check_prepare_on_moved_from<evmalloc::DefaultTraits>();
        check_prepare_on_moved_from<evmalloc::JumpdestTraits>();
    }
}

TEST_CASE("StackFrame stack and memory work in the frame", "[stack_frame]")
{
    Pool pool;
    {
        Frame frame = make(10, pool);
        auto& stack = frame.stack();
        for (std::uint64_t i = 0; i < 1024; ++i)
            REQUIRE(stack.push(Word::from(i)).has_value());
        CHECK(stack.push(Word::from(0)).error() == Errc::stack_overflow);
        CHECK(stack.pop()->limbs[0] == 1023);
        // Memory grows and its gas is reported.
        const auto gas = frame.memory().expand(0, 32);
        REQUIRE(gas.has_value());
        CHECK(*gas == 3);
        CHECK(frame.memory().size() == 32);
        REQUIRE(frame.memory().expand(0, 10000).has_value());
    }
    Frame next = make(10, pool);
    CHECK(next.stack().empty());
    CHECK(next.memory().size() == 0);
    CHECK(next.memory().capacity() >= 10016);  // the capacity came back with the Memory
}

// Use before prepare() aborts in debug builds: tests/death/contracts.cpp.

namespace
{
using JumpdestFrame = evmalloc::StackFrame<evmalloc::JumpdestTraits>;
using JumpdestPool = FramePool<evmalloc::JumpdestTraits>;

// A jumpdest frame's analysis against an instruction frame's on the same code: the same bits,
// the same padded copy, and nothing per instruction.
void check_jumpdest_frame(JumpdestFrame& frame, const Code& code)
{
    REQUIRE(frame.prepare(code).has_value());
    REQUIRE(frame.is_prepared());
    const evmalloc::JumpdestAnalysis& a = frame.analysis();
    std::vector<std::uint32_t> i2p(code.size() + 1), p2i(code.size() + 1);
    std::vector<std::uint64_t> bits((code.size() + 64) / 64);
    const auto full = evmalloc::Analysis::prepare(code, {i2p, p2i, bits});
    REQUIRE(full.has_value());
    CHECK(std::ranges::equal(a.jumpdest_bits_span(), full->jumpdest_bits_span()));
    CHECK(std::ranges::equal(a.code(), code));
    CHECK(a.code().data() != code.data());
    CHECK(std::all_of(a.code().data() + code.size(), a.code().data() + code.size() + 33,
        [](std::uint8_t b) { return b == 0; }));
    for (std::uint64_t pc :
        {std::uint64_t{0}, std::uint64_t{code.size()}, std::uint64_t{1} << 40, ~std::uint64_t{0}})
        CHECK(a.is_jumpdest(pc) == full->is_jumpdest(pc));
}
}  // namespace

TEST_CASE("A jumpdest frame: padded code and jumpdest bits, no op table, no instruction arrays",
    "[stack_frame]")
{
    STATIC_REQUIRE(!evmalloc::is_instruction_frame<evmalloc::JumpdestTraits>);
    STATIC_REQUIRE(std::is_same_v<JumpdestFrame::AnalysisType, evmalloc::JumpdestAnalysis>);
    RecordingResource upstream;
    JumpdestPool pool{&upstream};
    std::mt19937 rng{99};
    for (const Tier t : all_tiers)
    {
        INFO(evmalloc::tier_name(t));
        for (const std::size_t size : {code_capacity(t) - 1, code_capacity(t)})
        {
            const Code code = random_code(rng, size);
            auto frame = JumpdestFrame::init(size, pool);
            REQUIRE(frame.has_value());
            CHECK(frame->tier() == t);
            CHECK(frame->buffer_size() == frame_buffer_size<evmalloc::JumpdestTraits>(t));
            check_jumpdest_frame(*frame, code);
            // A second prepare in the same frame with shorter code.
            check_jumpdest_frame(*frame, random_code(rng, size / 3));
        }
    }
    // The jumpdest frame's buffer is the stack, the bits and the code: far smaller.
    CHECK(frame_buffer_size<evmalloc::JumpdestTraits>(Tier::kb32) * 4 <
          frame_buffer_size(Tier::kb32));
    if (const auto dir = evmalloc::test::corpus_dir())
    {
        for (const auto& entry : evmalloc::test::load_corpus(*dir))
        {
            INFO(entry.file);
            auto frame = JumpdestFrame::init(entry.code.size(), pool);
            REQUIRE(frame.has_value());
            check_jumpdest_frame(*frame, entry.code);
            std::size_t jumpdests = 0;
            for (std::size_t pc = 0; pc < entry.code.size(); ++pc)
                jumpdests += frame->analysis().is_jumpdest(pc) ? 1u : 0u;
            CHECK(jumpdests == entry.jumpdests);
        }
    }
    CHECK(upstream.errors().empty());
}

TEST_CASE("A jumpdest frame refuses code larger than its tier, losing nothing", "[stack_frame]")
{
    JumpdestPool pool;
    std::mt19937 rng{5};
    auto frame = JumpdestFrame::init(100, pool);
    REQUIRE(frame.has_value());
    const Code small = random_code(rng, 100);
    REQUIRE(frame->prepare(small).has_value());
    const Code big = random_code(rng, code_capacity(Tier::kb4) + 1);
    CHECK(frame->prepare(big).error() == Errc::code_too_large);
    CHECK(frame->is_prepared());
    CHECK(std::ranges::equal(frame->analysis().code(), small));  // the previous prepare stands
}

TEST_CASE(
    "Code above the largest tier runs when the pool's max_code_size allows it", "[stack_frame]")
{
    RecordingResource upstream;
    const std::size_t limit = std::size_t{6} << 20;  // evmone's own tests run code of 6 MB
    Pool pool{&upstream, FramePoolConfig{.max_code_size = limit}};
    JumpdestPool jpool{&upstream, FramePoolConfig{.max_code_size = limit}};
    std::mt19937 rng{11};
    for (const std::size_t size : {evmalloc::max_code_size + 1, std::size_t{400000}, limit})
    {
        INFO(size);
        const Code code = random_code(rng, size);
        {
            Frame frame = make(size, pool);
            CHECK(frame.tier() == Tier::kb128);
            CHECK(frame.code_capacity() == size);
            CHECK(frame.buffer_size() == evmalloc::frame_buffer_bytes(size));
            check_against_reference(frame, code);
            CHECK(frame.prepare(random_code(rng, size + 1), op_table()).error() ==
                  Errc::code_too_large);
        }
        {
            auto frame = JumpdestFrame::init(size, jpool);
            REQUIRE(frame.has_value());
            CHECK(frame->buffer_size() ==
                  evmalloc::frame_buffer_bytes<evmalloc::JumpdestTraits>(size));
            check_jumpdest_frame(*frame, code);
        }
        CHECK(pool.retained(Tier::kb128) == 0);  // oversize buffers are never retained
        CHECK(upstream.live_bytes() == pool.bytes_retained() + jpool.bytes_retained());
    }
    const PoolState before = state_of(pool);
    CHECK(Frame::init(limit + 1, pool).error() == Errc::code_too_large);
    CHECK(state_of(pool) == before);
    // The default configuration keeps DESIGN's limit.
    Pool plain;
    CHECK(Frame::init(evmalloc::max_code_size + 1, plain).error() == Errc::code_too_large);
    CHECK(Frame::init(evmalloc::max_code_size, plain).has_value());
    // A lower configured limit applies inside the tiers too.
    Pool small{std::pmr::new_delete_resource(), FramePoolConfig{.max_code_size = 24576}};
    CHECK(Frame::init(24577, small).error() == Errc::code_too_large);
    CHECK(small.active() == 0);
    CHECK(upstream.errors().empty());
}

TEST_CASE("Oversize frames at every depth with the upstream failing: out_of_memory, nothing lost",
    "[stack_frame]")
{
    RecordingResource upstream;
    Pool pool{&upstream, FramePoolConfig{.max_code_size = 1u << 20, .auto_trim = false}};
    const std::size_t size = evmalloc::max_code_size + 4096;
    std::vector<Frame> frames;
    for (std::size_t depth = 0; depth < 24; ++depth)
    {
        const PoolState before = state_of(pool);
        const auto live = upstream.live_bytes();
        upstream.set_failing(true);
        CHECK(Frame::init(size, pool).error() == Errc::out_of_memory);
        upstream.stop_failing();
        upstream.fail_after(1);  // the buffer comes, the Memory slot does not (when one is needed)
        auto second = Frame::init(size, pool);
        upstream.stop_failing();
        if (!second)
        {
            CHECK(second.error() == Errc::out_of_memory);
            CHECK(state_of(pool) == before);
            CHECK(upstream.live_bytes() == live);
            frames.push_back(make(size, pool));
        }
        else
            frames.push_back(std::move(*second));
        CHECK(pool.active() == depth + 1);
    }
    frames.clear();
    CHECK(upstream.live_bytes() == pool.bytes_retained());
    CHECK(upstream.errors().empty());
}

TEST_CASE("Code sizes above 2^32 - 2 are code_too_large whatever max_code_size says, before any "
          "allocation",
    "[stack_frame]")
{
    constexpr std::size_t top = evmalloc::Analysis::max_analysable_size;
    RecordingResource upstream;
    upstream.fail_above(std::size_t{1} << 30);  // no test machine gives ~100 GiB
    Pool pool{&upstream, FramePoolConfig{.max_code_size = SIZE_MAX}};
    JumpdestPool jpool{&upstream, FramePoolConfig{.max_code_size = SIZE_MAX}};
    for (const std::size_t size : {top + 1, top + 2, top + 3, SIZE_MAX})
    {
        INFO(size);
        CHECK(Frame::init(size, pool).error() == Errc::code_too_large);
        CHECK(JumpdestFrame::init(size, jpool).error() == Errc::code_too_large);
    }
    CHECK(upstream.allocations() == 0);
    CHECK(upstream.failures() == 0);
    // 2^32 - 2 itself is allowed: the upstream is asked, and fails.
    CHECK(Frame::init(top, pool).error() == Errc::out_of_memory);
    CHECK(JumpdestFrame::init(top, jpool).error() == Errc::out_of_memory);
    CHECK(pool.active() == 0);
    CHECK(upstream.live_count() == 0);
}

#if EVMALLOC_HAS_ASAN
namespace
{
template <class T>
bool addressable(const T* p, std::size_t count)
{
    return __asan_region_is_poisoned(const_cast<T*>(p), count * sizeof(T)) == nullptr;
}
template <class T>
bool poisoned_at(const T* p)
{
    return __asan_address_is_poisoned(p) != 0;
}

// A part of `capacity` elements at p, of which code of n bytes uses `used`: those addressable,
// the next one (when the part has one) poisoned, unless it shares its 8-byte ASan granule with
// the part after (`last` says there is none): a granule is addressable from its start or not.
template <class T>
void check_part(const T* p, std::size_t used, std::size_t capacity, bool last = false)
{
    CHECK(addressable(p, used));
    if (used < capacity && (last || (capacity - used) * sizeof(T) >= 8))
        CHECK(poisoned_at(p + used));
}

// What the code of `n` bytes may be read at is addressable; the first byte past the code part's
// need (the code part is laid out for the code's real size: its pieces follow one another and
// the padded code comes last), and the buffer's tail after it, are not.
template <class Traits>
void check_poisoning(const evmalloc::StackFrame<Traits>& f, std::size_t n)
{
    const std::size_t cap = f.code_capacity();
    const auto& a = f.analysis();
    const std::uint8_t* const code = a.code().data();
    constexpr std::size_t padding = evmalloc::PaddedCode::padding;
    check_part(code, n + padding, cap + padding + 1, true);  // the tail follows the last part
    CHECK(
        addressable(a.jumpdest_bits_span().data(), evmalloc::JumpdestAnalysis::jumpdest_words(n)));
    if constexpr (evmalloc::is_instruction_frame<Traits>)
    {
        CHECK(addressable(a.inst_to_pc_span().data(), n + 1));
        CHECK(addressable(a.pc_to_inst_span().data(), n + 1));
        CHECK(addressable(f.ops().data(), n + 1));
        CHECK(addressable(f.metadata().data(), n + 1));
    }
    // The tail after the last part carved for the frame's capacity, to the buffer's end.
    const auto* const begin = reinterpret_cast<const std::uint8_t*>(f.stack().data());
    const std::uint8_t* const tail = code + cap + padding;
    for (const std::uint8_t* p = tail; p < begin + f.buffer_size(); ++p)
        REQUIRE(poisoned_at(p));
    // The stack is all addressable.
    CHECK(addressable(f.stack().data(), evmalloc::Stack<typename Traits::Word>::capacity));
    // The interpreter's reads: every pc, the whole padded code.
    std::size_t jumpdests = 0;
    for (std::size_t pc = 0; pc <= n + evmalloc::PaddedCode::padding; ++pc)
        jumpdests += a.is_jumpdest(pc) ? 1U : 0U;
    CHECK(jumpdests <= n);
}
}  // namespace

TEST_CASE("Under ASan a frame's bytes that no part uses are poisoned while the frame lives",
    "[stack_frame]")
{
    std::mt19937 rng{5};
    Pool pool;
    JumpdestPool jpool;
    // Before prepare(): the whole code part.
    Frame f = make(4096, pool);
    const auto* const base = reinterpret_cast<const std::uint8_t*>(f.stack().data());
    const std::size_t stack_bytes = evmalloc::Stack<>::capacity * sizeof(Word);
    CHECK(addressable(base, stack_bytes));
    CHECK(__asan_region_is_poisoned(const_cast<std::uint8_t*>(base) + stack_bytes,
              f.buffer_size() - stack_bytes) == base + stack_bytes);
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{4095},
             std::size_t{4096}, std::size_t{7}})
    {
        INFO(n);
        const Code code = random_code(rng, n);
        REQUIRE(f.prepare(code, op_table()).has_value());
        check_poisoning(f, n);
        auto j = JumpdestFrame::init(n, jpool);
        REQUIRE(j.has_value());
        REQUIRE(j->prepare(code).has_value());
        check_poisoning(*j, n);
    }
    // A frame above the largest tier: the same, and its buffer goes back upstream unpoisoned.
    RecordingResource upstream;
    Pool big{&upstream, FramePoolConfig{.max_code_size = 1u << 20}};
    {
        const std::size_t n = evmalloc::max_code_size + 100;
        Frame o = make(n, big);
        REQUIRE(o.prepare(random_code(rng, n - 50), op_table()).has_value());
        check_poisoning(o, n - 50);
    }
    CHECK(upstream.errors().empty());
}
#endif
