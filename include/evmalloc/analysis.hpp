// evmalloc: bytecode analysis into caller-provided buffers.
//
// One left-to-right pass over the code finds every instruction start (PUSH1..PUSH32
// immediates are skipped; a PUSH whose immediate runs past the end still counts once) and
// writes three tables into buffers the frame carved for it; nothing is allocated:
//
//   inst_to_pc[i]     pc of instruction i; the last instruction is the implicit STOP at
//                     pc == code.size(), so instruction_count() >= 1 (empty code has just it)
//   pc_to_inst[pc]    for pc <= code.size(): the instruction starting at pc, or
//                     no_instruction inside push data
//   jumpdest_bits     bit pc set iff code[pc] == OP_JUMPDEST at an instruction start
//
// Sizes for code of n bytes (calculate_allocation(n) is their sum, alignment 8):
//   jumpdest_bits  (n + 64) / 64  std::uint64_t   (8-byte aligned)
//   inst_to_pc     n + 1          std::uint32_t
//   pc_to_inst     n + 1          std::uint32_t
// carve() lays them out in that order in one block: the bit words first, so the whole block
// needs only 8-byte alignment and no padding; the two u32 arrays follow, 4-byte aligned.
//
// prepare(code, buffers, table, ops, metadata) is the same pass, also filling an interpreter's
// two instruction arrays (ops[i] = table[opcode], metadata[i] = PUSH1..PUSH8 immediate):
// StackFrame::prepare() uses it, so the code is read once per call.
//
// Any code up to max_analysable_size (2^32 - 2) bytes is analysed, the range of the 32-bit
// tables; frames apply their pool's own code-size limit before they get here.
// include/evmalloc/jumpdest_analysis.hpp writes the jumpdest bits alone.
//
// An Analysis is a small trivially copyable value (pointers and counts) that views the code
// and the buffers: both must outlive it.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>

#include "allocation.hpp"
#include "config.hpp"
#include "jumpdest_scan.hpp"
#include "opcodes.hpp"
#include "result.hpp"

namespace evmalloc
{
namespace detail
{
/// The 8 bytes at p as a big-endian integer.
inline std::uint64_t load_be64(const std::uint8_t* p) noexcept
{
    std::uint64_t v;
    std::memcpy(&v, p, sizeof(v));
    if constexpr (std::endian::native == std::endian::little)
        v = __builtin_bswap64(v);
    return v;
}

/// For a PUSH with an immediate of `len` bytes (index len, 1..32) and w = load_be64 of the 8
/// bytes after the opcode: (w >> s) >> s with s = push_value_shift[len] is the immediate of
/// PUSH1..PUSH8 (s = 32 - 4 * len) and 0 for PUSH9..PUSH32 (s = 32: two shifts, as one shift
/// by 64 is undefined). Branch-free, one small table load.
inline constexpr std::array<std::uint8_t, 33> push_value_shift = [] {
    std::array<std::uint8_t, 33> s{};
    for (std::size_t len = 0; len < s.size(); ++len)
        s[len] = static_cast<std::uint8_t>(len >= 1 && len <= 8 ? 32 - 4 * len : 32);
    return s;
}();

/// What the analysis pass writes besides its three tables, in two steps per instruction:
/// `fill.run(i, code, count)` for a run of instructions without immediates, else
/// `auto h = fill.load(opcode)` as soon as the opcode is read, then `fill.store(i, h, value)`
/// with its push value once it is decoded, or for the two instructions of a main-loop
/// iteration `fill.store(i, h, value, h2, value2)` (entries i and i + 1), which writes the two
/// ops entries next to each other so the compiler can merge them.
/// NoInstructionFill writes nothing: Analysis::prepare(code, buffers).
struct NoInstructionFill
{
    static constexpr void run(std::uint32_t, const std::uint8_t*, std::size_t) noexcept {}
    static constexpr int load(std::uint8_t) noexcept { return 0; }
    static constexpr void store(std::uint32_t, int, std::uint64_t) noexcept {}
    static constexpr void store(std::uint32_t, int, std::uint64_t, int, std::uint64_t) noexcept {}
};

/// ops[i] = table[opcode], metadata[i] = the push value.
template <class Op, class Metadata>
struct InstructionFill
{
    const Op* table;  // 256 entries
    Op* ops;
    Metadata* metadata;

