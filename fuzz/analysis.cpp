// Fuzz target `analysis`: the input is code (cut to max_code_size bytes). Analysis::prepare,
// without and with the instruction arrays, into exactly sized heap buffers (ASan sees any
// write past them) and into one carved block, against the reference decoder: instruction
// starts, pc_to_inst and the jumpdest bit words (padding zero) as whole tables, the
// accessors at the edges, past the end and at huge pcs, ops from a table of distinct entries
// and PUSH1..PUSH8 metadata (cut to the metadata type), entries past instruction_count()
// untouched. JumpdestAnalysis::prepare gives the same bit words, and so does the jumpdest scan
// on every path this CPU runs (scalar, word, sse2, avx2, avx512), with and without the padded
// copy (checked byte for byte: the code, then PaddedCode::padding zeros), into exactly sized
// heap blocks: every path equals the reference, so every path equals every other. The fused
// prepare(code, padded_code, bits) the same. Then each buffer one entry short:
// buffer_too_small with nothing written.
#include "check.hpp"
#include "reference.hpp"

#include <evmalloc/analysis.hpp>
#include <evmalloc/jumpdest_analysis.hpp>
#include <evmalloc/jumpdest_scan.hpp>
#include <evmalloc/padded_code.hpp>
#include <evmalloc/tier.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <vector>

namespace
{
using evmalloc::Analysis;
using evmalloc::AnalysisBuffers;
using evmalloc::Errc;
using evmalloc::fuzz::Reference;
using evmalloc::fuzz::same_elements;

constexpr unsigned char sentinel_byte = 0xA5;

// n elements of T in a heap block of exactly that size, every byte the sentinel.
template <class T>
class Block
{
public:
    explicit Block(std::size_t n) : data_{new T[n == 0 ? 1 : n]}, size_{n}
    {
        std::memset(data_.get(), sentinel_byte, n * sizeof(T));
    }
    std::span<T> span() { return {data_.get(), size_}; }
    T* data() { return data_.get(); }
    FUZZ_NO_COVERAGE bool untouched_from(std::size_t first) const
    {
        const auto* b = reinterpret_cast<const unsigned char*>(data_.get());
        for (std::size_t i = first * sizeof(T); i < size_ * sizeof(T); ++i)
            if (b[i] != sentinel_byte)
                return false;
        return true;
    }

private:
    std::unique_ptr<T[]> data_;
    std::size_t size_;
};

struct Tables
{
    Block<std::uint32_t> inst_to_pc, pc_to_inst;
    Block<std::uint64_t> bits;

