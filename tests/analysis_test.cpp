// Analysis: prepare() against a plain reference decoder (random code across every tier
// boundary, truncated PUSHes, all-JUMPDEST and all-PUSH32 code), the corpus counts from
// MANIFEST.tsv, buffer_too_small / code_too_large with the buffers untouched, carve(), and runs
// without a PUSH (the bulk path) of every length at every offset.
#include <evmalloc/analysis.hpp>
#include <evmalloc/tier.hpp>

#include "catch.hpp"
#include "support/attack_shapes.hpp"
#include "support/corpus.hpp"
#include "support/reference_analysis.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <vector>

using evmalloc::Analysis;
using evmalloc::AnalysisBuffers;
using evmalloc::Errc;
using evmalloc::OP_JUMPDEST;
using evmalloc::OP_PUSH0;
using evmalloc::OP_PUSH1;
using evmalloc::OP_PUSH32;
using evmalloc::test::op_push;
using evmalloc::test::random_code;
using evmalloc::test::Reference;
using evmalloc::test::reference_analysis;

namespace
{
constexpr std::uint32_t sentinel32 = 0xA5A5A5A5;
constexpr std::uint64_t sentinel64 = 0xA5A5A5A5A5A5A5A5;
constexpr std::uint32_t none = 0xFFFFFFFF;

// Exactly sized buffers (so ASan sees any write past them), filled with a sentinel (so a
// table entry prepare() forgot to write shows up).
struct Tables
{
    std::vector<std::uint32_t> inst_to_pc;
    std::vector<std::uint32_t> pc_to_inst;
    std::vector<std::uint64_t> jumpdest_bits;

    explicit Tables(std::size_t n, std::size_t short_i2p = 0, std::size_t short_p2i = 0,
        std::size_t short_bits = 0)
      : inst_to_pc(n + 1 - short_i2p, sentinel32),
        pc_to_inst(n + 1 - short_p2i, sentinel32),
        jumpdest_bits((n + 64) / 64 - short_bits, sentinel64)
    {}

    AnalysisBuffers buffers() noexcept { return {inst_to_pc, pc_to_inst, jumpdest_bits}; }

    bool untouched() const
    {
        return std::all_of(inst_to_pc.begin(), inst_to_pc.end(), [](auto v) {
            return v == sentinel32;
        }) && std::all_of(pc_to_inst.begin(), pc_to_inst.end(), [](auto v) {
            return v == sentinel32;
        }) && std::all_of(jumpdest_bits.begin(), jumpdest_bits.end(), [](auto v) {
            return v == sentinel64;
        });
    }
};

// Compares an analysis of `code` with the reference; returns false at the first difference
// (with a message naming it), so a loop over thousands of codes stays readable.
bool analysis_matches(
    const Analysis& a, const std::vector<std::uint8_t>& code, const Reference& ref)
{
    const auto fail = [&](const char* what) {
        FAIL_CHECK(what << " differs for code of size " << code.size());
        return false;
    };
    if (a.instruction_count() != ref.inst_to_pc.size())
        return fail("instruction_count");
    if (!std::equal(ref.inst_to_pc.begin(), ref.inst_to_pc.end(), a.inst_to_pc_span().begin(),
            a.inst_to_pc_span().end()))
        return fail("inst_to_pc");
    if (!std::equal(ref.pc_to_inst.begin(), ref.pc_to_inst.end(), a.pc_to_inst_span().begin(),
            a.pc_to_inst_span().end()))
        return fail("pc_to_inst");
    // The bit words as the reference says, padding bits past the end zero.
    const std::vector<std::uint64_t> bits = evmalloc::test::reference_jumpdest_bits(ref);
    if (!std::equal(
            bits.begin(), bits.end(), a.jumpdest_bits_span().begin(), a.jumpdest_bits_span().end()))
        return fail("jumpdest_bits");
    for (std::size_t pc = 0; pc < code.size(); ++pc)
        if (a.is_jumpdest(pc) != ref.jumpdest[pc])
            return fail("is_jumpdest");
    if (a.is_jumpdest(code.size()) || a.is_jumpdest(code.size() + 1) ||
        a.is_jumpdest(std::numeric_limits<std::uint64_t>::max()))
        return fail("is_jumpdest past the end");
    if (a.pc_to_inst(code.size() + 1) != none ||
        a.pc_to_inst(std::numeric_limits<std::uint64_t>::max()) != none)
        return fail("pc_to_inst past the end");
    if (a.code().data() != code.data() || a.code().size() != code.size())
        return fail("code()");
    return true;
}

// prepare() against the reference, into exactly sized buffers.
bool matches_reference(const std::vector<std::uint8_t>& code)
{
    Tables t{code.size()};
    const auto result = Analysis::prepare(code, t.buffers());
    if (!result)
    {
        FAIL_CHECK("prepare failed for size " << code.size());
        return false;
    }
    return analysis_matches(*result, code, reference_analysis(code));
}

}  // namespace

