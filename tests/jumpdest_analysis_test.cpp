// JumpdestAnalysis: prepare() against the reference decoder (random code of every size to 200
// and larger, truncated PUSHes, 6 MB), the same bits as Analysis, huge pcs, the corpus counts
// from MANIFEST.tsv, buffer_too_small / code_too_large with the buffer untouched, empty code;
// prepare with the padded copy: the same bits, the copy and its zeros, code() on the copy, a
// short copy or bit buffer and too much code with nothing written.
#include <evmalloc/analysis.hpp>
#include <evmalloc/jumpdest_analysis.hpp>

#include "catch.hpp"
#include "support/corpus.hpp"
#include "support/reference_analysis.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <type_traits>
#include <vector>

using evmalloc::Analysis;
using evmalloc::Errc;
using evmalloc::JumpdestAnalysis;
using evmalloc::OP_JUMPDEST;
using evmalloc::OP_PUSH32;
using evmalloc::test::op_push;
using evmalloc::test::random_code;
using evmalloc::test::reference_analysis;
using evmalloc::test::reference_jumpdest_bits;

namespace
{
constexpr std::uint64_t sentinel64 = 0xA5A5A5A5A5A5A5A5;

// prepare() into an exactly sized buffer filled with a sentinel, compared with the reference:
// every word, is_jumpdest() at every pc and past the end, code(). Returns false at the first
// difference (with a message naming it).
bool matches_reference(const std::vector<std::uint8_t>& code)
{
    const auto fail = [&](const char* what) {
        FAIL_CHECK(what << " differs for code of size " << code.size());
        return false;
    };
    std::vector<std::uint64_t> bits(JumpdestAnalysis::jumpdest_words(code.size()), sentinel64);
    const auto a = JumpdestAnalysis::prepare(code, bits);
    if (!a)
        return fail("prepare()");
    const auto ref = reference_analysis(code);
    const auto ref_bits = reference_jumpdest_bits(ref);
    if (bits != ref_bits)
        return fail("jumpdest_bits");
    if (!std::ranges::equal(a->jumpdest_bits_span(), ref_bits) ||
        a->jumpdest_bits_span().data() != bits.data())
        return fail("jumpdest_bits_span()");
    for (std::size_t pc = 0; pc < code.size(); ++pc)
        if (a->is_jumpdest(pc) != ref.jumpdest[pc])
            return fail("is_jumpdest");
    for (const std::uint64_t pc : {std::uint64_t{code.size()}, std::uint64_t{code.size()} + 1,
             std::uint64_t{code.size()} + 64, std::uint64_t{1} << 32, std::uint64_t{1} << 63,
             std::numeric_limits<std::uint64_t>::max()})
        if (a->is_jumpdest(pc))
            return fail("is_jumpdest past the end");
    if (a->code().data() != code.data() || a->code().size() != code.size())
        return fail("code()");
    return true;
}

// Analysis's jumpdest bits for the same code.
std::vector<std::uint64_t> analysis_bits(const std::vector<std::uint8_t>& code)
{
    std::vector<std::uint32_t> i2p(code.size() + 1), p2i(code.size() + 1);
    std::vector<std::uint64_t> bits(Analysis::jumpdest_words(code.size()), sentinel64);
    REQUIRE(Analysis::prepare(code, {i2p, p2i, bits}).has_value());
    return bits;
}
}  // namespace

TEST_CASE("JumpdestAnalysis: calculate_allocation is the bit words, 8-aligned, not growable",
    "[jumpdest_analysis]")
{
    STATIC_REQUIRE(evmalloc::Component<JumpdestAnalysis>);
    STATIC_REQUIRE(std::is_trivially_copyable_v<JumpdestAnalysis>);
    STATIC_REQUIRE(JumpdestAnalysis::jumpdest_words(0) == 1);
    STATIC_REQUIRE(JumpdestAnalysis::jumpdest_words(63) == 1);
    STATIC_REQUIRE(JumpdestAnalysis::jumpdest_words(64) == 2);
    STATIC_REQUIRE(JumpdestAnalysis::calculate_allocation(0) == evmalloc::Allocation{8, 8, false});
    STATIC_REQUIRE(
        JumpdestAnalysis::calculate_allocation(24576) == evmalloc::Allocation{385 * 8, 8, false});
    for (std::size_t n = 0; n < 1000; ++n)
        REQUIRE(JumpdestAnalysis::jumpdest_words(n) == Analysis::jumpdest_words(n));
}

