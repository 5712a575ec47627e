// A small EVM-like VM on top of evmalloc: how an interpreter plugs in.
//
// Part 1: a Vm that owns an EvmAllocator (init_with_optimized_allocator()) runs a few
// transactions. Each call is set up at the call site (StackFrame<>::init with the code, the op
// table, the allocator's frames() and its shared analyses(): a contract called again is not
// analysed again) and interpreted by a loop that touches only the frame: its stack, its
// memory, its ops and metadata (an instruction frame). Nested calls (CALL)
// open a new frame each. Transaction data (logs, return data) lives in the allocator's
// arena(); reset_arena() frees it between transactions. The contract registry uses the
// allocator's std::pmr face. get_allocation_statistics() is printed at the end.
//
// Part 2: the same with an interpreter's own types, through a traits struct: its own 256-bit
// word (8-byte aligned, like intx::uint256) and its own Op (a handler function pointer
// called directly from ops()), on the per-frame path (init + prepare).
//
// Part 3: the other frame shape, as evmone's baseline interpreter wants it: a jumpdest frame
// (traits with Op = void) holds the stack, the padded code and the jumpdest bits, nothing per
// instruction. A switch over the opcode reads PUSH immediates from the padded code with no
// bounds check, checks jumps with is_jumpdest(), and charges memory gas before it grows.
//
// The program checks its own results and exits non-zero when one is wrong.
#include <evmalloc/evm_allocator.hpp>
#include "word_arith.hpp"

#include <evmalloc/evmalloc.hpp>
#include <evmalloc/opcodes.hpp>
#include <evmalloc/stack_frame.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <memory_resource>
#include <optional>
#include <span>
#include <vector>

namespace
{
using evmalloc::Word;
using namespace evmalloc::example;

// ---- the VM ------------------------------------------------------------------------------

namespace op
{
constexpr std::uint8_t stop = evmalloc::OP_STOP, add = 0x01, mul = 0x02, sub = 0x03, lt = 0x10,
                       eq = 0x14, iszero = 0x15, pop = 0x50, mload = 0x51, mstore = 0x52,
                       jump = 0x56, jumpi = 0x57, jumpdest = evmalloc::OP_JUMPDEST,
                       push0 = evmalloc::OP_PUSH0, push1 = evmalloc::OP_PUSH1,
                       push32 = evmalloc::OP_PUSH32, dup1 = 0x80, swap1 = 0x90, log0 = 0xA0,
                       call = 0xF1, ret = 0xF3, invalid = 0xFE;
}

enum class Status
{
    running,
    stopped,
    returned,
    failed,
};

class Vm;
struct Exec;

/// What DefaultTraits::Op (const void*) points at: one entry per opcode. `pops` and `pushes`
/// are checked once per instruction before the handler runs, so handlers use the stack's
/// unchecked fast path.
struct Instruction
{
    Status (*fn)(Exec&);
    std::uint8_t pops;
    std::uint8_t pushes;
};

/// One transaction's data, in the arena: freed at once by reset_arena().
struct TxData
{
    explicit TxData(std::pmr::memory_resource* arena) : logs{arena}, return_data{arena} {}
    std::pmr::vector<std::pmr::vector<std::uint8_t>> logs;
    std::pmr::vector<std::uint8_t> return_data;  ///< of the outermost call
};

/// The interpreter's view of one running frame.
struct Exec
{
    Vm& vm;
    evmalloc::StackFrame<>& frame;
    TxData& tx;
    std::pmr::vector<std::uint8_t>& output;  ///< this call's return data
    std::size_t depth;
    std::size_t next = 0;        ///< the instruction to run next
    std::uint64_t gas_used = 0;  ///< memory expansion only: enough to show Memory's gas
};

class Vm
{
public:
    /// The allocator every transaction uses: pools, arena and frames, all on.
    void init_with_optimized_allocator()
    {
        allocator_ =
            std::make_unique<evmalloc::EvmAllocator>(evmalloc::AllocatorConfig::optimized());
        contracts_ = std::make_unique<std::pmr::map<std::uint64_t, std::pmr::vector<std::uint8_t>>>(
            allocator_.get());
    }