TEST_CASE(
    "Analysis: calculate_allocation is the three buffers, 8-aligned, not growable", "[analysis]")
{
    STATIC_REQUIRE(evmalloc::Component<Analysis>);
    // n = 0: one bit word + two tables of 1 entry = 8 + 4 + 4.
    STATIC_REQUIRE(Analysis::calculate_allocation(0) == evmalloc::Allocation{16, 8, false});
    // n = 4096: 65 words (520 B) + 2 * 4097 * 4 (32776 B).
    STATIC_REQUIRE(Analysis::calculate_allocation(4096) == evmalloc::Allocation{33296, 8, false});
    // n = 63: one word; n = 64: two (a bit for pc 0..64 is never needed past pc 63, but the
    // formula (n + 64) / 64 is the contract).
    STATIC_REQUIRE(Analysis::jumpdest_words(63) == 1);
    STATIC_REQUIRE(Analysis::jumpdest_words(64) == 2);
    STATIC_REQUIRE(
        Analysis::calculate_allocation(131072).size == (131072 + 64) / 64 * 8 + 2 * 131073 * 4);
    STATIC_REQUIRE(std::is_trivially_copyable_v<Analysis>);
}

TEST_CASE("Analysis: a hand-decoded example", "[analysis]")
{
    // 0: PUSH2 5B 5B | 3: JUMPDEST | 4: PUSH1 00 | 6: JUMPI | 7: JUMPDEST | 8: implicit STOP
    const std::vector<std::uint8_t> code{
        op_push(2), OP_JUMPDEST, OP_JUMPDEST, OP_JUMPDEST, OP_PUSH1, 0x00, 0x57, OP_JUMPDEST};
    Tables t{code.size()};
    const auto a = Analysis::prepare(code, t.buffers());
    REQUIRE(a.has_value());
    CHECK(a->instruction_count() == 6);
    const std::vector<std::uint32_t> pcs{0, 3, 4, 6, 7, 8};
    for (std::size_t i = 0; i < pcs.size(); ++i)
        CHECK(a->inst_to_pc(i) == pcs[i]);
    const std::vector<std::uint32_t> insts{0, none, none, 1, 2, none, 3, 4, 5};
    for (std::size_t pc = 0; pc < insts.size(); ++pc)
        CHECK(a->pc_to_inst(pc) == insts[pc]);
    CHECK_FALSE(a->is_jumpdest(0));
    CHECK_FALSE(a->is_jumpdest(1));  // JUMPDEST inside PUSH2 data
    CHECK_FALSE(a->is_jumpdest(2));
    CHECK(a->is_jumpdest(3));
    CHECK(a->is_jumpdest(7));
    CHECK_FALSE(a->is_jumpdest(8));  // the implicit STOP
    CHECK(a->jumpdest_bits_span().size() == 1);
    CHECK(a->jumpdest_bits_span()[0] == ((std::uint64_t{1} << 3) | (std::uint64_t{1} << 7)));
}

TEST_CASE("Analysis: empty code is one implicit STOP", "[analysis]")
{
    Tables t{0};
    const std::vector<std::uint8_t> code;
    const auto a = Analysis::prepare(code, t.buffers());
    REQUIRE(a.has_value());
    CHECK(a->instruction_count() == 1);
    CHECK(a->inst_to_pc(0) == 0);
    CHECK(a->pc_to_inst(0) == 0);
    CHECK(a->pc_to_inst(1) == none);
    CHECK_FALSE(a->is_jumpdest(0));
    CHECK(a->code().empty());
    CHECK(t.jumpdest_bits[0] == 0);  // the one bit word was zeroed
}

TEST_CASE("Analysis: a default-constructed analysis answers safely", "[analysis]")
{
    const Analysis a;
    CHECK(a.instruction_count() == 0);
    CHECK(a.pc_to_inst(0) == none);
    CHECK_FALSE(a.is_jumpdest(0));
    CHECK(a.code().empty());
    CHECK(a.jumpdest_bits_span().empty());
}