TEST_CASE("JumpdestAnalysis: a hand-decoded example", "[jumpdest_analysis]")
{
    // 0: PUSH2 5B 5B | 3: JUMPDEST | 4: PUSH1 00 | 6: JUMPI | 7: JUMPDEST
    const std::vector<std::uint8_t> code{
        op_push(2), OP_JUMPDEST, OP_JUMPDEST, OP_JUMPDEST, op_push(1), 0x00, 0x57, OP_JUMPDEST};
    std::vector<std::uint64_t> bits(1, sentinel64);
    const auto a = JumpdestAnalysis::prepare(code, bits);
    REQUIRE(a.has_value());
    CHECK(bits[0] == ((std::uint64_t{1} << 3) | (std::uint64_t{1} << 7)));
    CHECK_FALSE(a->is_jumpdest(1));  // JUMPDEST inside PUSH2 data
    CHECK(a->is_jumpdest(3));
    CHECK(a->is_jumpdest(7));
    CHECK_FALSE(a->is_jumpdest(8));
}

TEST_CASE("JumpdestAnalysis: empty code and a default-constructed analysis", "[jumpdest_analysis]")
{
    const JumpdestAnalysis none;
    CHECK(none.code().empty());
    CHECK(none.jumpdest_bits_span().empty());
    for (const std::uint64_t pc :
        {std::uint64_t{0}, std::uint64_t{1}, std::numeric_limits<std::uint64_t>::max()})
        CHECK_FALSE(none.is_jumpdest(pc));

    const std::vector<std::uint8_t> code;
    std::vector<std::uint64_t> bits(1, sentinel64);
    const auto a = JumpdestAnalysis::prepare(code, bits);
    REQUIRE(a.has_value());
    CHECK(bits[0] == 0);  // the one word is written
    CHECK(a->code().empty());
    CHECK(a->jumpdest_bits_span().size() == 1);
    CHECK_FALSE(a->is_jumpdest(0));
    CHECK(matches_reference(code));
}

TEST_CASE(
    "JumpdestAnalysis: random code of every size up to 200, and larger", "[jumpdest_analysis]")
{
    std::mt19937_64 rng{0x1d5b};
    std::size_t checked = 0;
    for (std::size_t n = 0; n <= 200; ++n)
        for (int r = 0; r < 20; ++r)
        {
            const auto code = random_code(rng, n);
            if (!matches_reference(code) ||
                analysis_bits(code) != reference_jumpdest_bits(reference_analysis(code)))
                FAIL("size " << n);
            ++checked;
        }
    // Uniform bytes: long PUSHes everywhere, crossing many words.
    std::uniform_int_distribution<int> byte(0, 255);
    for (int r = 0; r < 300; ++r)
    {
        std::vector<std::uint8_t> code(std::uniform_int_distribution<std::size_t>{0, 2000}(rng));
        for (auto& b : code)
            b = static_cast<std::uint8_t>(byte(rng));
        if (!matches_reference(code))
            break;
        ++checked;
    }
    for (const std::size_t n : {4095U, 4096U, 4097U, 24576U, 131072U, 131073U})
    {
        CHECK(matches_reference(random_code(rng, n)));
        ++checked;
    }
    CHECK(checked == 201 * 20 + 300 + 6);
}

TEST_CASE("JumpdestAnalysis: the same bits as Analysis", "[jumpdest_analysis]")
{
    std::mt19937_64 rng{99};
    for (int r = 0; r < 200; ++r)
    {
        const auto code =
            random_code(rng, std::uniform_int_distribution<std::size_t>{0, 5000}(rng));
        std::vector<std::uint64_t> bits(JumpdestAnalysis::jumpdest_words(code.size()));
        REQUIRE(JumpdestAnalysis::prepare(code, bits).has_value());
        REQUIRE(bits == analysis_bits(code));
    }
}