    /// Entries i .. i + count - 1 for `count` instructions without immediates at `code`.
    void run(std::uint32_t i, const std::uint8_t* code, std::size_t count) const noexcept
    {
        Op* const __restrict o = ops + i;
        Metadata* const __restrict m = metadata + i;
        for (std::size_t k = 0; k < count; ++k)
            o[k] = table[code[k]];
        for (std::size_t k = 0; k < count; ++k)
            m[k] = Metadata{};
    }
    Op load(std::uint8_t opcode) const noexcept { return table[opcode]; }
    void store(std::uint32_t i, const Op& op, std::uint64_t value) const noexcept
    {
        ops[i] = op;
        metadata[i] = static_cast<Metadata>(value);
    }
    void store(std::uint32_t i, const Op& op, std::uint64_t value, const Op& op2,
        std::uint64_t value2) const noexcept
    {
        ops[i] = op;
        ops[i + 1] = op2;
        metadata[i] = static_cast<Metadata>(value);
        metadata[i + 1] = static_cast<Metadata>(value2);
    }
};
}  // namespace detail

/// Where Analysis::prepare writes its tables.
struct AnalysisBuffers
{
    std::span<std::uint32_t> inst_to_pc;
    std::span<std::uint32_t> pc_to_inst;
    std::span<std::uint64_t> jumpdest_bits;
};

class Analysis
{
public:
    /// pc_to_inst() of a pc inside push data (or past the end of the code).
    static constexpr std::uint32_t no_instruction = 0xFFFFFFFF;

    /// The largest code prepare() analyses: 2^32 - 2 bytes, so that every pc up to
    /// code.size() and every instruction index fits in 32 bits below no_instruction. This is
    /// the index range, not a protocol limit: a frame applies its pool's own max_code_size.
    static constexpr std::size_t max_analysable_size = 0xFFFFFFFE;

    /// Entries of inst_to_pc and of pc_to_inst for code of n bytes.
    [[nodiscard]] static constexpr std::size_t table_entries(std::size_t n) noexcept
    {
        return n + 1;
    }
    /// Words of jumpdest_bits for code of n bytes.
    [[nodiscard]] static constexpr std::size_t jumpdest_words(std::size_t n) noexcept
    {
        return (n + 64) / 64;
    }

    /// The bytes of the three buffers for code of n bytes, in carve() order, alignment 8.
    [[nodiscard]] static constexpr Allocation calculate_allocation(std::size_t n) noexcept
    {
        return {jumpdest_words(n) * sizeof(std::uint64_t) +
                    2 * table_entries(n) * sizeof(std::uint32_t),
            alignof(std::uint64_t), false};
    }

    /// Splits `storage` into the three buffers for code of n bytes: jumpdest_bits, then
    /// inst_to_pc, then pc_to_inst. \requires storage is 8-byte aligned and holds
    /// calculate_allocation(n).size bytes. Never reads or writes the bytes. When storage is
    /// short the buffers are cut to what fits (prepare() then says buffer_too_small).
    [[nodiscard]] static AnalysisBuffers carve(std::span<std::byte> storage, std::size_t n) noexcept
    {
        EVMALLOC_ASSERT(
            reinterpret_cast<std::uintptr_t>(storage.data()) % alignof(std::uint64_t) == 0);
        std::byte* p = storage.data();
        std::size_t left = storage.size();
        const auto take = [&](std::size_t want, std::size_t elem) noexcept {
            const std::size_t count = left / elem < want ? left / elem : want;
            std::byte* const at = p;
            p += count * elem;
            left -= count * elem;
            return std::pair{at, count};
        };
        const auto [bits_at, bits_n] = take(jumpdest_words(n), sizeof(std::uint64_t));
        const auto [i2p_at, i2p_n] = take(table_entries(n), sizeof(std::uint32_t));
        const auto [p2i_at, p2i_n] = take(table_entries(n), sizeof(std::uint32_t));
        return {{reinterpret_cast<std::uint32_t*>(i2p_at), i2p_n},
            {reinterpret_cast<std::uint32_t*>(p2i_at), p2i_n},
            {reinterpret_cast<std::uint64_t*>(bits_at), bits_n}};
    }

