// Fuzz target `analysis`: the input is code (cut to max_code_size bytes). Analysis::prepare,
// without and with the instruction arrays, into exactly sized heap buffers (ASan sees any
// write past them) and into one carved block, against the reference decoder: instruction
// starts, pc_to_inst and is_jumpdest for every pc (past the end and huge ones included), the
// bit words with their padding, ops from a table of distinct entries and PUSH1..PUSH8
// metadata, entries past instruction_count() untouched. Then each buffer one entry short:
// buffer_too_small with nothing written; and code one byte above max_code_size:
// code_too_large with nothing written.
#include "check.hpp"
#include "reference.hpp"

#include <evmalloc/analysis.hpp>

#include <algorithm>
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

constexpr std::uint32_t sentinel32 = 0xA5A5A5A5;
constexpr std::uint64_t sentinel64 = 0xA5A5A5A5A5A5A5A5;

// The three tables in heap blocks of exactly the sizes asked for.
struct Tables
{
    std::vector<std::uint32_t> inst_to_pc, pc_to_inst;
    std::vector<std::uint64_t> bits;

    Tables(std::size_t i2p, std::size_t p2i, std::size_t words)
      : inst_to_pc(i2p, sentinel32), pc_to_inst(p2i, sentinel32), bits(words, sentinel64)
    {}
    explicit Tables(std::size_t n)
      : Tables{Analysis::table_entries(n), Analysis::table_entries(n), Analysis::jumpdest_words(n)}
    {}
    AnalysisBuffers buffers() { return {inst_to_pc, pc_to_inst, bits}; }
    FUZZ_NO_COVERAGE bool untouched() const
    {
        return std::ranges::all_of(inst_to_pc, [](std::uint32_t v) { return v == sentinel32; }) &&
               std::ranges::all_of(pc_to_inst, [](std::uint32_t v) { return v == sentinel32; }) &&
               std::ranges::all_of(bits, [](std::uint64_t v) { return v == sentinel64; });
    }
};

FUZZ_NO_COVERAGE void check_against(const Analysis& a, std::span<const std::uint8_t> code, const Reference& ref)
{
    const std::size_t n = code.size();
    FUZZ_CHECK(a.code().data() == code.data() && a.code().size() == n);
    FUZZ_CHECK(a.instruction_count() == ref.inst_to_pc.size());
    for (std::size_t i = 0; i < ref.inst_to_pc.size(); ++i)
        FUZZ_CHECK(a.inst_to_pc(i) == ref.inst_to_pc[i]);
    const auto i2p = a.inst_to_pc_span();
    FUZZ_CHECK(i2p.size() == ref.inst_to_pc.size());
    FUZZ_CHECK(a.pc_to_inst_span().size() == n + 1);
    for (std::size_t pc = 0; pc <= n; ++pc)
        FUZZ_CHECK(a.pc_to_inst(pc) == ref.pc_to_inst[pc]);
    for (std::size_t pc = 0; pc < n; ++pc)
        FUZZ_CHECK(a.is_jumpdest(pc) == ref.jumpdest[pc]);
    // Past the end and huge values: never an instruction, never a jumpdest.
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t far[] = {n, n + 1, n + 63, n + 64, n + 65, n + 4096, std::uint64_t{1} << 32,
        (std::uint64_t{1} << 32) + n, std::uint64_t{1} << 63, max - 64, max - 1, max};
    for (const std::uint64_t pc : far)
    {
        FUZZ_CHECK(!a.is_jumpdest(pc));
        if (pc > n)
            FUZZ_CHECK(a.pc_to_inst(pc) == Analysis::no_instruction);
    }
    // The bit words: exactly the reference's bits, padding past the end zero.
    const auto bits = a.jumpdest_bits_span();
    FUZZ_CHECK(bits.size() == Analysis::jumpdest_words(n));
    for (std::size_t w = 0; w < bits.size(); ++w)
    {
        std::uint64_t expected = 0;
        for (std::size_t b = 0; b < 64 && w * 64 + b < n; ++b)
            expected |= std::uint64_t{ref.jumpdest[w * 64 + b]} << b;
        FUZZ_CHECK(bits[w] == expected);
    }
}