TEST_CASE("JumpdestAnalysis: a PUSH1..PUSH32 cut off by the end counts once", "[jumpdest_analysis]")
{
    // JUMPDESTs before the PUSH at every distance (so it ends in every position of a word),
    // then PUSHk with `present` of its k bytes, all of them JUMPDEST bytes: none is a jumpdest.
    for (int k = 1; k <= 32; ++k)
        for (int present = 0; present <= k; ++present)
            for (std::size_t prefix = 0; prefix <= 130; prefix += (prefix < 70 ? 1 : 29))
            {
                std::vector<std::uint8_t> code(prefix, OP_JUMPDEST);
                code.push_back(op_push(k));
                code.insert(code.end(), static_cast<std::size_t>(present), OP_JUMPDEST);
                std::vector<std::uint64_t> bits(
                    JumpdestAnalysis::jumpdest_words(code.size()), sentinel64);
                const auto a = JumpdestAnalysis::prepare(code, bits);
                REQUIRE(a.has_value());
                std::size_t jumpdests = 0;
                for (std::size_t pc = 0; pc < code.size(); ++pc)
                    jumpdests += a->is_jumpdest(pc) ? 1U : 0U;
                INFO("PUSH" << k << " with " << present << " bytes after " << prefix);
                REQUIRE(jumpdests == prefix);
                REQUIRE(matches_reference(code));
            }
    // All PUSH32: one every 33 bytes, the last maybe cut; no jumpdest.
    for (const std::size_t n : {1U, 32U, 33U, 34U, 100U, 4096U})
    {
        const std::vector<std::uint8_t> code(n, OP_PUSH32);
        CHECK(matches_reference(code));
    }
}

TEST_CASE(
    "JumpdestAnalysis: all-JUMPDEST code sets every bit below the size", "[jumpdest_analysis]")
{
    for (const std::size_t n : {1U, 63U, 64U, 65U, 127U, 128U, 129U, 4096U})
    {
        const std::vector<std::uint8_t> code(n, OP_JUMPDEST);
        std::vector<std::uint64_t> bits(JumpdestAnalysis::jumpdest_words(n), sentinel64);
        REQUIRE(JumpdestAnalysis::prepare(code, bits).has_value());
        for (std::size_t w = 0; w + 1 < bits.size(); ++w)
            CHECK(bits[w] == ~std::uint64_t{0});
        CHECK(bits.back() == (std::uint64_t{1} << (n % 64)) - 1);
        CHECK(matches_reference(code));
    }
}

TEST_CASE("JumpdestAnalysis: the corpus matches MANIFEST.tsv", "[jumpdest_analysis]")
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
        std::vector<std::uint64_t> bits(
            JumpdestAnalysis::jumpdest_words(e.code.size()), sentinel64);
        const auto a = JumpdestAnalysis::prepare(e.code, bits);
        REQUIRE(a.has_value());
        std::size_t jumpdests = 0;
        for (std::size_t pc = 0; pc < e.code.size(); ++pc)
            jumpdests += a->is_jumpdest(pc) ? 1U : 0U;
        CHECK(jumpdests == e.jumpdests);
        std::size_t set_bits = 0;
        for (const std::uint64_t w : bits)
            set_bits += static_cast<std::size_t>(std::popcount(w));
        CHECK(set_bits == e.jumpdests);
        CHECK(matches_reference(e.code));
    }
}

TEST_CASE(
    "JumpdestAnalysis: a short buffer is buffer_too_small, nothing written", "[jumpdest_analysis]")
{
    for (const std::size_t n : {0U, 1U, 63U, 64U, 100U, 4096U})
    {
        const std::vector<std::uint8_t> code(n, OP_JUMPDEST);
        std::vector<std::uint64_t> bits(JumpdestAnalysis::jumpdest_words(n) - 1, sentinel64);
        const auto a = JumpdestAnalysis::prepare(code, bits);
        REQUIRE_FALSE(a.has_value());
        CHECK(a.error() == Errc::buffer_too_small);
        CHECK(std::ranges::all_of(bits, [](std::uint64_t w) { return w == sentinel64; }));
    }
    // A longer buffer: the words past jumpdest_words(n) stay as they were.
    const std::vector<std::uint8_t> code(100, OP_JUMPDEST);
    std::vector<std::uint64_t> bits(5, sentinel64);
    const auto a = JumpdestAnalysis::prepare(code, bits);
    REQUIRE(a.has_value());
    CHECK(a->jumpdest_bits_span().size() == 2);
    CHECK(bits[2] == sentinel64);
    CHECK(bits[4] == sentinel64);
}

TEST_CASE("JumpdestAnalysis: code over max_analysable_size is code_too_large, nothing written",
    "[jumpdest_analysis]")
{
    // A span one byte over the limit, over a small buffer: the size is checked first, so the
    // bytes past the buffer are never read.
    const std::vector<std::uint8_t> small(16, OP_JUMPDEST);
    const std::span<const std::uint8_t> too_big{small.data(), Analysis::max_analysable_size + 1};
    std::vector<std::uint64_t> bits(4, sentinel64);
    const auto a = JumpdestAnalysis::prepare(too_big, bits);
    REQUIRE_FALSE(a.has_value());
    CHECK(a.error() == Errc::code_too_large);
    CHECK(std::ranges::all_of(bits, [](std::uint64_t w) { return w == sentinel64; }));
    // Before the buffer check: an empty buffer still says code_too_large.
    const auto b = JumpdestAnalysis::prepare(too_big, {});
    REQUIRE_FALSE(b.has_value());
    CHECK(b.error() == Errc::code_too_large);
}