TEST_CASE("Analysis: differential against the reference on random code", "[analysis]")
{
    std::mt19937_64 rng{0x5eed'ab1e};
    std::size_t checked = 0;
    // Many small codes: every tail-loop / main-loop split and PUSH-at-the-end shape.
    for (int i = 0; i < 3000; ++i)
    {
        std::uniform_int_distribution<std::size_t> size(0, 160);
        if (!matches_reference(random_code(rng, size(rng))))
            break;
        ++checked;
    }
    // Medium codes.
    for (int i = 0; i < 300; ++i)
    {
        std::uniform_int_distribution<std::size_t> size(0, 6000);
        if (!matches_reference(random_code(rng, size(rng))))
            break;
        ++checked;
    }
    // Every tier boundary, fewer iterations as the code grows.
    for (std::size_t capacity = 4096; capacity <= evmalloc::max_code_size; capacity *= 2)
    {
        const int reps = capacity <= 8192 ? 6 : 2;
        for (const std::size_t n : {capacity - 1, capacity, capacity + 1})
        {
            if (n > evmalloc::max_code_size)
                continue;
            for (int r = 0; r < reps; ++r)
            {
                CHECK(matches_reference(random_code(rng, n)));
                ++checked;
            }
        }
    }
    // Uniform bytes too: long PUSHes everywhere.
    for (int i = 0; i < 500; ++i)
    {
        std::uniform_int_distribution<std::size_t> size(0, 300);
        std::uniform_int_distribution<int> byte(0, 255);
        std::vector<std::uint8_t> code(size(rng));
        for (auto& b : code)
            b = static_cast<std::uint8_t>(byte(rng));
        if (!matches_reference(code))
            break;
        ++checked;
    }
    CHECK(checked == 3000 + 300 + (3 * 6 * 2 + 3 * 2 * 3 + 2 * 2) + 500);
}

TEST_CASE("Analysis: a PUSH1..PUSH32 cut off by the end of the code counts once", "[analysis]")
{
    std::mt19937_64 rng{42};
    for (int k = 1; k <= 32; ++k)
    {
        for (int present = 0; present < k; ++present)
        {
            // Prefixes of every length up to 40 put the PUSH in the main loop and in the tail.
            for (std::size_t prefix = 0; prefix <= 40; ++prefix)
            {
                std::vector<std::uint8_t> code(prefix, 0x01);  // ADDs: one instruction each
                code.push_back(op_push(k));
                for (int d = 0; d < present; ++d)
                    code.push_back(OP_JUMPDEST);  // data that looks like JUMPDEST
                Tables t{code.size()};
                const auto a = Analysis::prepare(code, t.buffers());
                REQUIRE(a.has_value());
                CHECK(a->instruction_count() == prefix + 2);  // ADDs, the PUSH, the STOP
                CHECK(a->inst_to_pc(prefix) == prefix);
                CHECK(a->inst_to_pc(prefix + 1) == code.size());
                CHECK(a->pc_to_inst(code.size()) == prefix + 1);
                for (std::size_t pc = prefix + 1; pc < code.size(); ++pc)
                {
                    CHECK(a->pc_to_inst(pc) == none);
                    CHECK_FALSE(a->is_jumpdest(pc));
                }
                CHECK(matches_reference(code));
            }
        }
    }
    // A random code ending in a truncated PUSH, at tier-sized lengths.
    for (const std::size_t n : {4096U, 8192U, 131072U})
    {
        for (int k = 1; k <= 32; k += 7)
        {
            auto code = random_code(rng, n);
            // End in PUSHk 5B: a cut-off PUSH wherever pc n - 2 decodes as an instruction start.
            code[n - 2] = op_push(k);
            code[n - 1] = OP_JUMPDEST;
            CHECK(matches_reference(code));
        }
    }
}

TEST_CASE("Analysis: all-JUMPDEST code", "[analysis]")
{
    for (std::size_t n : {1U, 2U, 3U, 4U, 5U, 63U, 64U, 65U, 127U, 128U, 4096U, 131072U})
    {
        const std::vector<std::uint8_t> code(n, OP_JUMPDEST);
        Tables t{n};
        const auto a = Analysis::prepare(code, t.buffers());
        REQUIRE(a.has_value());
        CHECK(a->instruction_count() == n + 1);
        std::size_t jumpdests = 0;
        for (std::size_t pc = 0; pc < n; ++pc)
            jumpdests += a->is_jumpdest(pc) ? 1U : 0U;
        CHECK(jumpdests == n);
        // Every bit for pc < n is set; none past it (within the last word).
        CHECK_FALSE(a->is_jumpdest(n));
        const std::uint64_t last = t.jumpdest_bits.back();
        CHECK((n % 64 == 0 ? last == 0 : last == (std::uint64_t{1} << (n % 64)) - 1));
        // Huge pcs are safe and false.
        for (std::uint64_t pc :
            {std::uint64_t{n} + 64, std::uint64_t{1} << 32, std::uint64_t{1} << 40,
                std::uint64_t{1} << 63, std::numeric_limits<std::uint64_t>::max()})
        {
            CHECK_FALSE(a->is_jumpdest(pc));
            CHECK(a->pc_to_inst(pc) == none);
        }
        CHECK(matches_reference(code));
    }
}

TEST_CASE("Analysis: all-PUSH32 code", "[analysis]")
{
    for (std::size_t n : {1U, 32U, 33U, 34U, 66U, 100U, 4096U, 131072U})
    {
        const std::vector<std::uint8_t> code(n, OP_PUSH32);
        Tables t{n};
        const auto a = Analysis::prepare(code, t.buffers());
        REQUIRE(a.has_value());
        const std::size_t pushes = (n + 32) / 33;  // one PUSH32 every 33 bytes, the last maybe cut
        CHECK(a->instruction_count() == pushes + 1);
        for (std::size_t i = 0; i < pushes; ++i)
            CHECK(a->inst_to_pc(i) == 33 * i);
        std::size_t starts = 0;
        for (std::size_t pc = 0; pc < n; ++pc)
            starts += a->pc_to_inst(pc) != none ? 1U : 0U;
        CHECK(starts == pushes);
        CHECK(matches_reference(code));
    }
    // PUSH32 whose data is all JUMPDEST bytes: no JUMPDEST anywhere.
    std::vector<std::uint8_t> code;
    for (int i = 0; i < 100; ++i)
    {
        code.push_back(OP_PUSH32);
        code.insert(code.end(), 32, OP_JUMPDEST);
    }
    Tables t{code.size()};
    const auto a = Analysis::prepare(code, t.buffers());
    REQUIRE(a.has_value());
    CHECK(
        std::all_of(t.jumpdest_bits.begin(), t.jumpdest_bits.end(), [](auto w) { return w == 0; }));
    CHECK(a->instruction_count() == 101);
}

TEST_CASE("Analysis: a buffer one element short is buffer_too_small, nothing written", "[analysis]")
{
    for (std::size_t n : {0U, 1U, 100U, 4096U, 131072U})
    {
        const std::vector<std::uint8_t> code(n, OP_JUMPDEST);
        for (int which = 0; which < 3; ++which)
        {
            Tables t{n, which == 0 ? 1U : 0U, which == 1 ? 1U : 0U, which == 2 ? 1U : 0U};
            const auto a = Analysis::prepare(code, t.buffers());
            REQUIRE_FALSE(a.has_value());
            CHECK(a.error() == Errc::buffer_too_small);
            CHECK(t.untouched());
        }
        // Exact sizes work, and the same buffers serve a retry.
        Tables t{n};
        CHECK(Analysis::prepare(code, t.buffers()).has_value());
    }
    // Larger buffers than needed are fine, and entries past the needed ones stay untouched.
    const std::vector<std::uint8_t> code(10, 0x00);
    Tables big{20};
    const auto a = Analysis::prepare(code, big.buffers());
    REQUIRE(a.has_value());
    CHECK(a->instruction_count() == 11);
    CHECK(std::all_of(
        big.inst_to_pc.begin() + 11, big.inst_to_pc.end(), [](auto v) { return v == sentinel32; }));
    CHECK(std::all_of(
        big.pc_to_inst.begin() + 11, big.pc_to_inst.end(), [](auto v) { return v == sentinel32; }));
}

TEST_CASE(
    "Analysis: code over max_analysable_size is code_too_large, nothing written", "[analysis]")
{
    STATIC_REQUIRE(Analysis::max_analysable_size == 0xFFFFFFFE);
    // A span one byte over the limit, over a small buffer: the size is checked before anything
    // is read, so the missing bytes are never touched.
    const std::vector<std::uint8_t> small(16, OP_JUMPDEST);
    const std::span<const std::uint8_t> too_big{small.data(), Analysis::max_analysable_size + 1};
    Tables t{small.size()};
    const auto a = Analysis::prepare(too_big, t.buffers());
    REQUIRE_FALSE(a.has_value());
    CHECK(a.error() == Errc::code_too_large);
    CHECK(t.untouched());
    // code_too_large is checked before the buffers: empty buffers still say code_too_large.
    const auto b = Analysis::prepare(too_big, AnalysisBuffers{});
    REQUIRE_FALSE(b.has_value());
    CHECK(b.error() == Errc::code_too_large);
}

TEST_CASE("Analysis: code larger than any tier is analysed", "[analysis]")
{
    // One byte over the largest tier: no longer refused (frames apply their own limit).
    const std::vector<std::uint8_t> over_tier(evmalloc::max_code_size + 1, OP_JUMPDEST);
    Tables t{over_tier.size()};
    const auto a = Analysis::prepare(over_tier, t.buffers());
    REQUIRE(a.has_value());
    CHECK(a->instruction_count() == evmalloc::max_code_size + 2);
    CHECK(a->is_jumpdest(evmalloc::max_code_size));
    CHECK(matches_reference(over_tier));
    // 6 MB of random code against the reference.
    std::mt19937_64 rng{6};
    CHECK(matches_reference(random_code(rng, 6 * 1024 * 1024)));
}

TEST_CASE("Analysis: carve lays out bits, inst_to_pc, pc_to_inst in one block", "[analysis]")
{
    for (std::size_t n : {0U, 1U, 63U, 64U, 4095U, 4096U, 24576U})
    {
        const std::size_t bytes = Analysis::calculate_allocation(n).size;
        // A guard of 64 bytes after the block, checked after prepare().
        std::vector<std::uint64_t> storage(bytes / 8 + 8 + 1, sentinel64);
        auto* const base = reinterpret_cast<std::byte*>(storage.data());
        const AnalysisBuffers b = Analysis::carve({base, bytes}, n);
        CHECK(reinterpret_cast<std::byte*>(b.jumpdest_bits.data()) == base);
        CHECK(b.jumpdest_bits.size() == (n + 64) / 64);
        CHECK(reinterpret_cast<std::byte*>(b.inst_to_pc.data()) ==
              base + b.jumpdest_bits.size_bytes());
        CHECK(b.inst_to_pc.size() == n + 1);
        CHECK(reinterpret_cast<std::byte*>(b.pc_to_inst.data()) ==
              base + b.jumpdest_bits.size_bytes() + b.inst_to_pc.size_bytes());
        CHECK(b.pc_to_inst.size() == n + 1);
        CHECK(reinterpret_cast<std::byte*>(b.pc_to_inst.data() + b.pc_to_inst.size()) ==
              base + bytes);

        std::mt19937_64 rng{n};
        const auto code = random_code(rng, n);
        const auto a = Analysis::prepare(code, b);
        REQUIRE(a.has_value());
        CHECK(a->instruction_count() == reference_analysis(code).inst_to_pc.size());
        CHECK(
            std::all_of(storage.end() - 9, storage.end(), [](auto w) { return w == sentinel64; }));
    }
    // Short storage: the buffers are cut, prepare() says so.
    const std::size_t n = 100;
    std::vector<std::uint64_t> storage(Analysis::calculate_allocation(n).size / 8);
    const AnalysisBuffers b =
        Analysis::carve({reinterpret_cast<std::byte*>(storage.data()), storage.size() * 8 - 4}, n);
    CHECK(b.jumpdest_bits.size() == 2);
    CHECK(b.inst_to_pc.size() == n + 1);
    CHECK(b.pc_to_inst.size() == n);
    const std::vector<std::uint8_t> code(n, 0x00);
    const auto a = Analysis::prepare(code, b);
    REQUIRE_FALSE(a.has_value());
    CHECK(a.error() == Errc::buffer_too_small);
}

TEST_CASE("Analysis: the corpus matches MANIFEST.tsv", "[analysis]")
{
    const auto dir = evmalloc::test::corpus_dir();
    if (!dir)
        EVMALLOC_SKIP("corpus folder not found (../shared/corpus or $EVMALLOC_CORPUS): corpus "
                      "checks skipped");
    const auto corpus = evmalloc::test::load_corpus(*dir);
    REQUIRE(!corpus.empty());
    for (const auto& e : corpus)
    {
        INFO(e.file);
        Tables t{e.code.size()};
        const auto a = Analysis::prepare(e.code, t.buffers());
        REQUIRE(a.has_value());
        CHECK(a->instruction_count() == e.instructions + 1);  // + the implicit STOP
        std::size_t jumpdests = 0;
        for (std::size_t pc = 0; pc < e.code.size(); ++pc)
            jumpdests += a->is_jumpdest(pc) ? 1U : 0U;
        CHECK(jumpdests == e.jumpdests);
        // inst_to_pc and pc_to_inst are inverse on every instruction...
        bool inverse = true;
        for (std::size_t i = 0; i < a->instruction_count(); ++i)
            inverse = inverse && a->pc_to_inst(a->inst_to_pc(i)) == i;
        CHECK(inverse);
        // ...and every pc is an instruction start or push data.
        bool covered = true;
        for (std::size_t pc = 0; pc <= e.code.size(); ++pc)
        {
            const std::uint32_t i = a->pc_to_inst(pc);
            covered =
                covered && (i == none || (i < a->instruction_count() && a->inst_to_pc(i) == pc));
        }
        CHECK(covered);
        CHECK(a->inst_to_pc(a->instruction_count() - 1) == e.code.size());
        CHECK(matches_reference(e.code));
    }
}

// --- prepare() with the instruction arrays: the pass StackFrame::prepare() runs ---------------

namespace
{
// 256 distinct handler addresses, and one that is none of them.
const std::array<const void*, 256>& handler_table()
{
    static const char handlers[256] = {};
    static const std::array<const void*, 256> table = [] {
        std::array<const void*, 256> t{};
        for (std::size_t i = 0; i < t.size(); ++i)
            t[i] = &handlers[i];
        return t;
    }();
    return table;
}
const char not_a_handler = 0;

// The reference instruction arrays: for instruction i, table[its opcode] (0x00 for the
// implicit STOP) and the PUSH1..PUSH8 immediate, big-endian, missing bytes as zero.
template <class Op, class Metadata>
void reference_instructions(const std::vector<std::uint8_t>& code, const std::array<Op, 256>& table,
    std::vector<Op>& ops, std::vector<Metadata>& metadata)
{
    for (const std::uint32_t pc : reference_analysis(code).inst_to_pc)
    {
        const std::uint8_t op = pc < code.size() ? code[pc] : 0x00;
        std::uint64_t value = 0;
        if (op >= OP_PUSH1 && op <= op_push(8))
            for (std::size_t k = 1; k <= std::size_t{op} - OP_PUSH0; ++k)
                value = value * 256 + (pc + k < code.size() ? code[pc + k] : 0u);
        ops.push_back(table[op]);
        metadata.push_back(static_cast<Metadata>(value));
    }
}

// ops and metadata of exactly code.size() + 1 entries (minus `short_*`), filled with sentinels.
template <class Op, class Metadata>
struct Arrays
{
    std::vector<Op> ops;
    std::vector<Metadata> metadata;
    Op op_sentinel;
    Metadata metadata_sentinel;

    Arrays(std::size_t n, Op op_fill, Metadata metadata_fill, std::size_t short_ops = 0,
        std::size_t short_metadata = 0)
      : ops(n + 1 - short_ops, op_fill),
        metadata(n + 1 - short_metadata, metadata_fill),
        op_sentinel{op_fill},
        metadata_sentinel{metadata_fill}
    {}

    bool untouched_from(std::size_t i) const
    {
        return std::all_of(ops.begin() + static_cast<std::ptrdiff_t>(std::min(i, ops.size())),
                   ops.end(), [&](const Op& v) { return v == op_sentinel; }) &&
               std::all_of(
                   metadata.begin() + static_cast<std::ptrdiff_t>(std::min(i, metadata.size())),
                   metadata.end(), [&](const Metadata& v) { return v == metadata_sentinel; });
    }
};

// prepare(code, buffers, table, ops, metadata) into exactly sized buffers against the
// reference: the analysis as prepare() alone, the arrays entry by entry, nothing written
// past instruction_count().
template <class Op, class Metadata>
bool instructions_match_reference(const std::vector<std::uint8_t>& code,
    const std::array<Op, 256>& table, Op op_fill, Metadata metadata_fill)
{
    Tables t{code.size()};
    Arrays<Op, Metadata> x{code.size(), op_fill, metadata_fill};
    const auto result = Analysis::prepare(
        code, t.buffers(), table, std::span<Op>{x.ops}, std::span<Metadata>{x.metadata});
    if (!result)
    {
        FAIL_CHECK("prepare with instruction arrays failed for size " << code.size());
        return false;
    }
    if (!analysis_matches(*result, code, reference_analysis(code)))
        return false;
    std::vector<Op> ops;
    std::vector<Metadata> metadata;
    reference_instructions(code, table, ops, metadata);
    const std::size_t count = result->instruction_count();
    for (std::size_t i = 0; i < count; ++i)
    {
        if (x.ops[i] != ops[i])
        {
            FAIL_CHECK("ops[" << i << "] differs for code of size " << code.size());
            return false;
        }
        if (x.metadata[i] != metadata[i])
        {
            FAIL_CHECK("metadata[" << i << "] differs for code of size " << code.size());
            return false;
        }
    }
    if (!x.untouched_from(count))
    {
        FAIL_CHECK("an entry past instruction_count() was written, code of size " << code.size());
        return false;
    }
    return true;
}

bool fused_matches_reference(const std::vector<std::uint8_t>& code)
{
    return instructions_match_reference<const void*, std::uint64_t>(
        code, handler_table(), &not_a_handler, sentinel64);
}
}  // namespace

TEST_CASE("Analysis with instruction arrays: differential against the reference on random code",
    "[analysis]")
{
    std::mt19937_64 rng{0xf05e'd0'0e};
    std::size_t checked = 0;
    // Every size up to 200, many codes each: every split between the two-instruction loop,
    // the one-instruction loop and the tail, with PUSHes cut off at every distance.
    for (std::size_t n = 0; n <= 200; ++n)
        for (int r = 0; r < 12; ++r)
        {
            if (!fused_matches_reference(random_code(rng, n)))
                return;
            ++checked;
        }
    // Uniform bytes: long PUSHes everywhere, immediates crossing the end.
    for (int i = 0; i < 800; ++i)
    {
        std::uniform_int_distribution<std::size_t> size(0, 300);
        std::uniform_int_distribution<int> byte(0, 255);
        std::vector<std::uint8_t> code(size(rng));
        for (auto& b : code)
            b = static_cast<std::uint8_t>(byte(rng));
        if (!fused_matches_reference(code))
            return;
        ++checked;
    }
    // Medium codes, and every tier boundary.
    for (int i = 0; i < 100; ++i)
    {
        std::uniform_int_distribution<std::size_t> size(0, 6000);
        if (!fused_matches_reference(random_code(rng, size(rng))))
            return;
        ++checked;
    }
    for (std::size_t capacity = 4096; capacity <= evmalloc::max_code_size; capacity *= 2)
        for (const std::size_t n : {capacity - 1, capacity, capacity + 1})
        {
            if (n > evmalloc::max_code_size)
                continue;
            CHECK(fused_matches_reference(random_code(rng, n)));
            ++checked;
        }
    CHECK(checked == 201 * 12 + 800 + 100 + (3 * 5 + 2));
}

TEST_CASE("Analysis with instruction arrays: PUSH1..PUSH32 cut off by the end, after any prefix",
    "[analysis]")
{
    // A prefix of one-byte opcodes (ADD, JUMPDEST) so the PUSH starts an instruction, at every
    // distance from the start; then PUSHk with `present` of its k bytes.
    for (int k = 1; k <= 32; ++k)
        for (int present = 0; present <= k; ++present)
            for (std::size_t prefix = 0; prefix <= 50; ++prefix)
            {
                std::vector<std::uint8_t> code;
                for (std::size_t i = 0; i < prefix; ++i)
                    code.push_back(i % 3 == 0 ? OP_JUMPDEST : 0x01);
                code.push_back(op_push(k));
                for (int d = 0; d < present; ++d)
                    code.push_back(static_cast<std::uint8_t>(0xA1 + d));
                INFO("PUSH" << k << " with " << present << " bytes after " << prefix);
                REQUIRE(fused_matches_reference(code));
            }
    // One hand-checked value: PUSH3 A1 A2 with its last byte missing is 0xA1A200.
    const std::vector<std::uint8_t> code{0x01, op_push(3), 0xA1, 0xA2};
    Tables t{code.size()};
    Arrays<const void*, std::uint64_t> x{code.size(), &not_a_handler, sentinel64};
    const auto a = Analysis::prepare(
        code, t.buffers(), handler_table(), std::span{x.ops}, std::span{x.metadata});
    REQUIRE(a.has_value());
    REQUIRE(a->instruction_count() == 3);
    CHECK(x.metadata[1] == 0xA1A200);
    CHECK(x.ops[1] == handler_table()[op_push(3)]);
    CHECK(x.ops[2] == handler_table()[evmalloc::OP_STOP]);
    CHECK(x.metadata[2] == 0);
}

TEST_CASE(
    "Analysis with instruction arrays: all-JUMPDEST, all-PUSH8, all-PUSH32 code", "[analysis]")
{
    for (std::size_t n :
        {0U, 1U, 8U, 9U, 10U, 41U, 42U, 43U, 64U, 65U, 100U, 4096U, 24576U, 131072U})
    {
        INFO("size " << n);
        CHECK(fused_matches_reference(std::vector<std::uint8_t>(n, OP_JUMPDEST)));
        CHECK(fused_matches_reference(std::vector<std::uint8_t>(n, op_push(8))));
        CHECK(fused_matches_reference(std::vector<std::uint8_t>(n, OP_PUSH32)));
    }
    // PUSH8 with distinct bytes: each metadata entry is its 8 bytes, big-endian.
    std::vector<std::uint8_t> code;
    for (std::uint8_t i = 0; i < 20; ++i)
    {
        code.push_back(op_push(8));
        for (std::uint8_t b = 0; b < 8; ++b)
            code.push_back(static_cast<std::uint8_t>(i * 8 + b));
    }
    Tables t{code.size()};
    Arrays<const void*, std::uint64_t> x{code.size(), &not_a_handler, sentinel64};
    const auto a = Analysis::prepare(
        code, t.buffers(), handler_table(), std::span{x.ops}, std::span{x.metadata});
    REQUIRE(a.has_value());
    REQUIRE(a->instruction_count() == 21);
    CHECK(x.metadata[0] == 0x0001020304050607);
    CHECK(x.metadata[19] == 0x98999A9B9C9D9E9F);
    CHECK(x.metadata[20] == 0);
}

TEST_CASE("Analysis with instruction arrays: other Op and Metadata types", "[analysis]")
{
    // An interpreter with 16-bit handler indices and 32-bit metadata (immediates truncated).
    std::array<std::uint16_t, 256> table{};
    for (std::size_t i = 0; i < table.size(); ++i)
        table[i] = static_cast<std::uint16_t>(1000 + i);
    std::mt19937_64 rng{7};
    for (int i = 0; i < 400; ++i)
    {
        std::uniform_int_distribution<std::size_t> size(0, 500);
        if (!instructions_match_reference<std::uint16_t, std::uint32_t>(
                random_code(rng, size(rng)), table, std::uint16_t{0xFFFF}, sentinel32))
            break;
    }
}

TEST_CASE("Analysis with instruction arrays: short arrays are buffer_too_small, nothing written",
    "[analysis]")
{
    for (std::size_t n : {0U, 1U, 100U, 4096U})
    {
        std::mt19937_64 rng{n};
        const std::vector<std::uint8_t> code = random_code(rng, n);
        for (int which = 0; which < 2; ++which)
        {
            Tables t{n};
            Arrays<const void*, std::uint64_t> x{
                n, &not_a_handler, sentinel64, which == 0 ? 1U : 0U, which == 1 ? 1U : 0U};
            const auto a = Analysis::prepare(
                code, t.buffers(), handler_table(), std::span{x.ops}, std::span{x.metadata});
            REQUIRE_FALSE(a.has_value());
            CHECK(a.error() == Errc::buffer_too_small);
            CHECK(t.untouched());
            CHECK(x.untouched_from(0));
        }
        // A short analysis buffer too, with the arrays whole.
        Tables short_bits{n, 0, 0, 1};
        Arrays<const void*, std::uint64_t> x{n, &not_a_handler, sentinel64};
        const auto a = Analysis::prepare(
            code, short_bits.buffers(), handler_table(), std::span{x.ops}, std::span{x.metadata});
        REQUIRE_FALSE(a.has_value());
        CHECK(a.error() == Errc::buffer_too_small);
        CHECK(short_bits.untouched());
        CHECK(x.untouched_from(0));
        // Exact sizes work afterwards with the same arrays.
        CHECK(fused_matches_reference(code));
    }
    // code_too_large comes first, whatever the sizes; nothing written (the span's bytes past
    // the small buffer are never read).
    const std::vector<std::uint8_t> small(10, OP_JUMPDEST);
    const std::span<const std::uint8_t> too_big{small.data(), Analysis::max_analysable_size + 1};
    Tables t{10};
    Arrays<const void*, std::uint64_t> x{10, &not_a_handler, sentinel64};
    const auto a = Analysis::prepare(
        too_big, t.buffers(), handler_table(), std::span{x.ops}, std::span{x.metadata});
    REQUIRE_FALSE(a.has_value());
    CHECK(a.error() == Errc::code_too_large);
    CHECK(t.untouched());
    CHECK(x.untouched_from(0));
}

TEST_CASE(
    "Analysis: runs without a PUSH (written in bulk) give the reference's tables", "[analysis]")
{
    // Runs of every length around the bulk threshold (16) and the 64-byte step, at every start
    // offset, between PUSHes of every size, with and without the instruction arrays.
    std::mt19937_64 rng{0xb01c};
    std::size_t checked = 0;
    for (const std::size_t run : {0U, 1U, 15U, 16U, 17U, 40U, 63U, 64U, 65U, 127U, 128U, 200U})
        for (std::size_t lead = 0; lead < 70; lead += 3)
            for (const int k : {1, 2, 4, 9, 32})
            {
                std::vector<std::uint8_t> code = random_code(rng, lead);
                code.push_back(op_push(k));
                code.insert(code.end(), static_cast<std::size_t>(k), OP_JUMPDEST);
                for (std::size_t i = 0; i < run; ++i)  // JUMPDEST and other plain opcodes
                    code.push_back(
                        i % 3 == 0 ? OP_JUMPDEST : static_cast<std::uint8_t>(0x01 + i % 0x50));
                code.push_back(op_push(k));
                code.insert(code.end(), static_cast<std::size_t>(k), OP_PUSH1);
                const auto more = random_code(rng, 150);
                code.insert(code.end(), more.begin(), more.end());
                if (!matches_reference(code) || !fused_matches_reference(code))
                    FAIL("run of " << run << " after " << lead << " bytes, PUSH" << k);
                ++checked;
            }
    // Whole codes without a PUSH, and the attack shapes.
    for (const std::size_t n : {0U, 63U, 64U, 65U, 106U, 107U, 200U, 4096U, 24576U})
    {
        CHECK(matches_reference(std::vector<std::uint8_t>(n, OP_JUMPDEST)));
        CHECK(fused_matches_reference(std::vector<std::uint8_t>(n, 0)));
        ++checked;
    }
    // One PUSH in plain code, at every offset of codes ending at every distance from a 64-byte
    // block: push data running into a plain block, plain blocks near the end of the code.
    std::size_t single = 0;
    for (std::size_t n = 64; n <= 260; n += 7)
        for (const int k : {1, 7, 32})
            for (std::size_t at = 0; at < n; ++at)
            {
                std::vector<std::uint8_t> code(n, OP_JUMPDEST);
                code[at] = op_push(k);
                if (!matches_reference(code))
                    FAIL(n << " bytes, PUSH" << k << " at " << at);
                ++single;
            }
    CHECK(single == 3 * 4698);
    for (const auto& shape : evmalloc::test::code_shapes())
    {
        INFO(shape.name);
        CHECK(matches_reference(shape.code));
        CHECK(fused_matches_reference(shape.code));
    }
    CHECK(checked == 12 * 24 * 5 + 9);
}