    /// Analyses `code` into `buffers`; writes nothing outside them and nothing at all on error.
    /// \returns Errc::code_too_large when code.size() > max_analysable_size (checked first), else
    /// Errc::buffer_too_small when any buffer is shorter than the sizes above.
    [[nodiscard]] static Result<Analysis> prepare(
        std::span<const std::uint8_t> code, const AnalysisBuffers& buffers) noexcept;

    /// prepare(), and in the same pass over the code the instruction arrays of an interpreter:
    /// for every instruction i, ops[i] = table[its opcode] (table[OP_STOP] for the implicit STOP)
    /// and metadata[i] = the immediate of PUSH1..PUSH8 as a big-endian integer, bytes past the
    /// end of the code read as zero; 0 for every other opcode (PUSH0, PUSH9..PUSH32 included).
    /// Entries past instruction_count() are not written.
    /// \returns what prepare() returns, and Errc::buffer_too_small when ops or metadata hold
    /// fewer than code.size() + 1 entries; on error nothing is written.
    template <class Op, class Metadata>
    [[nodiscard]] static Result<Analysis> prepare(std::span<const std::uint8_t> code,
        const AnalysisBuffers& buffers, const std::array<Op, 256>& table, std::span<Op> ops,
        std::span<Metadata> metadata) noexcept;

    /// An empty analysis of no code, with no tables (instruction_count() == 0).
    constexpr Analysis() noexcept = default;

    /// Instructions including the implicit STOP (>= 1 after prepare()).
    [[nodiscard]] std::size_t instruction_count() const noexcept { return instruction_count_; }

    /// The pc of instruction i (inst_to_pc(instruction_count() - 1) == code().size()).
    /// \requires i < instruction_count()
    [[nodiscard]] std::uint32_t inst_to_pc(std::size_t i) const noexcept
    {
        EVMALLOC_ASSERT(i < instruction_count_);
        return inst_to_pc_[i];
    }

    /// The instruction starting at `pc`, or no_instruction inside push data and for any
    /// pc > code().size() (safe for every value).
    [[nodiscard]] std::uint32_t pc_to_inst(std::uint64_t pc) const noexcept
    {
        return pc < table_size_ ? pc_to_inst_[pc] : no_instruction;
    }

    /// True iff pc < code().size(), code()[pc] == OP_JUMPDEST and pc starts an instruction. Safe for
    /// every pc value, huge ones included.
    [[nodiscard]] bool is_jumpdest(std::uint64_t pc) const noexcept
    {
        return pc < code_.size() && ((jumpdest_bits_[pc / 64] >> (pc % 64)) & 1U) != 0;
    }

    /// The analysed bytes (a view: the caller keeps the code alive).
    [[nodiscard]] std::span<const std::uint8_t> code() const noexcept { return code_; }