    /// Registers `code` as contract `id` (kept through the allocator's pmr face).
    void deploy(std::uint64_t id, std::span<const std::uint8_t> code)
    {
        contracts_->insert_or_assign(
            id, std::pmr::vector<std::uint8_t>(code.begin(), code.end(), allocator_.get()));
    }

    struct Receipt
    {
        bool ok = false;
        Word result{};
        std::size_t logs = 0;
        std::size_t arena_bytes = 0;  ///< what the transaction's data took in the arena
    };

    /// Calls contract `id` with `input` on its stack; the transaction's data is dropped after.
    Receipt transact(std::uint64_t id, const Word& input)
    {
        Receipt receipt;
        {
            TxData tx{&allocator_->arena()};
            receipt.ok = call(id, input, tx, tx.return_data, 0);
            if (receipt.ok && tx.return_data.size() >= 32)
                receipt.result = load_be(tx.return_data.data(), 32);
            receipt.logs = tx.logs.size();
            receipt.arena_bytes = allocator_->arena().used();
        }
        allocator_->reset_arena();
        return receipt;
    }

    /// Runs contract `id` in a new frame at `depth`; its return data lands in `output`.
    bool call(std::uint64_t id, const Word& input, TxData& tx,
        std::pmr::vector<std::uint8_t>& output, std::size_t depth)
    {
        const auto it = contracts_->find(id);
        if (it == contracts_->end())
            return false;
        nested_calls_ += depth > 0 ? 1 : 0;
        const std::span<const std::uint8_t> code{it->second.data(), it->second.size()};

        // The call site: the code's shared analysis (analysed on its first call, pinned while
        // this frame runs; found by the verified key, the bytes), one pooled stack buffer and
        // one pooled Memory. The frame comes back prepared.
        auto frame = evmalloc::StackFrame<>::init(
            code, op_table(), op_table_id(), allocator_->frames(), allocator_->analyses());
        if (!frame)
            return false;  // code_too_large, call_depth_exceeded, out_of_memory
        frame->stack().push_unchecked(input);

        Exec ex{*this, *frame, tx, output, depth};
        return interpret(ex) != Status::failed;
    }

    evmalloc::EvmAllocator& allocator() { return *allocator_; }
    /// Calls made by CALL (not by a transaction) so far.
    std::size_t nested_calls() const { return nested_calls_; }

    evmalloc::AllocationStatistics get_allocation_statistics() const
    {
        return allocator_->statistics();
    }

    static const evmalloc::StackFrame<>::OpTable& op_table();
    /// op_table()'s id in the analysis cache, its contents hashed once (table_id.hpp).
    static evmalloc::TableId op_table_id()
    {
        static const evmalloc::TableId id = evmalloc::table_id(op_table());
        return id;
    }

private:
    static Status interpret(Exec& ex)
    {
        EVMALLOC_ASSERT(ex.frame.is_prepared());
        const std::span<const void* const> ops = ex.frame.ops();
        auto& stack = ex.frame.stack();
        for (std::size_t steps = 0; steps < 1'000'000; ++steps)
        {
            const auto* ins = static_cast<const Instruction*>(ops[ex.next]);
            if (stack.size() < ins->pops || stack.size() - ins->pops + ins->pushes > stack.capacity)
                return Status::failed;
            const Status s = ins->fn(ex);
            if (s != Status::running)
                return s;
        }
        return Status::failed;  // out of steps: our stand-in for out of gas
    }

