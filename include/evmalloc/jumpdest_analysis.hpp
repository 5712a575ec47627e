// evmalloc: the jumpdest-only analysis, for interpreters that need nothing else.
//
// An interpreter that walks the bytecode itself (evmone's baseline, geth) needs from the
// analysis only where it may jump: bit pc of jumpdest_bits is set iff code[pc] == JUMPDEST
// and pc starts an instruction (PUSH1..PUSH32 immediates skipped; a PUSH whose immediate runs
// past the end counts once). The bits are exactly Analysis's jumpdest bits, for
//   jumpdest_words(n) == (n + 64) / 64  std::uint64_t
// in a buffer the caller provides (calculate_allocation(n)); nothing is allocated.
//
// A JumpdestAnalysis is a small trivially copyable value that views the code and the bits:
// both must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "allocation.hpp"
#include "analysis.hpp"
#include "opcodes.hpp"
#include "result.hpp"

namespace evmalloc
{
class JumpdestAnalysis
{
public:
    /// Words of jumpdest_bits for code of n bytes (one bit per byte, at least one spare bit).
    [[nodiscard]] static constexpr std::size_t jumpdest_words(std::size_t n) noexcept
    {
        return Analysis::jumpdest_words(n);
    }

    /// The bytes of the bit words for code of n bytes, alignment 8.
    [[nodiscard]] static constexpr Allocation calculate_allocation(std::size_t n) noexcept
    {
        return {jumpdest_words(n) * sizeof(std::uint64_t), alignof(std::uint64_t), false};
    }

    /// Finds the jumpdests of `code` into jumpdest_bits[0 .. jumpdest_words(code.size())),
    /// padding bits past the end zero; writes nothing else and nothing at all on error; never
    /// allocates.
    /// \returns Errc::code_too_large when code.size() > Analysis::max_analysable_size (checked
    /// first), else Errc::buffer_too_small when jumpdest_bits holds fewer than
    /// jumpdest_words(code.size()) words.
    [[nodiscard]] static Result<JumpdestAnalysis> prepare(
        std::span<const std::uint8_t> code, std::span<std::uint64_t> jumpdest_bits) noexcept
    {
        if (code.size() > Analysis::max_analysable_size)
            return Errc::code_too_large;
        if (jumpdest_bits.size() < jumpdest_words(code.size()))
            return Errc::buffer_too_small;
        mark_jumpdests(code.data(), code.size(), jumpdest_bits.data());
        JumpdestAnalysis a;
        a.code_ = code;
        a.jumpdest_bits_ = jumpdest_bits.data();
        return a;
    }

    /// An empty analysis of no code: is_jumpdest() is false for every pc.
    constexpr JumpdestAnalysis() noexcept = default;

    /// True iff pc < code().size(), code()[pc] == JUMPDEST and pc starts an instruction. Safe
    /// for every pc value, huge ones included.
    [[nodiscard]] bool is_jumpdest(std::uint64_t pc) const noexcept
    {
        return pc < code_.size() && ((jumpdest_bits_[pc / 64] >> (pc % 64)) & 1U) != 0;
    }

    /// The analysed bytes (a view: the caller keeps the code alive).
    [[nodiscard]] std::span<const std::uint8_t> code() const noexcept { return code_; }

    /// The bits as written: jumpdest_words(code().size()) words once prepared, none before.
    [[nodiscard]] std::span<const std::uint64_t> jumpdest_bits_span() const noexcept
    {
        return {jumpdest_bits_, jumpdest_bits_ == nullptr ? 0 : jumpdest_words(code_.size())};
    }

private:
    // Writes every one of the jumpdest_words(n) words once, each built in a register: no
    // clearing pass and no read-modify-write per JUMPDEST. A PUSH may skip into a later word;
    // the words it skips over entirely are written as zero.
    static void mark_jumpdests(
        const std::uint8_t* code, std::size_t n, std::uint64_t* bits) noexcept
    {
        std::size_t pc = 0;
        for (std::size_t w = 0, words = jumpdest_words(n); w < words; ++w)
        {
            const std::size_t word_end = (w + 1) * 64 < n ? (w + 1) * 64 : n;
            std::uint64_t word = 0;
            for (; pc < word_end; ++pc)
            {
                const std::uint8_t op = code[pc];
                if (op == OP_JUMPDEST)
                    word |= std::uint64_t{1} << (pc % 64);
                else if (is_push(op))
                    pc += push_size(op);
            }
            bits[w] = word;
        }
    }

    std::span<const std::uint8_t> code_{};
    const std::uint64_t* jumpdest_bits_ = nullptr;
};

static_assert(std::is_trivially_copyable_v<JumpdestAnalysis>);
static_assert(Component<JumpdestAnalysis>);
}  // namespace evmalloc