    /// The tables as written: instruction_count() entries of inst_to_pc, code().size() + 1 of
    /// pc_to_inst, jumpdest_words(code().size()) of jumpdest_bits.
    [[nodiscard]] std::span<const std::uint32_t> inst_to_pc_span() const noexcept
    {
        return {inst_to_pc_, instruction_count_};
    }
    [[nodiscard]] std::span<const std::uint32_t> pc_to_inst_span() const noexcept
    {
        return {pc_to_inst_, table_size_};
    }
    [[nodiscard]] std::span<const std::uint64_t> jumpdest_bits_span() const noexcept
    {
        return {jumpdest_bits_, table_size_ == 0 ? 0 : jumpdest_words(code_.size())};
    }

private:
    // Both prepare()s: the checks, the pass, the result.
    template <class Fill>
    static Result<Analysis> prepare_with(
        std::span<const std::uint8_t> code, const AnalysisBuffers& buffers, Fill fill) noexcept;

    // The pass itself (sizes checked); returns instruction_count(). The fill is taken by value:
    // a local copy stays in registers, where a reference would be re-read after every store
    // through the pointers it holds.
    template <class Fill>
    static std::uint32_t analyse(const std::uint8_t* code, std::size_t n, std::uint32_t* inst_to_pc,
        std::uint32_t* pc_to_inst, std::uint64_t* jumpdest_bits, Fill fill) noexcept;

    // analyse() for code with a 64-byte block without PUSH at `plain` (detail::block_masks):
    // pairs up to each such block, the block and the plain ones right after it in bulk. Out of
    // line: the same loops inlined into analyse() cost compiled code (no plain block) 5-20% more
    // instructions, registers spilled in the main loop.
    template <class Fill>
    [[gnu::noinline]] static std::uint32_t analyse_runs(const std::uint8_t* code, std::size_t n,
        std::size_t plain, std::uint32_t* inst_to_pc, std::uint32_t* pc_to_inst,
        std::uint64_t* jumpdest_bits, Fill fill) noexcept;

    static constexpr std::size_t step_room = 9;  // bytes step() reads from its pc
    static constexpr std::size_t pair_room = 33 + step_room;

    // The main loop: two instructions per iteration from (pc, inst) while pc + pair_room <=
    // limit (<= n; see analyse()).
    template <class Fill>
    [[gnu::always_inline]] static void pairs(const std::uint8_t* __restrict code, std::size_t limit,
        std::size_t& pc, std::uint32_t& inst, std::uint32_t* __restrict i2p,
        std::uint32_t* __restrict p2i, std::uint64_t* __restrict bits, Fill fill) noexcept
    {
        while (pc + pair_room <= limit)
        {
            const auto pc_a = static_cast<std::uint32_t>(pc);
            const auto op_a = fill.load(code[pc]);
            const std::uint64_t value_a = step(code, p2i, pc, limit, inst, bits, 0);
            const auto pc_b = static_cast<std::uint32_t>(pc);
            const auto op_b = fill.load(code[pc]);
            const std::uint64_t value_b = step(code, p2i, pc, limit, inst + 1, bits, 0);
            i2p[inst] = pc_a;
            i2p[inst + 1] = pc_b;
            fill.store(inst, op_a, value_a, op_b, value_b);
            inst += 2;
        }
    }

    // After the pairs: one instruction at a time while step_room bytes are left, the tail, the
    // implicit STOP; returns instruction_count().
    template <class Fill>
    [[gnu::always_inline]] static std::uint32_t finish(const std::uint8_t* __restrict code,
        std::size_t n, std::size_t pc, std::uint32_t inst, std::uint32_t* __restrict i2p,
        std::uint32_t* __restrict p2i, std::uint64_t* __restrict bits, Fill fill) noexcept
    {
        while (pc + step_room <= n)
        {
            i2p[inst] = static_cast<std::uint32_t>(pc);
            const auto op = fill.load(code[pc]);
            fill.store(inst, op, step(code, p2i, pc, n, inst, bits, 0));
            ++inst;
        }
        if (pc < n)  // else a PUSH took pc past n
        {
            const std::size_t start = pc;
            const std::size_t left = n - start;
            std::uint8_t rest[step_room + 8] = {};      // the last bytes, then zeros for immediates
            std::uint32_t rest_entries[step_room + 3];  // pc_to_inst[start ..], room for a store
            std::memcpy(rest, code + start, left);
            for (std::size_t k = 0; k < left; ++inst)
            {
                i2p[inst] = static_cast<std::uint32_t>(start + k);
                const auto op = fill.load(rest[k]);
                fill.store(inst, op, step(rest, rest_entries, k, left, inst, bits, start));
            }
            std::memcpy(p2i + start, rest_entries, left * sizeof(std::uint32_t));
        }
        // The implicit STOP at pc == n.
        i2p[inst] = static_cast<std::uint32_t>(n);
        p2i[n] = inst;
        fill.store(inst, fill.load(OP_STOP), 0);
        return inst + 1;
    }