    Tables(std::size_t i2p, std::size_t p2i, std::size_t words)
      : inst_to_pc{i2p}, pc_to_inst{p2i}, bits{words}
    {}
    explicit Tables(std::size_t n)
      : Tables{Analysis::table_entries(n), Analysis::table_entries(n), Analysis::jumpdest_words(n)}
    {}
    AnalysisBuffers buffers() { return {inst_to_pc.span(), pc_to_inst.span(), bits.span()}; }
    bool untouched() const
    {
        return inst_to_pc.untouched_from(0) && pc_to_inst.untouched_from(0) &&
               bits.untouched_from(0);
    }
};

FUZZ_NO_COVERAGE void check_tables(
    const Analysis& a, std::span<const std::uint8_t> code, const Reference& ref)
{
    const std::size_t n = code.size();
    FUZZ_CHECK(a.code().data() == code.data() && a.code().size() == n);
    FUZZ_CHECK(a.instruction_count() == ref.inst_to_pc.size());
    FUZZ_CHECK(a.inst_to_pc_span().size() == ref.inst_to_pc.size());
    FUZZ_CHECK(
        same_elements(a.inst_to_pc_span().data(), ref.inst_to_pc.data(), ref.inst_to_pc.size()));
    FUZZ_CHECK(a.pc_to_inst_span().size() == n + 1);
    FUZZ_CHECK(same_elements(a.pc_to_inst_span().data(), ref.pc_to_inst.data(), n + 1));
    FUZZ_CHECK(a.jumpdest_bits_span().size() == ref.jumpdest_bits.size());
    FUZZ_CHECK(same_elements(
        a.jumpdest_bits_span().data(), ref.jumpdest_bits.data(), ref.jumpdest_bits.size()));
}

// The accessors: at every pc of short code, at the first and last 70 pcs and every
// instruction start of long code, past the end and at huge pcs.
FUZZ_NO_COVERAGE void check_at(
    const Analysis& a, std::size_t n, const Reference& ref, std::size_t pc)
{
    FUZZ_CHECK(a.pc_to_inst(pc) == ref.pc_to_inst[pc]);
    if (pc < n)
        FUZZ_CHECK(a.is_jumpdest(pc) == ref.is_jumpdest(pc));
}

FUZZ_NO_COVERAGE void check_accessors(const Analysis& a, std::size_t n, const Reference& ref)
{
    if (n <= 512)
        for (std::size_t pc = 0; pc <= n; ++pc)
            check_at(a, n, ref, pc);
    else
    {
        for (std::size_t pc = 0; pc < 70; ++pc)
        {
            check_at(a, n, ref, pc);
            check_at(a, n, ref, n - pc);
        }
        for (std::size_t i = 0; i < ref.inst_to_pc.size(); i += 1 + i / 256)
            check_at(a, n, ref, ref.inst_to_pc[i]);
    }
    for (std::size_t i = 0; i < ref.inst_to_pc.size(); i += 1 + i / 64)
        FUZZ_CHECK(a.inst_to_pc(i) == ref.inst_to_pc[i]);
    FUZZ_CHECK(a.inst_to_pc(ref.inst_to_pc.size() - 1) == n);
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t far[] = {n, n + 1, n + 63, n + 64, n + 65, n + 4096, std::uint64_t{1} << 32,
        (std::uint64_t{1} << 32) + n, std::uint64_t{1} << 63, max - 64, max - 1, max};
    for (const std::uint64_t pc : far)
    {
        FUZZ_CHECK(!a.is_jumpdest(pc));
        if (pc > n)
            FUZZ_CHECK(a.pc_to_inst(pc) == Analysis::no_instruction);
    }
}

// JumpdestAnalysis::is_jumpdest at every pc of short code, at the ends and instruction
// starts of long code, past the end and at huge pcs.
FUZZ_NO_COVERAGE void check_jumpdests(
    const evmalloc::JumpdestAnalysis& a, std::size_t n, const Reference& ref)
{
    if (n <= 512)
    {
        for (std::size_t pc = 0; pc < n; ++pc)
            FUZZ_CHECK(a.is_jumpdest(pc) == ref.is_jumpdest(pc));
    }
    else
        for (std::size_t i = 0; i + 1 < ref.inst_to_pc.size(); i += 1 + i / 256)
            FUZZ_CHECK(a.is_jumpdest(ref.inst_to_pc[i]) == ref.is_jumpdest(ref.inst_to_pc[i]));
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t far[] = {
        n, n + 1, n + 64, std::uint64_t{1} << 32, std::uint64_t{1} << 63, max};
    for (const std::uint64_t pc : far)
        FUZZ_CHECK(!a.is_jumpdest(pc));
}

// prepare() with instruction arrays of Op and Metadata: ops[i] == table[opcode], metadata[i]
// == the push value cut to Metadata, nothing written past instruction_count(); the same
// tables as without the arrays. With which_short 0 or 1, ops or metadata one entry short:
// buffer_too_small, nothing written.
template <class Op, class Metadata>
FUZZ_NO_COVERAGE void check_arrays(std::span<const std::uint8_t> code, const Reference& ref,
    const Analysis& plain, const std::array<Op, 256>& table, std::size_t which_short)
{
    const std::size_t n = code.size();
    const std::size_t count = ref.inst_to_pc.size();
    Tables tables{n};
    Block<Op> ops{n + 1};
    Block<Metadata> metadata{n + 1};
    const auto r = Analysis::prepare(code, tables.buffers(), table, ops.span(), metadata.span());
    FUZZ_CHECK(r.has_value());
    FUZZ_CHECK(
        r->code().data() == code.data() && r->instruction_count() == plain.instruction_count());
    FUZZ_CHECK(same_elements(r->inst_to_pc_span().data(), plain.inst_to_pc_span().data(), count));
    FUZZ_CHECK(same_elements(r->pc_to_inst_span().data(), plain.pc_to_inst_span().data(), n + 1));
    FUZZ_CHECK(same_elements(r->jumpdest_bits_span().data(), plain.jumpdest_bits_span().data(),
        ref.jumpdest_bits.size()));
    std::vector<Op> expected_ops(count);
    std::vector<Metadata> expected_metadata(count);
    for (std::size_t i = 0; i < count; ++i)
    {
        expected_ops[i] = table[ref.opcode[i]];
        expected_metadata[i] = static_cast<Metadata>(ref.push_value[i]);
    }
    FUZZ_CHECK(same_elements(ops.data(), expected_ops.data(), count));
    FUZZ_CHECK(same_elements(metadata.data(), expected_metadata.data(), count));
    FUZZ_CHECK(ops.untouched_from(count) && metadata.untouched_from(count));

    if (which_short < 2)
    {
        Tables untouched{n};
        Block<Op> short_ops{which_short == 0 ? n : n + 1};
        Block<Metadata> short_metadata{which_short == 1 ? n : n + 1};
        const auto e = Analysis::prepare(
            code, untouched.buffers(), table, short_ops.span(), short_metadata.span());
        FUZZ_CHECK(!e.has_value() && e.error() == Errc::buffer_too_small);
        FUZZ_CHECK(untouched.untouched() && short_ops.untouched_from(0) &&
                   short_metadata.untouched_from(0));
    }
}

// The padded copy: the code, then PaddedCode::padding zeros, and nothing after them.
FUZZ_NO_COVERAGE bool padded_copy_ok(
    std::span<const std::uint8_t> code, const std::uint8_t* padded, std::size_t size)
{
    const std::size_t n = code.size();
    if (size != n + evmalloc::PaddedCode::padding ||
        (n != 0 && std::memcmp(padded, code.data(), n) != 0))
        return false;
    for (std::size_t i = n; i < size; ++i)
        if (padded[i] != 0)
            return false;
    return true;
}

// The scan on every path this CPU runs, with and without the padded copy: the reference's bit
// words, and the copy, into blocks of exactly the size each needs.
FUZZ_NO_COVERAGE void check_scan_paths(std::span<const std::uint8_t> code, const Reference& ref)
{
    const std::size_t n = code.size();
    const std::size_t words = evmalloc::JumpdestAnalysis::jumpdest_words(n);
    FUZZ_CHECK(words == ref.jumpdest_bits.size());
    for (const evmalloc::AnalysisPath path : evmalloc::all_analysis_paths)
    {
        if (!evmalloc::analysis_path_supported(path))
            continue;
        Block<std::uint64_t> bits{words};
        evmalloc::detail::scan_jumpdests(path, code.data(), n, bits.data(), nullptr);
        FUZZ_CHECK(same_elements(bits.data(), ref.jumpdest_bits.data(), words));
        Block<std::uint64_t> fused_bits{words};
        Block<std::uint8_t> padded{n + evmalloc::PaddedCode::padding};
        evmalloc::detail::scan_jumpdests(path, code.data(), n, fused_bits.data(), padded.data());
        FUZZ_CHECK(same_elements(fused_bits.data(), ref.jumpdest_bits.data(), words));
        FUZZ_CHECK(padded_copy_ok(code, padded.data(), n + evmalloc::PaddedCode::padding));
    }
}

// The fused prepare on the path in use: the bits, the copy, code() viewing the copy; a padded
// buffer one byte short is buffer_too_small with nothing written.
FUZZ_NO_COVERAGE void check_fused(std::span<const std::uint8_t> code, const Reference& ref)
{
    const std::size_t n = code.size();
    const std::size_t words = evmalloc::JumpdestAnalysis::jumpdest_words(n);
    Block<std::uint64_t> bits{words};
    Block<std::uint8_t> padded{n + evmalloc::PaddedCode::padding};
    const auto a = evmalloc::JumpdestAnalysis::prepare(code, padded.span(), bits.span());
    FUZZ_CHECK(a.has_value());
    FUZZ_CHECK(a->code().data() == padded.data() && a->code().size() == n);
    FUZZ_CHECK(same_elements(a->jumpdest_bits_span().data(), ref.jumpdest_bits.data(), words));
    FUZZ_CHECK(padded_copy_ok(code, padded.data(), n + evmalloc::PaddedCode::padding));
    check_jumpdests(*a, n, ref);
    Block<std::uint64_t> untouched_bits{words};
    Block<std::uint8_t> short_padded{n + evmalloc::PaddedCode::padding - 1};
    const auto e =
        evmalloc::JumpdestAnalysis::prepare(code, short_padded.span(), untouched_bits.span());
    FUZZ_CHECK(!e.has_value() && e.error() == Errc::buffer_too_small);
    FUZZ_CHECK(untouched_bits.untouched_from(0) && short_padded.untouched_from(0));
}

const char handlers[256] = {};

const std::array<std::uint16_t, 256>& table16()
{
    static const auto t = [] {
        std::array<std::uint16_t, 256> a{};
        for (std::size_t i = 0; i < a.size(); ++i)
            a[i] = static_cast<std::uint16_t>(i * 0x9E3 + 1);
        return a;
    }();
    return t;
}

const std::array<const void*, 256>& table_pointers()
{
    static const auto t = [] {
        std::array<const void*, 256> a{};
        for (std::size_t i = 0; i < a.size(); ++i)
            a[i] = &handlers[i];
        return a;
    }();
    return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::size_t n = size < evmalloc::max_code_size ? size : evmalloc::max_code_size;
    // The code in a heap block of exactly n bytes: a read past the end is an ASan report.
    const std::unique_ptr<std::uint8_t[]> owned{new std::uint8_t[n == 0 ? 1 : n]};
    if (n != 0)
        std::memcpy(owned.get(), data, n);
    const std::span<const std::uint8_t> code{owned.get(), n};
    const Reference ref = evmalloc::fuzz::reference_decode(code);

    // Without the instruction arrays, into exactly sized buffers.
    Tables tables{n};
    const auto plain = Analysis::prepare(code, tables.buffers());
    FUZZ_CHECK(plain.has_value());
    check_tables(*plain, code, ref);
    check_accessors(*plain, n, ref);

    // One of four further checks per input, chosen by its first byte and size (each input
    // always gets the same one): the carved block, each shape of instruction arrays, the short
    // tables. Cheaper per input, and over the corpus every check runs on every kind of code.
    switch ((size + (size != 0 ? data[0] : 0U)) % 4)
    {
    case 0:
    {
        // Into one carved block of calculate_allocation(n) bytes: the same tables.
        const auto alloc = Analysis::calculate_allocation(n);
        FUZZ_CHECK(
            alloc.alignment == alignof(std::uint64_t) && alloc.size % sizeof(std::uint64_t) == 0);
        Block<std::uint64_t> block{alloc.size / sizeof(std::uint64_t)};
        const AnalysisBuffers carved = Analysis::carve(std::as_writable_bytes(block.span()), n);
        const auto from_block = Analysis::prepare(code, carved);
        FUZZ_CHECK(from_block.has_value());
        check_tables(*from_block, code, ref);
        break;
    }
    case 1:
        // 16-bit ops with 64-bit metadata (and, for some inputs, a short array).
        check_arrays<std::uint16_t, std::uint64_t>(code, ref, *plain, table16(), size % 7);
        break;
    case 2:
        // Handler pointers with 8-bit metadata (values cut to the type).
        check_arrays<const void*, std::uint8_t>(code, ref, *plain, table_pointers(), size % 7);
        break;
    default:
    {
        // Each table one entry short: buffer_too_small, nothing written.
        const std::size_t e = Analysis::table_entries(n);
        const std::size_t w = Analysis::jumpdest_words(n);
        const std::size_t k = size % 3;
        Tables short_tables{k == 0 ? e - 1 : e, k == 1 ? e - 1 : e, k == 2 ? w - 1 : w};
        const auto r = Analysis::prepare(code, short_tables.buffers());
        FUZZ_CHECK(!r.has_value() && r.error() == Errc::buffer_too_small);
        FUZZ_CHECK(short_tables.untouched());
        break;
    }
    }

    // The jumpdest bits alone: the same words, into an exactly sized buffer; one word short
    // is buffer_too_small with nothing written.
    Block<std::uint64_t> bits{evmalloc::JumpdestAnalysis::jumpdest_words(n)};
    const auto jumpdests = evmalloc::JumpdestAnalysis::prepare(code, bits.span());
    FUZZ_CHECK(jumpdests.has_value());
    FUZZ_CHECK(jumpdests->code().data() == code.data() && jumpdests->code().size() == n);
    FUZZ_CHECK(jumpdests->jumpdest_bits_span().size() == ref.jumpdest_bits.size());
    FUZZ_CHECK(same_elements(jumpdests->jumpdest_bits_span().data(), ref.jumpdest_bits.data(),
        ref.jumpdest_bits.size()));
    check_jumpdests(*jumpdests, n, ref);
    Block<std::uint64_t> short_bits{evmalloc::JumpdestAnalysis::jumpdest_words(n) - 1};
    const auto short_result = evmalloc::JumpdestAnalysis::prepare(code, short_bits.span());
    FUZZ_CHECK(!short_result.has_value() && short_result.error() == Errc::buffer_too_small);
    FUZZ_CHECK(short_bits.untouched_from(0));

    check_scan_paths(code, ref);
    check_fused(code, ref);
    return 0;
}