// prepare() with instruction arrays of Op and Metadata: ops[i] == table[opcode], metadata[i]
// == the push value (cut to Metadata), nothing written past instruction_count(); and each
// short array gives buffer_too_small with nothing written.
template <class Op, class Metadata, class MakeOp, class Same>
FUZZ_NO_COVERAGE void check_arrays(std::span<const std::uint8_t> code, const Reference& ref, const Analysis& plain,
    MakeOp make_op, Same same, Op unwritten_op, std::size_t which_short)
{
    const std::size_t n = code.size();
    std::array<Op, 256> table{};
    for (std::size_t i = 0; i < 256; ++i)
        table[i] = make_op(i);
    const auto unwritten_metadata = static_cast<Metadata>(sentinel64);

    Tables tables{n};
    std::vector<Op> ops(n + 1, unwritten_op);
    std::vector<Metadata> metadata(n + 1, unwritten_metadata);
    const auto r = Analysis::prepare(code, tables.buffers(), table, std::span<Op>{ops}, std::span<Metadata>{metadata});
    FUZZ_CHECK(r.has_value());
    FUZZ_CHECK(r->code().data() == code.data() && r->instruction_count() == plain.instruction_count());
    // The same tables as without the arrays.
    FUZZ_CHECK(std::ranges::equal(r->inst_to_pc_span(), plain.inst_to_pc_span()));
    FUZZ_CHECK(std::ranges::equal(r->pc_to_inst_span(), plain.pc_to_inst_span()));
    FUZZ_CHECK(std::ranges::equal(r->jumpdest_bits_span(), plain.jumpdest_bits_span()));
    const std::size_t count = ref.inst_to_pc.size();
    for (std::size_t i = 0; i < count; ++i)
    {
        FUZZ_CHECK(same(ops[i], table[ref.opcode[i]]));
        FUZZ_CHECK(metadata[i] == static_cast<Metadata>(ref.push_value[i]));
    }
    for (std::size_t i = count; i <= n; ++i)
    {
        FUZZ_CHECK(same(ops[i], unwritten_op));
        FUZZ_CHECK(metadata[i] == unwritten_metadata);
    }

    // One array one entry short: buffer_too_small, nothing written anywhere.
    if (which_short < 2)
    {
        Tables untouched{n};
        std::vector<Op> short_ops(which_short == 0 ? n : n + 1, unwritten_op);
        std::vector<Metadata> short_metadata(which_short == 1 ? n : n + 1, unwritten_metadata);
        const auto e = Analysis::prepare(code, untouched.buffers(), table, std::span<Op>{short_ops},
            std::span<Metadata>{short_metadata});
        FUZZ_CHECK(!e.has_value() && e.error() == Errc::buffer_too_small);
        FUZZ_CHECK(untouched.untouched());
        for (const Op& op : short_ops)
            FUZZ_CHECK(same(op, unwritten_op));
        for (const Metadata m : short_metadata)
            FUZZ_CHECK(m == unwritten_metadata);
    }
}

const char handlers[256] = {};
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
    check_against(*plain, code, ref);

    // Into one carved block of calculate_allocation(n) bytes: the same tables.
    const auto alloc = Analysis::calculate_allocation(n);
    FUZZ_CHECK(alloc.alignment == alignof(std::uint64_t) && alloc.size % sizeof(std::uint64_t) == 0);
    std::vector<std::uint64_t> block(alloc.size / sizeof(std::uint64_t));
    const AnalysisBuffers carved =
        Analysis::carve(std::as_writable_bytes(std::span<std::uint64_t>{block}), n);
    const auto from_block = Analysis::prepare(code, carved);
    FUZZ_CHECK(from_block.has_value());
    FUZZ_CHECK(std::ranges::equal(from_block->inst_to_pc_span(), plain->inst_to_pc_span()));
    FUZZ_CHECK(std::ranges::equal(from_block->pc_to_inst_span(), plain->pc_to_inst_span()));
    FUZZ_CHECK(std::ranges::equal(from_block->jumpdest_bits_span(), plain->jumpdest_bits_span()));

    // With the instruction arrays, two shapes: 16-bit ops with 64-bit metadata, and handler
    // pointers with 8-bit metadata (values cut to the type).
    const std::size_t which = size % 7;
    check_arrays<std::uint16_t, std::uint64_t>(
        code, ref, *plain, [](std::size_t i) { return static_cast<std::uint16_t>(i * 0x9E3 + 1); },
        [](std::uint16_t x, std::uint16_t y) { return x == y; }, std::uint16_t{0}, which);
    check_arrays<const void*, std::uint8_t>(
        code, ref, *plain, [](std::size_t i) -> const void* { return &handlers[i]; },
        [](const void* x, const void* y) { return x == y; }, static_cast<const void*>(nullptr), which - 2);

    // Each table one entry short: buffer_too_small, nothing written.
    const std::size_t e = Analysis::table_entries(n);
    const std::size_t w = Analysis::jumpdest_words(n);
    for (std::size_t k = 0; k < 3; ++k)
    {
        Tables short_tables{k == 0 ? e - 1 : e, k == 1 ? e - 1 : e, k == 2 ? w - 1 : w};
        const auto r = Analysis::prepare(code, short_tables.buffers());
        FUZZ_CHECK(!r.has_value() && r.error() == Errc::buffer_too_small);
        FUZZ_CHECK(short_tables.untouched());
    }

    // One byte above max_code_size: code_too_large (checked first), nothing written.
    static const std::vector<std::uint8_t> too_large(evmalloc::max_code_size + 1, 0x5B);
    Tables small{n};
    const auto big = Analysis::prepare(too_large, small.buffers());
    FUZZ_CHECK(!big.has_value() && big.error() == Errc::code_too_large);
    FUZZ_CHECK(small.untouched());
    return 0;
}