    // Decodes instruction i at code[pc] (code[pc + 1 .. pc + 8] readable: real bytes, or the
    // tail's zero padding): writes pc_to_inst[pc ..] for its bytes, which needs room for
    // pc_to_inst[pc .. pc + 3] and up to pc_to_inst[n]; sets the jumpdest bit of code position
    // origin + pc; advances pc past it; returns its PUSH1..PUSH8 immediate, else 0. The main
    // loop passes the code and the table themselves (origin 0), the tail local copies of their
    // last part (origin: where that part starts in the code).
    [[gnu::always_inline]] static std::uint64_t step(const std::uint8_t* code,
        std::uint32_t* pc_to_inst, std::size_t& pc, std::size_t n, std::uint32_t i,
        std::uint64_t* jumpdest_bits, std::size_t origin) noexcept
    {
        const std::uint8_t op = code[pc];
        if (is_push(op))
        {
            const std::size_t len = push_size(op);
            // Four entries as one 16-byte value (a GCC/Clang vector: one store).
            using Entries = std::uint32_t __attribute__((vector_size(16)));
            const Entries first = {i, no_instruction, no_instruction, no_instruction};
            std::memcpy(pc_to_inst + pc, &first, sizeof(first));
            if (len > 3) [[unlikely]]
                mark_push_data(pc_to_inst, pc + 4, pc + len < n ? pc + len : n, n);
            const unsigned s = detail::push_value_shift[len];
            const std::uint64_t value = (detail::load_be64(code + pc + 1) >> s) >> s;
            pc += len + 1;
            return value;
        }
        pc_to_inst[pc] = i;
        if (op == OP_JUMPDEST)
            jumpdest_bits[(origin + pc) / 64] |= std::uint64_t{1} << ((origin + pc) % 64);
        ++pc;
        return 0;
    }

    // pc_to_inst[from .. last] = no_instruction, in 16-byte stores while they end at or before
    // pc_to_inst[n], then entry by entry: the rest of a PUSH4..PUSH32 immediate, out of line so
    // the main loop keeps its registers. \requires last <= n
    [[gnu::noinline, gnu::cold]] static void mark_push_data(
        std::uint32_t* pc_to_inst, std::size_t from, std::size_t last, std::size_t n) noexcept
    {
        using Entries = std::uint32_t __attribute__((vector_size(16)));
        constexpr Entries gap = {no_instruction, no_instruction, no_instruction, no_instruction};
        std::size_t d = from;
        for (; d <= last && d + 3 <= n; d += 4)
            std::memcpy(pc_to_inst + d, &gap, sizeof(gap));
        for (; d <= last; ++d)
            pc_to_inst[d] = no_instruction;
    }

    // The start of the first 64-byte block at or after `from` (a multiple of 64) that holds no
    // PUSH byte and ends inside the code, else n.
    static std::size_t next_plain_block(
        const std::uint8_t* code, std::size_t n, std::size_t from) noexcept
    {
        for (std::size_t b = from; b + 64 <= n; b += 64)
            if (!detail::has_push(code + b))
                return b;
        return n;
    }

