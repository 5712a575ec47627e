// evmalloc: the jumpdest-only analysis, for interpreters that need nothing else.
//
// An interpreter that walks the bytecode itself (evmone's baseline, geth) needs from the
// analysis only where it may jump: bit pc of jumpdest_bits is set iff code[pc] == JUMPDEST
// and pc starts an instruction (PUSH1..PUSH32 immediates skipped; a PUSH whose immediate runs
// past the end counts once). The bits are exactly Analysis's jumpdest bits, for
//   jumpdest_words(n) == (n + 64) / 64  std::uint64_t
// in a buffer the caller provides (calculate_allocation(n)); nothing is allocated.
//
// prepare(code, padded_code, bits) is the jumpdest frame's whole setup in one pass: it copies the
// code into its padded buffer (PaddedCode: the code, then 33 zero bytes) while it finds the
// bits, and the analysis views the copy. Both prepare()s run the jumpdest scan of
// include/evmalloc/jumpdest_scan.hpp on the path chosen for this CPU (analysis_path()); the
// bits are the same on every path.
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
#include "jumpdest_scan.hpp"
#include "padded_code.hpp"
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
        detail::scan_jumpdests(code.data(), code.size(), jumpdest_bits.data(), nullptr);
        JumpdestAnalysis a;
        a.code_ = code;
        a.jumpdest_bits_ = jumpdest_bits.data();
        return a;
    }

    /// The same bits, and in the same pass over the code its padded copy: padded_code[0 ..
    /// code.size()) = code, then PaddedCode::padding zero bytes; nothing else is written, and
    /// nothing at all on error; never allocates. The analysis views the copy (code() is
    /// padded_code's first code.size() bytes), so `code` need not outlive this call.
    /// \returns Errc::code_too_large when code.size() > Analysis::max_analysable_size (checked
    /// first), else Errc::buffer_too_small when padded_code holds fewer than
    /// code.size() + PaddedCode::padding bytes or jumpdest_bits fewer than
    /// jumpdest_words(code.size()) words.
    /// \requires padded_code and jumpdest_bits do not overlap `code` or each other.
    [[nodiscard]] static Result<JumpdestAnalysis> prepare(std::span<const std::uint8_t> code,
        std::span<std::uint8_t> padded_code, std::span<std::uint64_t> jumpdest_bits) noexcept
    {
        if (code.size() > Analysis::max_analysable_size)
            return Errc::code_too_large;
        if (padded_code.size() < code.size() + PaddedCode::padding ||
            jumpdest_bits.size() < jumpdest_words(code.size()))
            return Errc::buffer_too_small;
        detail::scan_jumpdests(code.data(), code.size(), jumpdest_bits.data(), padded_code.data());
        JumpdestAnalysis a;
        a.code_ = padded_code.first(code.size());
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
    std::span<const std::uint8_t> code_{};
    const std::uint64_t* jumpdest_bits_ = nullptr;
};

static_assert(std::is_trivially_copyable_v<JumpdestAnalysis>);
static_assert(Component<JumpdestAnalysis>);
}  // namespace evmalloc
