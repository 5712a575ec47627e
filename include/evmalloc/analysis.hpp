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
//   jumpdest_bits     bit pc set iff code[pc] == 0x5B (JUMPDEST) at an instruction start
//
// Sizes for code of n bytes (calculate_allocation(n) is their sum, alignment 8):
//   jumpdest_bits  (n + 64) / 64  std::uint64_t   (8-byte aligned)
//   inst_to_pc     n + 1          std::uint32_t
//   pc_to_inst     n + 1          std::uint32_t
// carve() lays them out in that order in one block: the bit words first, so the whole block
// needs only 8-byte alignment and no padding; the two u32 arrays follow, 4-byte aligned.
//
// An Analysis is a small trivially copyable value (pointers and counts) that views the code
// and the buffers: both must outlive it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>

#include "allocation.hpp"
#include "config.hpp"
#include "result.hpp"
#include "tier.hpp"

namespace evmalloc
{
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

    /// Entries of inst_to_pc and of pc_to_inst for code of n bytes.
    [[nodiscard]] static constexpr std::size_t table_entries(std::size_t n) noexcept { return n + 1; }
    /// Words of jumpdest_bits for code of n bytes.
    [[nodiscard]] static constexpr std::size_t jumpdest_words(std::size_t n) noexcept { return (n + 64) / 64; }

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
        EVMALLOC_ASSERT(reinterpret_cast<std::uintptr_t>(storage.data()) % alignof(std::uint64_t) == 0);
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
    /// \returns Errc::code_too_large when code.size() > max_code_size (checked first), else
    /// Errc::buffer_too_small when any buffer is shorter than the sizes above.
    [[nodiscard]] static Result<Analysis> prepare(
        std::span<const std::uint8_t> code, const AnalysisBuffers& buffers) noexcept;

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

    /// True iff pc < code().size(), code()[pc] == 0x5B and pc starts an instruction. Safe for
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
    std::span<const std::uint8_t> code_{};
    const std::uint32_t* inst_to_pc_ = nullptr;
    const std::uint32_t* pc_to_inst_ = nullptr;
    const std::uint64_t* jumpdest_bits_ = nullptr;
    std::uint32_t instruction_count_ = 0;
    std::uint32_t table_size_ = 0;  // code_.size() + 1 once prepared, 0 before
};

static_assert(std::is_trivially_copyable_v<Analysis>);

// One pass, no allocation. Per instruction: one inst_to_pc store and one pc_to_inst store.
// A PUSH adds one 16-byte store of no_instruction over pc + 1 .. pc + 4: the whole immediate
// of PUSH1..PUSH4 (the common ones) in one go; for shorter immediates the next instructions
// overwrite the extra entries, which is why the main loop keeps 4 entries of room and a short
// tail loop finishes the last bytes. PUSH5..PUSH32 (rarer) take a branch that fills the rest.
// JUMPDEST sets its bit with a shift; only the bit words the code needs are zeroed first.
// (Measured: storing the 16 bytes for every instruction, or a branchless step, is slower.)
inline Result<Analysis> Analysis::prepare(
    std::span<const std::uint8_t> code, const AnalysisBuffers& buffers) noexcept
{
    const std::size_t n = code.size();
    if (n > max_code_size)
        return Errc::code_too_large;
    if (buffers.inst_to_pc.size() < table_entries(n) || buffers.pc_to_inst.size() < table_entries(n) ||
        buffers.jumpdest_bits.size() < jumpdest_words(n))
        return Errc::buffer_too_small;

    const std::uint8_t* const c = code.data();
    std::uint32_t* const i2p = buffers.inst_to_pc.data();
    std::uint32_t* const p2i = buffers.pc_to_inst.data();
    std::uint64_t* const bits = buffers.jumpdest_bits.data();
    std::memset(bits, 0, jumpdest_words(n) * sizeof(std::uint64_t));

    static constexpr std::array<std::uint32_t, 4> gap{
        no_instruction, no_instruction, no_instruction, no_instruction};
    constexpr std::uint8_t op_jumpdest = 0x5B;
    constexpr std::uint8_t op_push1 = 0x60;

    std::size_t pc = 0;
    std::uint32_t inst = 0;
    // Main loop: pc + 4 <= n, so p2i[pc + 1 .. pc + 4] are inside the n + 1 entries.
    const std::size_t main_end = n >= 4 ? n - 3 : 0;
    while (pc < main_end)
    {
        const std::uint8_t op = c[pc];
        i2p[inst] = static_cast<std::uint32_t>(pc);
        p2i[pc] = inst;
        ++inst;
        // 0x60..0x7F are the only bytes that are >= 0x60 as signed 8-bit values.
        if (static_cast<std::int8_t>(op) >= static_cast<std::int8_t>(op_push1))
        {
            std::memcpy(p2i + pc + 1, gap.data(), sizeof(gap));
            const std::size_t len = static_cast<std::size_t>(op) - (op_push1 - 1);
            if (len > 4) [[unlikely]]
            {
                const std::size_t last = pc + len < n ? pc + len : n - 1;  // last data index
                for (std::size_t i = pc + 5; i <= last; ++i)
                    p2i[i] = no_instruction;
            }
            pc += len + 1;
        }
        else
        {
            if (op == op_jumpdest)
                bits[pc / 64] |= std::uint64_t{1} << (pc % 64);
            ++pc;
        }
    }
    // Tail: the last (up to 4) bytes, with the push data cut at the end of the code.
    while (pc < n)
    {
        const std::uint8_t op = c[pc];
        i2p[inst] = static_cast<std::uint32_t>(pc);
        p2i[pc] = inst;
        ++inst;
        if (static_cast<std::int8_t>(op) >= static_cast<std::int8_t>(op_push1))
        {
            const std::size_t len = static_cast<std::size_t>(op) - (op_push1 - 1);
            const std::size_t end = pc + 1 + len < n ? pc + 1 + len : n;
            for (std::size_t i = pc + 1; i < end; ++i)
                p2i[i] = no_instruction;
            pc += len + 1;
        }
        else
        {
            if (op == op_jumpdest)
                bits[pc / 64] |= std::uint64_t{1} << (pc % 64);
            ++pc;
        }
    }
    // The implicit STOP at pc == n (a truncated PUSH left pc beyond n).
    i2p[inst] = static_cast<std::uint32_t>(n);
    p2i[n] = inst;
    ++inst;

    Analysis a;
    a.code_ = code;
    a.inst_to_pc_ = i2p;
    a.pc_to_inst_ = p2i;
    a.jumpdest_bits_ = bits;
    a.instruction_count_ = inst;
    a.table_size_ = static_cast<std::uint32_t>(n + 1);
    return a;
}
}  // namespace evmalloc