    std::unique_ptr<evmalloc::EvmAllocator> allocator_;
    std::unique_ptr<std::pmr::map<std::uint64_t, std::pmr::vector<std::uint8_t>>> contracts_;
    std::size_t nested_calls_ = 0;
};

// ---- handlers ------------------------------------------------------------------------------

Status op_stop(Exec&)
{
    return Status::stopped;
}
Status op_invalid(Exec&)
{
    return Status::failed;
}

template <Word (*F)(const Word&, const Word&)>
Status op_binary(Exec& ex)
{
    auto& s = ex.frame.stack();
    const Word a = s.pop_unchecked();
    s.top() = F(a, s.top());  // EVM order: a = top, b = the one below
    ++ex.next;
    return Status::running;
}

Word lt_word(const Word& a, const Word& b)
{
    return Word::from(less(a, b) ? 1 : 0);
}
Word eq_word(const Word& a, const Word& b)
{
    return Word::from(a == b ? 1 : 0);
}

Status op_iszero(Exec& ex)
{
    Word& t = ex.frame.stack().top();
    t = Word::from(is_zero(t) ? 1 : 0);
    ++ex.next;
    return Status::running;
}

Status op_pop(Exec& ex)
{
    static_cast<void>(ex.frame.stack().pop_unchecked());
    ++ex.next;
    return Status::running;
}

/// Expands memory to cover [offset, offset + size) and charges its gas.
bool touch_memory(
    Exec& ex, const Word& offset, const Word& size, std::uint64_t& off, std::uint64_t& len)
{
    if (!small(offset, off) || !small(size, len))
        return false;
    const auto gas = ex.frame.memory().expand(off, len);
    if (!gas)
        return false;  // memory_limit_exceeded or out_of_memory
    ex.gas_used += *gas;
    return true;
}

/// Pops (offset, size), expands memory over them and returns those bytes; nullopt when the
/// range is out of reach (the call fails).
std::optional<std::span<const std::uint8_t>> pop_memory_range(Exec& ex)
{
    auto& s = ex.frame.stack();
    const Word offset = s.pop_unchecked();
    const Word size = s.pop_unchecked();
    std::uint64_t off = 0;
    std::uint64_t len = 0;
    if (!touch_memory(ex, offset, size, off, len))
        return std::nullopt;
    return std::span<const std::uint8_t>{ex.frame.memory().data() + off, len};
}

Status op_mstore(Exec& ex)
{
    auto& s = ex.frame.stack();
    const Word offset = s.pop_unchecked();
    const Word value = s.pop_unchecked();
    std::uint64_t off = 0;
    std::uint64_t len = 0;
    if (!touch_memory(ex, offset, Word::from(32), off, len))
        return Status::failed;
    store_be(value, ex.frame.memory().data() + off);
    ++ex.next;
    return Status::running;
}

Status op_mload(Exec& ex)
{
    Word& t = ex.frame.stack().top();
    std::uint64_t off = 0;
    std::uint64_t len = 0;
    if (!touch_memory(ex, t, Word::from(32), off, len))
        return Status::failed;
    t = load_be(ex.frame.memory().data() + off, 32);
    ++ex.next;
    return Status::running;
}

/// Jumps to `dest` if it is a JUMPDEST: the analysis answers in O(1).
Status jump_to(Exec& ex, const Word& dest)
{
    std::uint64_t pc = 0;
    if (!small(dest, pc) || !ex.frame.analysis().is_jumpdest(pc))
        return Status::failed;
    ex.next = ex.frame.analysis().pc_to_inst(pc);
    return Status::running;
}

Status op_jump(Exec& ex)
{
    return jump_to(ex, ex.frame.stack().pop_unchecked());
}

Status op_jumpi(Exec& ex)
{
    auto& s = ex.frame.stack();
    const Word dest = s.pop_unchecked();
    const Word cond = s.pop_unchecked();
    if (is_zero(cond))
    {
        ++ex.next;
        return Status::running;
    }
    return jump_to(ex, dest);
}

Status op_jumpdest(Exec& ex)
{
    ++ex.next;
    return Status::running;
}

/// PUSH0..PUSH8 read the immediate prepared in metadata(); longer pushes decode the code.
Status op_push(Exec& ex)
{
    const std::size_t i = ex.next;
    const auto& a = ex.frame.analysis();
    const std::size_t pc = a.inst_to_pc(i);
    const std::uint8_t opcode = a.code()[pc];
    const std::size_t n =
        opcode == op::push0 ? 0 : static_cast<std::size_t>(opcode - op::push1 + 1);
    if (n <= 8)
        ex.frame.stack().push_unchecked(Word::from(ex.frame.metadata()[i]));
    else
    {
        std::array<std::uint8_t, 32> bytes{};  // bytes past the end of code read as zero
        for (std::size_t j = 0; j < n && pc + 1 + j < a.code().size(); ++j)
            bytes[j] = a.code()[pc + 1 + j];
        ex.frame.stack().push_unchecked(load_be(bytes.data(), n));
    }
    ++ex.next;
    return Status::running;
}

Status op_dup(Exec& ex)
{
    const std::uint8_t opcode = ex.frame.analysis().code()[ex.frame.analysis().inst_to_pc(ex.next)];
    const std::size_t n = static_cast<std::size_t>(opcode - op::dup1 + 1);
    if (ex.frame.stack().size() < n)
        return Status::failed;
    ex.frame.stack().dup(n);
    ++ex.next;
    return Status::running;
}

Status op_swap(Exec& ex)
{
    const std::uint8_t opcode = ex.frame.analysis().code()[ex.frame.analysis().inst_to_pc(ex.next)];
    const std::size_t n = static_cast<std::size_t>(opcode - op::swap1 + 1);
    if (ex.frame.stack().size() <= n)
        return Status::failed;
    ex.frame.stack().swap(n);
    ++ex.next;
    return Status::running;
}

/// LOG0(offset, size): the log's data goes to the transaction's logs, in the arena.
Status op_log0(Exec& ex)
{
    const auto data = pop_memory_range(ex);
    if (!data)
        return Status::failed;
    auto& log = ex.tx.logs.emplace_back();  // uses the arena: uses-allocator construction
    log.assign(data->begin(), data->end());
    ++ex.next;
    return Status::running;
}

/// RETURN(offset, size): this call's return data, copied into the arena.
Status op_return(Exec& ex)
{
    const auto data = pop_memory_range(ex);
    if (!data)
        return Status::failed;
    ex.output.assign(data->begin(), data->end());
    return Status::returned;
}

/// A simplified CALL(target, input): runs contract `target` in a new frame with `input` on
/// its stack and pushes the first word of what it returned (0 when it returned nothing).
Status op_call(Exec& ex)
{
    auto& s = ex.frame.stack();
    const Word target = s.pop_unchecked();
    const Word input = s.pop_unchecked();
    std::uint64_t id = 0;
    if (!small(target, id))
        return Status::failed;
    // The callee's return data lives only until this instruction ends: a pooled buffer from
    // the allocator's pmr face (a 32-byte word here lands in the word pool).
    std::pmr::vector<std::uint8_t> returned{&ex.vm.allocator()};
    if (!ex.vm.call(id, input, ex.tx, returned, ex.depth + 1))
        return Status::failed;
    s.push_unchecked(returned.size() >= 32 ? load_be(returned.data(), 32) : Word{});
    ++ex.next;
    return Status::running;
}

const evmalloc::StackFrame<>::OpTable& Vm::op_table()
{
    static const auto instructions = [] {
        std::array<Instruction, 256> t{};
        t.fill({&op_invalid, 0, 0});
        t[op::stop] = {&op_stop, 0, 0};
        t[op::add] = {&op_binary<&add>, 2, 1};
        t[op::mul] = {&op_binary<&mul>, 2, 1};
        t[op::sub] = {&op_binary<&sub>, 2, 1};
        t[op::lt] = {&op_binary<&lt_word>, 2, 1};
        t[op::eq] = {&op_binary<&eq_word>, 2, 1};
        t[op::iszero] = {&op_iszero, 1, 1};
        t[op::pop] = {&op_pop, 1, 0};
        t[op::mload] = {&op_mload, 1, 1};
        t[op::mstore] = {&op_mstore, 2, 0};
        t[op::jump] = {&op_jump, 1, 0};
        t[op::jumpi] = {&op_jumpi, 2, 0};
        t[op::jumpdest] = {&op_jumpdest, 0, 0};
        for (unsigned c = op::push0; c <= op::push32; ++c)
            t[c] = {&op_push, 0, 1};
        for (unsigned c = 0; c < 16; ++c)
        {
            t[op::dup1 + c] = {
                &op_dup, static_cast<std::uint8_t>(c + 1), static_cast<std::uint8_t>(c + 2)};
            t[op::swap1 + c] = {
                &op_swap, static_cast<std::uint8_t>(c + 2), static_cast<std::uint8_t>(c + 2)};
        }
        t[op::log0] = {&op_log0, 2, 0};
        t[op::call] = {&op_call, 2, 1};
        t[op::ret] = {&op_return, 2, 0};
        t[op::invalid] = {&op_invalid, 0, 0};
        return t;
    }();
    static const auto table = [] {
        evmalloc::StackFrame<>::OpTable ops{};
        for (std::size_t c = 0; c < 256; ++c)
            ops[c] = &instructions[c];
        return ops;
    }();
    return table;
}

// ---- the contracts -----------------------------------------------------------------------

constexpr std::uint64_t sum_id = 1, relay_id = 2, main_id = 3, depth_id = 4;

// sum(n): 1 + 2 + ... + n by a loop; logs the result, returns it.
constexpr std::uint8_t sum_code[] = {
    op::push1, 0x00,  //  0 PUSH1 0        [n, acc]
    op::jumpdest,     //  2 JUMPDEST loop
    0x81,             //  3 DUP2           [n, acc, n]
    0x15,             //  4 ISZERO
    op::push1, 0x13,  //  5 PUSH1 end
    0x57,             //  7 JUMPI          [n, acc]
    0x81,             //  8 DUP2
    0x01,             //  9 ADD            [n, acc + n]
    0x90,             // 10 SWAP1          [acc, n]
    op::push1, 0x01,  // 11 PUSH1 1
    0x90,             // 13 SWAP1          [acc, 1, n]
    0x03,             // 14 SUB            [acc, n - 1]
    0x90,             // 15 SWAP1          [n - 1, acc]
    op::push1, 0x02,  // 16 PUSH1 loop
    0x56,             // 18 JUMP
    op::jumpdest,     // 19 JUMPDEST end   [n, acc]
    op::push1, 0x00,  // 20 PUSH1 0
    0x52,             // 22 MSTORE         memory[0..32) = acc
    op::push1, 0x20,  // 23 PUSH1 32
    op::push1, 0x00,  // 25 PUSH1 0
    0xA0,             // 27 LOG0
    op::push1, 0x20,  // 28 PUSH1 32
    op::push1, 0x00,  // 30 PUSH1 0
    0xF3,             // 32 RETURN
};

// relay(x): 2 * sum(x + 1), through a nested call.
constexpr std::uint8_t relay_code[] = {
    op::push1, 0x01,                   // PUSH1 1
    0x01,                              // ADD            [x + 1]
    op::push1, sum_id,                 // PUSH1 sum
    0xF1,                              // CALL           [sum(x + 1)]
    op::push1, 0x02,                   // PUSH1 2
    0x02,                              // MUL
    op::push1, 0x00, 0x52,             // PUSH1 0 MSTORE
    op::push1, 0x20, op::push1, 0x00,  // PUSH1 32 PUSH1 0
    0xF3,                              // RETURN
};

// main(x): relay(x) + sum(x): three frames deep.
constexpr std::uint8_t main_code[] = {
    0x80,                              // DUP1           [x, x]
    op::push1, relay_id,               // PUSH1 relay
    0xF1,                              // CALL           [x, relay(x)]
    0x90,                              // SWAP1          [relay(x), x]
    op::push1, sum_id,                 // PUSH1 sum
    0xF1,                              // CALL           [relay(x), sum(x)]
    0x01,                              // ADD
    op::push1, 0x00, 0x52,             // PUSH1 0 MSTORE
    op::push1, 0x20, op::push1, 0x00,  // PUSH1 32 PUSH1 0
    0xF3,                              // RETURN
};

// depth(n): calls itself n times (n + 1 frames alive at once) and returns n.
constexpr std::uint8_t depth_code[] = {
    0x80,                              //  0 DUP1         [n, n]
    op::push1, 0x0C,                   //  1 PUSH1 rec
    0x57,                              //  3 JUMPI        [n]
    op::push1, 0x00, 0x52,             //  4 PUSH1 0 MSTORE (n == 0)
    op::push1, 0x20, op::push1, 0x00,  //  7 PUSH1 32 PUSH1 0
    0xF3,                              // 11 RETURN
    op::jumpdest,                      // 12 JUMPDEST rec [n]
    op::push1, 0x01, 0x90, 0x03,       // 13 PUSH1 1 SWAP1 SUB   [n - 1]
    op::push1, depth_id,               // 17 PUSH1 depth
    0xF1,                              // 19 CALL         [depth(n - 1)]
    op::push1, 0x01, 0x01,             // 20 PUSH1 1 ADD
    op::push1, 0x00, 0x52,             // 23 PUSH1 0 MSTORE
    op::push1, 0x20, op::push1, 0x00,  // 26 PUSH1 32 PUSH1 0
    0xF3,                              // 30 RETURN
};

std::uint64_t sum_to(std::uint64_t n)
{
    return n * (n + 1) / 2;
}

int failures = 0;

void expect(bool ok, const char* what)
{
    if (!ok)
    {
        std::fprintf(stderr, "vm_integration: FAILED: %s\n", what);
        ++failures;
    }
}

void part1_vm()
{
    Vm vm;
    vm.init_with_optimized_allocator();
    vm.deploy(sum_id, sum_code);
    vm.deploy(relay_id, relay_code);
    vm.deploy(main_id, main_code);
    vm.deploy(depth_id, depth_code);

    struct Tx
    {
        std::uint64_t contract;
        std::uint64_t input;
        std::uint64_t expected;
        std::size_t logs;
    };
    const Tx txs[] = {
        {main_id, 10, 2 * sum_to(11) + sum_to(10), 2},
        {main_id, 100, 2 * sum_to(101) + sum_to(100), 2},
        {depth_id, 40, 40, 0},
        {sum_id, 1000, sum_to(1000), 1},
        {main_id, 0, 2 * sum_to(1) + sum_to(0), 2},
    };
    const std::size_t words_in_use = vm.allocator().word_pool().in_use();
    for (int round = 0; round < 3; ++round)
    {
        for (const Tx& tx : txs)
        {
            const Vm::Receipt r = vm.transact(tx.contract, Word::from(tx.input));
            expect(r.ok, "transaction succeeded");
            expect(r.result == Word::from(tx.expected), "transaction result");
            expect(r.logs == tx.logs, "log count");
            expect(r.arena_bytes > 0, "transaction data went to the arena");
            expect(
                vm.allocator().arena().used() == 0, "reset_arena() freed the transaction's data");
            if (round == 0)
                std::cout << "contract " << tx.contract << " (" << tx.input
                          << ") = " << r.result.limbs[0] << ", " << r.logs << " logs, "
                          << r.arena_bytes << " arena bytes\n";
        }
    }
    // An unknown contract fails cleanly.
    expect(!vm.transact(99, Word{}).ok, "call to a missing contract fails");

    auto& frames = vm.allocator().frames();
    expect(frames.active() == 0, "every frame went back to the pool");
    expect(frames.peak_active() == 41, "depth(40) had 41 frames alive at once");
    // Frames are reused: 41 stack buffers for the deepest transaction, no more over 15
    // transactions.
    expect(frames.buffers_allocated() == 41, "frame buffers reused across transactions");
    expect(frames.retained_stacks() == 41, "frames on shared analyses hold only a stack buffer");

    // CALLs per round: main 3 (relay, its sum, sum) + 3 + depth(40) 40 + sum 0 + main 3.
    expect(vm.nested_calls() == 3 * 49, "nested calls");
    const evmalloc::AllocationStatistics stats = vm.get_allocation_statistics();
    // The registry: 4 map nodes and 4 code copies, still alive; one return buffer per CALL.
    expect(stats.total_allocations == 8 + vm.nested_calls(), "requests counted exactly");
    expect(stats.total_deallocations == vm.nested_calls(), "return buffers given back");
    expect(stats.size_distribution.small == stats.total_allocations, "all requests small");
    expect(vm.allocator().word_pool().in_use() == words_in_use,
        "every return buffer went back to its pool");
    // Each of the 4 contracts was analysed once; every other call found its analysis.
    expect(stats.analysis_cache.misses == 4 && stats.analysis_cache.entries == 4,
        "analysed once per contract");
    expect(stats.analysis_cache.hits == 15 + vm.nested_calls() - 4,
        "every later call found its analysis");
    expect(vm.allocator().analyses().pinned() == 0,
        "no frame pins an analysis after the transactions");
    stats.print_summary(std::cout);
}

// ---- part 2: an interpreter's own Word and Op through a traits struct ----------------------

/// An interpreter's own 256-bit word: 8-byte aligned, as intx::uint256 is.
struct U256
{
    std::uint64_t w[4];
};

struct MiniExec;
/// An interpreter's own Op: a handler function pointer, dispatched directly.
using MiniOp = bool (*)(MiniExec&);

struct MiniTraits
{
    using Word = U256;
    using Op = MiniOp;
    using Metadata = std::uint64_t;
};

struct MiniExec
{
    evmalloc::StackFrame<MiniTraits>& frame;
    std::size_t next = 0;
};

bool mini_stop(MiniExec&)
{
    return false;
}
bool mini_push(MiniExec& ex)  // PUSH1..PUSH8 only: the immediate is in metadata()
{
    ex.frame.stack().push_unchecked(U256{{ex.frame.metadata()[ex.next], 0, 0, 0}});
    ++ex.next;
    return true;
}
bool mini_add(MiniExec& ex)  // low limb only: enough for the demonstration
{
    auto& s = ex.frame.stack();
    const U256 a = s.pop_unchecked();
    s.top().w[0] += a.w[0];
    ++ex.next;
    return true;
}

void part2_custom_traits()
{
    static_assert(alignof(U256) == 8 && sizeof(U256) == 32);
    evmalloc::BasicEvmAllocator<evmalloc::CountingStatistics, MiniTraits> allocator;

    evmalloc::StackFrame<MiniTraits>::OpTable table{};
    table.fill(&mini_stop);
    for (unsigned c = op::push1; c <= op::push1 + 7; ++c)  // PUSH1..PUSH8
        table[c] = &mini_push;
    table[0x01] = &mini_add;

    // PUSH1 0x2a PUSH2 0x0100 ADD PUSH8 0x0102030405060708 ADD STOP
    const std::uint8_t code[] = {op::push1, 0x2a, op::push1 + 1, 0x01, 0x00, 0x01, op::push1 + 7, 1,
        2, 3, 4, 5, 6, 7, 8, 0x01, op::stop};
    auto frame = evmalloc::StackFrame<MiniTraits>::init(sizeof code, allocator.frames());
    expect(frame.has_value(), "custom-traits frame init");
    if (!frame)
        return;
    expect(frame->prepare(code, table).has_value(), "custom-traits prepare");
    MiniExec ex{*frame};
    while (frame->ops()[ex.next](ex))
    {}
    const std::uint64_t expected = 0x2a + 0x100 + 0x0102030405060708ULL;
    expect(frame->stack().size() == 1 && frame->stack().top().w[0] == expected,
        "custom-traits result");
    std::cout << "custom traits: 42 + 256 + 0x0102030405060708 = 0x" << std::hex
              << frame->stack().top().w[0] << std::dec << '\n';
    expect(allocator.word_pool().slot_alignment == 8, "the word pool follows the traits' Word");
}

// ---- part 3: a jumpdest frame, as evmone's baseline interpreter wants it ---------------------

/// A baseline interpreter's traits: no per-instruction arrays (Op = void).
struct BaselineTraits
{
    using Word = evmalloc::Word;
    using Op = void;
    using Metadata = void;
};
using BaselineFrame = evmalloc::StackFrame<BaselineTraits>;

/// Why run_baseline() stopped without a result.
enum class Halt
{
    out_of_gas,
    bad_jump,
    undefined_instruction,
};

struct BaselineOutcome
{
    std::optional<std::uint64_t> result;
    Halt halt = Halt::undefined_instruction;
};

/// Runs sum_code on a jumpdest frame with a gas budget (only memory is charged here).
BaselineOutcome run_baseline(BaselineFrame& frame, std::uint64_t n, std::int64_t& gas)
{
    const std::uint8_t* const code =
        frame.analysis().code().data();  // padded: reading past the end is safe
    const std::size_t size = frame.analysis().code().size();
    auto& stack = frame.stack();
    stack.push_unchecked(Word::from(n));
    for (std::size_t pc = 0; pc < size;)
    {
        const std::uint8_t opcode = code[pc];
        if (evmalloc::is_push(opcode))
        {
            const std::size_t len = evmalloc::push_size(opcode);
            stack.push_unchecked(
                load_be(code + pc + 1, len));  // no bounds check: the padding is zeros
            pc += 1 + len;
            continue;
        }
        switch (opcode)
        {
        case op::add:
        {
            const Word b = stack.pop_unchecked();
            stack.top() = add(stack.top(), b);
            break;
        }
        case op::sub:
        {
            const Word a = stack.pop_unchecked();
            stack.top() = sub(a, stack.top());
            break;
        }
        case op::iszero:
            stack.top() = Word::from(is_zero(stack.top()) ? 1 : 0);
            break;
        case op::dup1 + 1:
            stack.dup(2);
            break;
        case op::swap1:
            stack.swap(1);
            break;
        case evmalloc::OP_JUMPDEST:
            break;
        case op::jump:
        case op::jumpi:
        {
            const Word dest = stack.pop_unchecked();
            const bool taken = opcode == op::jump || !is_zero(stack.pop_unchecked());
            std::uint64_t target = 0;
            if (taken)
            {
                if (!small(dest, target) || !frame.analysis().is_jumpdest(target))
                    return {std::nullopt, Halt::bad_jump};
                pc = target;
                continue;
            }
            break;
        }
        case op::mstore:
        {
            std::uint64_t offset = 0;
            small(stack.pop_unchecked(), offset);
            const Word value = stack.pop_unchecked();
            // Charge first, then grow: nothing changes when the gas does not cover it.
            const auto charged = frame.memory().expand(offset, 32, gas);
            if (!charged)  // out_of_gas (or memory_limit_exceeded, out_of_memory: all halt here)
                return {std::nullopt, Halt::out_of_gas};
            gas -= static_cast<std::int64_t>(*charged);
            store_be(value, &frame.memory()[offset]);
            break;
        }
        case op::log0:
            stack.pop_unchecked();
            stack.pop_unchecked();
            break;
        case op::ret:
        {
            std::uint64_t offset = 0;
            small(stack.pop_unchecked(), offset);
            stack.pop_unchecked();
            return {load_be(&frame.memory()[offset], 32).limbs[0]};
        }
        default:
            return {std::nullopt, Halt::undefined_instruction};  // not used by sum_code
        }
        ++pc;
    }
    return {std::uint64_t{0}};
}

void part3_jumpdest_frame()
{
    // An EVMC VM must run any code it is given: max_code_size up to 2^32 - 2 lets code above
    // 128 KiB run through exactly sized buffers. The pool trims itself after each top-level call.
    evmalloc::FramePool<BaselineTraits> pool{std::pmr::new_delete_resource(),
        evmalloc::FramePoolConfig{.max_code_size = evmalloc::Analysis::max_analysable_size}};
    evmalloc::AnalysisCache<BaselineTraits> cache;
    const std::span<const std::uint8_t> code{sum_code};

    // The per-frame path: this frame's buffer holds the stack, the padded code and the bits.
    {
        auto frame = BaselineFrame::init(code.size(), pool);
        expect(frame.has_value() && frame->prepare(code).has_value(), "jumpdest frame prepared");
        expect(frame->buffer_size() ==
                   evmalloc::frame_buffer_size<BaselineTraits>(evmalloc::Tier::kb4),
            "a jumpdest frame's buffer has no instruction arrays");
        std::int64_t gas = 1'000'000;
        const BaselineOutcome r = run_baseline(*frame, 1000, gas);
        expect(r.result == sum_to(1000), "baseline interpreter result");
        expect(gas == 1'000'000 - 3, "one word of memory charged: 3 gas");
    }
    // The shared path (verified key): the second call finds the analysis; gas too short to
    // grow memory is out_of_gas, and the memory stayed as it was.
    for (int call = 0; call < 2; ++call)
    {
        auto frame = BaselineFrame::init(code, pool, cache);
        expect(frame.has_value(), "jumpdest frame on a shared analysis");
        if (!frame)
            return;
        std::int64_t gas = 2;
        const BaselineOutcome r = run_baseline(*frame, 10, gas);
        expect(!r.result && r.halt == Halt::out_of_gas, "memory growth refused before paying");
        expect(frame->memory().size() == 0 && gas == 2, "nothing grew, nothing was charged");
    }
    expect(cache.misses() == 1 && cache.hits() == 1, "the second call reused the analysis");
    std::cout << "jumpdest frame: sum(1000) = " << sum_to(1000) << ", frame buffer "
              << evmalloc::frame_buffer_size<BaselineTraits>(evmalloc::Tier::kb4)
              << " B (instruction frame: " << evmalloc::frame_buffer_size<>(evmalloc::Tier::kb4)
              << " B)\n";
}
}  // namespace

int main()
{
    part1_vm();
    part2_custom_traits();
    part3_jumpdest_frame();
    if (failures != 0)
    {
        std::fprintf(stderr, "vm_integration: %d check(s) failed\n", failures);
        return 1;
    }
    std::cout << "vm_integration: all checks passed\n";
    return 0;
}