TEST_CASE("JumpdestAnalysis: 6 MB of random code", "[jumpdest_analysis]")
{
    std::mt19937_64 rng{6};
    const auto code = random_code(rng, 6 * 1024 * 1024);
    CHECK(matches_reference(code));
    CHECK(analysis_bits(code) == reference_jumpdest_bits(reference_analysis(code)));
}

TEST_CASE("JumpdestAnalysis: prepare with the padded copy gives the same bits and views the copy",
    "[jumpdest_analysis]")
{
    std::mt19937_64 rng{0xc0de};
    for (const std::size_t n : {0U, 1U, 33U, 63U, 64U, 65U, 300U, 4096U, 24576U})
    {
        INFO("size " << n);
        const auto code = random_code(rng, n);
        std::vector<std::uint64_t> bits(JumpdestAnalysis::jumpdest_words(n), sentinel64);
        std::vector<std::uint8_t> padded(n + evmalloc::PaddedCode::padding + 2, 0xA5);
        const auto a = JumpdestAnalysis::prepare(
            code, std::span{padded}.first(n + evmalloc::PaddedCode::padding), bits);
        REQUIRE(a.has_value());
        CHECK(bits == reference_jumpdest_bits(reference_analysis(code)));
        CHECK(a->code().data() == padded.data());
        CHECK(a->code().size() == n);
        CHECK(std::equal(code.begin(), code.end(), padded.begin()));
        for (std::size_t i = n; i < n + evmalloc::PaddedCode::padding; ++i)
            CHECK(padded[i] == 0);
        CHECK(padded[n + evmalloc::PaddedCode::padding] == 0xA5);  // nothing past the span
        CHECK(padded[n + evmalloc::PaddedCode::padding + 1] == 0xA5);
        for (std::size_t pc = 0; pc < n; ++pc)
            if (a->is_jumpdest(pc) != (((bits[pc / 64] >> (pc % 64)) & 1U) != 0))
                FAIL("is_jumpdest at " << pc);
    }
}

TEST_CASE(
    "JumpdestAnalysis: prepare with the padded copy: a short buffer or too much code, nothing "
    "written",
    "[jumpdest_analysis]")
{
    const std::vector<std::uint8_t> code(100, OP_JUMPDEST);
    const std::size_t words = JumpdestAnalysis::jumpdest_words(code.size());
    const std::size_t bytes = code.size() + evmalloc::PaddedCode::padding;
    const auto untouched = [](const auto& v, auto value) {
        return std::ranges::all_of(v, [value](auto x) { return x == value; });
    };
    {
        std::vector<std::uint64_t> bits(words, sentinel64);
        std::vector<std::uint8_t> padded(bytes - 1, 0xA5);  // one byte short
        const auto a = JumpdestAnalysis::prepare(code, padded, bits);
        REQUIRE_FALSE(a.has_value());
        CHECK(a.error() == Errc::buffer_too_small);
        CHECK(untouched(bits, sentinel64));
        CHECK(untouched(padded, std::uint8_t{0xA5}));
    }
    {
        std::vector<std::uint64_t> bits(words - 1, sentinel64);  // one word short
        std::vector<std::uint8_t> padded(bytes, 0xA5);
        const auto a = JumpdestAnalysis::prepare(code, padded, bits);
        REQUIRE_FALSE(a.has_value());
        CHECK(a.error() == Errc::buffer_too_small);
        CHECK(untouched(bits, sentinel64));
        CHECK(untouched(padded, std::uint8_t{0xA5}));
    }
    {
        // Over the limit: checked first, so the bytes past the small buffer are never read.
        const std::span<const std::uint8_t> too_big{code.data(), Analysis::max_analysable_size + 1};
        std::vector<std::uint64_t> bits(words, sentinel64);
        std::vector<std::uint8_t> padded(bytes, 0xA5);
        const auto a = JumpdestAnalysis::prepare(too_big, padded, bits);
        REQUIRE_FALSE(a.has_value());
        CHECK(a.error() == Errc::code_too_large);
        CHECK(untouched(bits, sentinel64));
        CHECK(untouched(padded, std::uint8_t{0xA5}));
    }
}
