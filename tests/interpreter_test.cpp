// A tiny interpreter over a prepared StackFrame: what the interpreter side of a call looks
// like. It dispatches on ops() (here an opcode enum chosen through the op table), reads PUSH
// immediates from metadata(), checks jumps with pc_to_inst() and is_jumpdest(), and grows
// memory() on MSTORE. Nothing else allocates.
#include "../examples/word_arith.hpp"
#include "catch.hpp"
#include "support/bytecode.hpp"
#include "support/recording_resource.hpp"

#include <evmalloc/stack_frame.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

using evmalloc::Errc;
using evmalloc::OP_JUMPDEST;
using evmalloc::OP_PUSH1;
using evmalloc::OP_STOP;
using evmalloc::Word;
using evmalloc::example::add;
using evmalloc::example::less;
using evmalloc::test::op_push;

namespace
{
enum class Op : std::uint8_t
{
    stop,
    add,
    mul,
    lt,
    gt,
    iszero,
    pop,
    mstore,
    jump,
    jumpi,
    jumpdest,
    push,  // PUSH1..PUSH8: the immediate is in metadata()
    dup1,
    dup3,
    swap1,
    swap2,
    invalid,
};

struct Traits
{
    using Word = evmalloc::Word;
    using Op = ::Op;
    using Metadata = std::uint64_t;
};

using Frame = evmalloc::StackFrame<Traits>;
using Pool = evmalloc::FramePool<Traits>;

const Frame::OpTable& op_table()
{
    static const Frame::OpTable table = [] {
        Frame::OpTable t;
        t.fill(Op::invalid);
        t[evmalloc::OP_STOP] = Op::stop;
        t[0x01] = Op::add;
        t[0x02] = Op::mul;
        t[0x10] = Op::lt;
        t[0x11] = Op::gt;
        t[0x15] = Op::iszero;
        t[0x50] = Op::pop;
        t[0x52] = Op::mstore;
        t[0x56] = Op::jump;
        t[0x57] = Op::jumpi;
        t[evmalloc::OP_JUMPDEST] = Op::jumpdest;
        for (std::size_t i = evmalloc::OP_PUSH1; i <= op_push(8); ++i)
            t[i] = Op::push;
        t[0x80] = Op::dup1;
        t[0x82] = Op::dup3;
        t[0x90] = Op::swap1;
        t[0x91] = Op::swap2;
        return t;
    }();
    return table;
}

enum class Status
{
    stopped,
    bad_jump,
    invalid,
    stack_error,
    memory_error,
};

struct Outcome
{
    Status status;
    std::uint64_t steps;
    std::uint64_t memory_gas;
};

bool fits64(const Word& w)
{
    return w.limbs[1] == 0 && w.limbs[2] == 0 && w.limbs[3] == 0;
}

Outcome interpret(Frame& frame)
{
    EVMALLOC_ASSERT(frame.is_prepared());
    const auto ops = frame.ops();
    const auto metadata = frame.metadata();
    const evmalloc::Analysis& analysis = frame.analysis();
    auto& stack = frame.stack();
    evmalloc::Memory& memory = frame.memory();
    Outcome out{Status::stopped, 0, 0};

    // Jumps land on an instruction index: only a JUMPDEST at an instruction start is valid.
    const auto jump_target = [&](const Word& dest) -> std::size_t {
        if (!fits64(dest) || !analysis.is_jumpdest(dest.limbs[0]))
            return SIZE_MAX;
        return analysis.pc_to_inst(dest.limbs[0]);
    };

    std::size_t i = 0;
    for (;; ++out.steps)
    {
        // A real interpreter checks stack bounds per block; this one checks per instruction.
        const auto need = [&](std::size_t items) { return stack.size() >= items; };
        switch (ops[i])
        {
        case Op::stop:
            return out;
        case Op::push:
            if (!stack.push(Word::from(metadata[i])))
                return {Status::stack_error, out.steps, out.memory_gas};
            ++i;
            break;
        case Op::add:
        case Op::mul:
        case Op::lt:
        case Op::gt:
        {
            if (!need(2))
                return {Status::stack_error, out.steps, out.memory_gas};
            const Word a = stack.pop_unchecked();
            Word& b = stack.top();
            if (ops[i] == Op::add)
                b = add(a, b);
            else if (ops[i] == Op::mul)  // low 64 bits suffice for the programs below
                b = Word::from(a.limbs[0] * b.limbs[0]);
            else if (ops[i] == Op::lt)
                b = Word::from(less(a, b) ? 1 : 0);
            else
                b = Word::from(less(b, a) ? 1 : 0);
            ++i;
            break;
        }
        case Op::iszero:
            if (!need(1))
                return {Status::stack_error, out.steps, out.memory_gas};
            stack.top() = Word::from(stack.top() == Word{} ? 1 : 0);
            ++i;
            break;
        case Op::pop:
            if (!stack.pop())
                return {Status::stack_error, out.steps, out.memory_gas};
            ++i;
            break;
        case Op::mstore:
        {
            if (!need(2))
                return {Status::stack_error, out.steps, out.memory_gas};
            const Word offset = stack.pop_unchecked();
            const Word value = stack.pop_unchecked();
            if (!fits64(offset))
                return {Status::memory_error, out.steps, out.memory_gas};
            const auto gas = memory.expand(offset.limbs[0], 32);
            if (!gas)
                return {Status::memory_error, out.steps, out.memory_gas};
            out.memory_gas += *gas;
            std::uint8_t* p = memory.data() + offset.limbs[0];
            for (std::size_t b = 0; b < 32; ++b)  // big-endian, as the EVM stores words
                p[b] = static_cast<std::uint8_t>(value.limbs[3 - b / 8] >> (56 - 8 * (b % 8)));
            ++i;
            break;
        }
        case Op::jump:
        {
            const auto dest = stack.pop();
            if (!dest)
                return {Status::stack_error, out.steps, out.memory_gas};
            i = jump_target(*dest);
            if (i == SIZE_MAX)
                return {Status::bad_jump, out.steps, out.memory_gas};
            break;
        }
        case Op::jumpi:
        {
            if (!need(2))
                return {Status::stack_error, out.steps, out.memory_gas};
            const Word dest = stack.pop_unchecked();
            const Word cond = stack.pop_unchecked();
            if (cond == Word{})
            {
                ++i;
                break;
            }
            i = jump_target(dest);
            if (i == SIZE_MAX)
                return {Status::bad_jump, out.steps, out.memory_gas};
            break;
        }
        case Op::jumpdest:
            ++i;
            break;
        case Op::dup1:
        case Op::dup3:
        {
            const std::size_t n = ops[i] == Op::dup1 ? 1 : 3;
            if (!need(n) || stack.size() == evmalloc::Stack<>::capacity)
                return {Status::stack_error, out.steps, out.memory_gas};
            stack.dup(n);
            ++i;
            break;
        }
        case Op::swap1:
        case Op::swap2:
        {
            const std::size_t n = ops[i] == Op::swap1 ? 1 : 2;
            if (!need(n + 1))
                return {Status::stack_error, out.steps, out.memory_gas};
            stack.swap(n);
            ++i;
            break;
        }
        case Op::invalid:
            return {Status::invalid, out.steps, out.memory_gas};
        }
    }
}

// sum = start; for i = 1..n: sum += i; mstore(32 * i, sum). Stops with [.., i, sum].
std::vector<std::uint8_t> counter_loop(std::uint16_t n, std::uint64_t start)
{
    std::vector<std::uint8_t> code = {op_push(8)};  // PUSH8 start
    for (int b = 7; b >= 0; --b)
        code.push_back(static_cast<std::uint8_t>(start >> (8 * b)));
    const auto loop = static_cast<std::uint8_t>(code.size() + 2);
    code.insert(code.end(),
        {
            OP_PUSH1, 0x00,        // PUSH1 0                    [sum, i]
            OP_JUMPDEST,           // loop: JUMPDEST
            OP_PUSH1, 0x01, 0x01,  // PUSH1 1, ADD               [sum, i+1]
            0x80, 0x91, 0x01,      // DUP1, SWAP2, ADD           [i, sum+i]
            0x80, 0x82,            // DUP1, DUP3                 [i, sum, sum, i]
            OP_PUSH1, 0x20, 0x02,  // PUSH1 32, MUL              [i, sum, sum, 32i]
            0x52,                  // MSTORE                     [i, sum]
            0x90,                  // SWAP1                      [sum, i]
            0x80,                  // DUP1                       [sum, i, i]
            op_push(2), static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n),  // PUSH2 n
            0x11,            // GT: n > i                  [sum, i, n > i]
            OP_PUSH1, loop,  // PUSH1 loop
            0x57,            // JUMPI
            OP_STOP,         // STOP
        });
    return code;
}