    // A run of `count` (<= 64) instructions without immediates at code[pc ..] (their JUMPDEST
    // bytes in `jumpdests`, bit k for byte pc + k): every table entry in bulk, no decode.
    template <class Fill>
    static void run(const std::uint8_t* code, std::size_t pc, std::size_t count,
        std::uint64_t jumpdests, std::uint32_t inst, std::uint32_t* __restrict inst_to_pc,
        std::uint32_t* __restrict pc_to_inst, std::uint64_t* jumpdest_bits, Fill fill) noexcept
    {
        // Four entries per 16-byte store (a GCC/Clang vector), then one at a time.
        using Entries = std::uint32_t __attribute__((vector_size(16)));
        const auto p = static_cast<std::uint32_t>(pc);
        Entries at_pc = Entries{0, 1, 2, 3} + p;
        Entries at_inst = Entries{0, 1, 2, 3} + inst;
        std::size_t k = 0;
        for (; k + 4 <= count; k += 4, at_pc += 4, at_inst += 4)
        {
            std::memcpy(inst_to_pc + inst + k, &at_pc, sizeof(at_pc));
            std::memcpy(pc_to_inst + pc + k, &at_inst, sizeof(at_inst));
        }
        for (; k < count; ++k)
        {
            inst_to_pc[inst + k] = static_cast<std::uint32_t>(pc + k);
            pc_to_inst[pc + k] = static_cast<std::uint32_t>(inst + k);
        }
        const std::size_t shift = pc % 64;
        jumpdest_bits[pc / 64] |= jumpdests << shift;
        if (shift != 0 && (jumpdests >> (64 - shift)) != 0)
            jumpdest_bits[pc / 64 + 1] |= jumpdests >> (64 - shift);
        fill.run(inst, code + pc, count);
    }

    std::span<const std::uint8_t> code_{};
    const std::uint32_t* inst_to_pc_ = nullptr;
    const std::uint32_t* pc_to_inst_ = nullptr;
    const std::uint64_t* jumpdest_bits_ = nullptr;
    std::uint32_t instruction_count_ = 0;
    std::uint32_t table_size_ = 0;  // code_.size() + 1 once prepared, 0 before
};

static_assert(std::is_trivially_copyable_v<Analysis>);

// The pass: step() per instruction writes pc_to_inst for its bytes and its jumpdest bit; the
// loops write inst_to_pc[i] and, through the fill, ops[i] and metadata[i].
//
// Main loop: two instructions per iteration while 42 bytes are left (the second starts at most
// 33 bytes after the first, and step() reads 9 bytes and stores 4 entries from its pc), then
// one at a time while 9 are left, on the code and pc_to_inst in place. Where the code has a
// 64-byte block without a PUSH byte (one mask, detail::block_masks), the pairs stop at it and
// the block (and the plain blocks after it) is written in bulk: each byte is an instruction,
// so inst_to_pc and pc_to_inst count up, the jumpdest bits are the mask's, and the fill writes
// table[opcode] and 0. A step's 16-byte store
// may write no_instruction into the entries of the next instructions; they store after it,
// each from its own pc, so every entry ends as its own instruction wrote it. The ops table is
// read as soon as the opcode is, and the stores of a pair come last: stores bind this loop.
// Tail: the last (< 9) bytes, through the same step() on a zero-padded copy (an immediate cut
// off by the end reads zeros) and local pc_to_inst entries, copied back afterwards.
// docs/analysis.md says what was measured and what was tried.
template <class Fill>
inline std::uint32_t Analysis::analyse(const std::uint8_t* const __restrict code,
    const std::size_t n, std::uint32_t* const __restrict i2p, std::uint32_t* const __restrict p2i,
    std::uint64_t* const __restrict bits, Fill fill) noexcept
{
    std::memset(bits, 0, jumpdest_words(n) * sizeof(std::uint64_t));
    const std::size_t plain = next_plain_block(code, n, 0);
    if (plain != n)
        return analyse_runs(code, n, plain, i2p, p2i, bits, fill);
    std::size_t pc = 0;
    std::uint32_t inst = 0;
    pairs(code, n, pc, inst, i2p, p2i, bits, fill);
    return finish(code, n, pc, inst, i2p, p2i, bits, fill);
}

template <class Fill>
std::uint32_t Analysis::analyse_runs(const std::uint8_t* const __restrict code, const std::size_t n,
    std::size_t plain, std::uint32_t* const __restrict i2p, std::uint32_t* const __restrict p2i,
    std::uint64_t* const __restrict bits, Fill fill) noexcept
{
    std::size_t pc = 0;
    std::uint32_t inst = 0;
    while (plain < n)
    {
        // Pairs up to the plain block: pc + pair_room <= limit iff pc < plain. No immediate
        // reaches limit (<= n), so step() may clip push data at limit as at n.
        pairs(code, plain + pair_room - 1 < n ? plain + pair_room - 1 : n, pc, inst, i2p, p2i, bits,
            fill);
        if (pc < plain)
            break;  // the plain block is within pair_room of the end: finish() takes it
        // pc >= plain: in the plain block (push data may have run into it) or past it.
        while (plain < n && plain <= pc && pc < plain + 64)
        {
            const std::size_t count = plain + 64 - pc;
            const std::uint64_t jumpdests =
                detail::block_masks(code + plain).jumpdests >> (pc - plain);
            run(code, pc, count, jumpdests, inst, i2p, p2i, bits, fill);
            pc += count;
            inst += static_cast<std::uint32_t>(count);
            plain = next_plain_block(code, n, plain + 64);
        }
        if (plain < pc)  // a PUSH's data ran past the plain block
            plain = next_plain_block(code, n, pc / 64 * 64);
    }
    pairs(code, n, pc, inst, i2p, p2i, bits, fill);
    return finish(code, n, pc, inst, i2p, p2i, bits, fill);
}

template <class Fill>
inline Result<Analysis> Analysis::prepare_with(
    std::span<const std::uint8_t> code, const AnalysisBuffers& buffers, Fill fill) noexcept
{
    const std::size_t n = code.size();
    if (n > max_analysable_size)
        return Errc::code_too_large;
    if (buffers.inst_to_pc.size() < table_entries(n) ||
        buffers.pc_to_inst.size() < table_entries(n) ||
        buffers.jumpdest_bits.size() < jumpdest_words(n))
        return Errc::buffer_too_small;

    Analysis a;
    a.code_ = code;
    a.inst_to_pc_ = buffers.inst_to_pc.data();
    a.pc_to_inst_ = buffers.pc_to_inst.data();
    a.jumpdest_bits_ = buffers.jumpdest_bits.data();
    a.instruction_count_ = analyse(code.data(), n, buffers.inst_to_pc.data(),
        buffers.pc_to_inst.data(), buffers.jumpdest_bits.data(), fill);
    a.table_size_ = static_cast<std::uint32_t>(n + 1);
    return a;
}

inline Result<Analysis> Analysis::prepare(
    std::span<const std::uint8_t> code, const AnalysisBuffers& buffers) noexcept
{
    return prepare_with(code, buffers, detail::NoInstructionFill{});
}

template <class Op, class Metadata>
inline Result<Analysis> Analysis::prepare(std::span<const std::uint8_t> code,
    const AnalysisBuffers& buffers, const std::array<Op, 256>& table, std::span<Op> ops,
    std::span<Metadata> metadata) noexcept
{
    if (code.size() <= max_analysable_size &&
        (ops.size() <= code.size() || metadata.size() <= code.size()))
        return Errc::buffer_too_small;
    return prepare_with(code, buffers,
        detail::InstructionFill<Op, Metadata>{table.data(), ops.data(), metadata.data()});
}
}  // namespace evmalloc