std::uint64_t word_at(const evmalloc::Memory& m, std::size_t offset)
{
    std::uint64_t v = 0;
    for (std::size_t b = 24; b < 32; ++b)
        v = v << 8 | m.data()[offset + b];
    return v;
}
}  // namespace

TEST_CASE("interpreter: a counter loop sums, stores to memory, and allocates only memory",
    "[interpreter]")
{
    evmalloc::test::RecordingResource upstream;
    Pool pool{&upstream};
    constexpr std::uint16_t n = 300;
    constexpr std::uint64_t start = 0x0102030405060708;
    const auto code = counter_loop(n, start);

    for (int run = 0; run < 3; ++run)
    {
        auto frame = Frame::init(code.size(), pool);
        REQUIRE(frame.has_value());
        REQUIRE(frame->prepare(code, op_table()).has_value());
        const auto allocations = upstream.allocations();

        const Outcome out = interpret(*frame);
        REQUIRE(out.status == Status::stopped);
        CHECK(
            out.steps == 2 + 17 * std::uint64_t{n});  // 17 instructions per turn; STOP not counted
        // The stack holds [sum, i] at the end.
        auto& stack = frame->stack();
        REQUIRE(stack.size() == 2);
        CHECK(stack.peek(0).limbs[0] == n);
        CHECK(stack.peek(1).limbs[0] == start + std::uint64_t{n} * (n + 1) / 2);
        // memory[32 i] holds the running sum after step i.
        const evmalloc::Memory& memory = frame->memory();
        CHECK(memory.size() == 32 * (std::size_t{n} + 1));
        for (std::uint64_t i = 1; i <= n; ++i)
            CHECK(word_at(memory, 32 * i) == start + i * (i + 1) / 2);
        CHECK(word_at(memory, 0) == 0);  // never stored, zeroed by expansion
        const std::uint64_t words = n + 1;
        CHECK(out.memory_gas == 3 * words + words * words / 512);
        // Only memory growth went upstream, and only on the first run: later runs reuse the
        // pooled Memory's capacity.
        if (run == 0)
            CHECK(upstream.allocations() > allocations);
        else
            CHECK(upstream.allocations() == allocations);
    }
    CHECK(pool.active() == 0);
}

TEST_CASE("interpreter: jumps go only to JUMPDESTs at instruction starts", "[interpreter]")
{
    Pool pool;
    // PUSH1 4, JUMP, PUSH2 0x5B5B (a JUMPDEST byte in push data at pc 4), JUMPDEST at pc 6.
    const std::vector<std::uint8_t> into_data = {
        OP_PUSH1, 0x04, 0x56, op_push(2), OP_JUMPDEST, OP_JUMPDEST, OP_JUMPDEST, OP_STOP};
    auto frame = Frame::init(into_data.size(), pool);
    REQUIRE(frame.has_value());
    REQUIRE(frame->prepare(into_data, op_table()).has_value());
    CHECK(frame->analysis().pc_to_inst(4) == evmalloc::Analysis::no_instruction);
    CHECK(interpret(*frame).status == Status::bad_jump);

    // The same jump to pc 6 lands on the JUMPDEST and runs to the STOP.
    std::vector<std::uint8_t> ok = into_data;
    ok[1] = 0x06;
    REQUIRE(frame->prepare(ok, op_table()).has_value());
    frame->stack().clear();
    const Outcome out = interpret(*frame);
    CHECK(out.status == Status::stopped);
    CHECK(out.steps == 3);  // PUSH1, JUMP, JUMPDEST (the STOP ends it)
    CHECK(frame->stack().empty());

    // Past the end, and far past it.
    const std::vector<std::uint8_t> far = {0x63, 0xFF, 0xFF, 0xFF, 0xFF, 0x56};
    REQUIRE(frame->prepare(far, op_table()).has_value());
    CHECK(interpret(*frame).status == Status::bad_jump);
}

TEST_CASE("interpreter: nested loops over several frames share one pool", "[interpreter]")
{
    Pool pool;
    // Each depth runs its own loop while the frames above it stay alive.
    std::vector<Frame> frames;
    std::vector<std::vector<std::uint8_t>> codes;
    for (std::uint16_t depth = 0; depth < 8; ++depth)
        codes.push_back(counter_loop(static_cast<std::uint16_t>(10 + depth), depth));
    for (std::uint16_t depth = 0; depth < 8; ++depth)
    {
        auto frame = Frame::init(codes[depth].size(), pool);
        REQUIRE(frame.has_value());
        REQUIRE(frame->prepare(codes[depth], op_table()).has_value());
        frames.push_back(std::move(*frame));
    }
    CHECK(pool.active() == 8);
    for (std::uint16_t depth = 8; depth-- > 0;)
    {
        Frame& frame = frames[depth];
        REQUIRE(interpret(frame).status == Status::stopped);
        const std::uint64_t n = 10u + depth;
        CHECK(frame.stack().peek(1).limbs[0] == depth + n * (n + 1) / 2);
        CHECK(word_at(frame.memory(), 32 * n) == depth + n * (n + 1) / 2);
        frames.pop_back();
    }
    CHECK(pool.active() == 0);
    CHECK(pool.peak_active() == 8);
}

TEST_CASE("interpreter: a frame's memory limit stops a runaway MSTORE", "[interpreter]")
{
    Pool pool{std::pmr::new_delete_resource(), evmalloc::FramePoolConfig{.memory_limit = 1024}};
    // PUSH1 1, PUSH2 0x0400 (offset 1024), MSTORE: past a 1 KiB limit.
    const std::vector<std::uint8_t> code = {OP_PUSH1, 0x01, op_push(2), 0x04, 0x00, 0x52, OP_STOP};
    auto frame = Frame::init(code.size(), pool);
    REQUIRE(frame.has_value());
    REQUIRE(frame->prepare(code, op_table()).has_value());
    CHECK(frame->memory().limit() == 1024);
    CHECK(interpret(*frame).status == Status::memory_error);
    CHECK(frame->memory().size() == 0);
    CHECK(frame->memory().expand(1024, 0).value() == 0);  // length 0 expands nothing
}
