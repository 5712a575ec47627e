// The jumpdest scan (jumpdest_scan.hpp): every path against the reference decoder, with and
// without the padded copy, on every PUSH size at every offset around the 16/32/64-byte
// boundaries, PUSHes cut off by the end, the end of the code at every offset, empty code,
// sizes around the block and the four-block group, the attack shapes, the corpus; the code
// in an exactly sized heap block (ASan sees a read past its end) and the outputs exactly sized;
// the path names, the override, the environment variable and what this machine picks.
#include <evmalloc/jumpdest_analysis.hpp>
#include <evmalloc/jumpdest_scan.hpp>

#include "catch.hpp"
#include "support/attack_shapes.hpp"
#include "support/corpus.hpp"
#include "support/reference_analysis.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

using evmalloc::AnalysisPath;
using evmalloc::JumpdestAnalysis;
using evmalloc::OP_JUMPDEST;
using evmalloc::OP_PUSH1;
using evmalloc::OP_PUSH32;
using evmalloc::PaddedCode;
using evmalloc::test::op_push;

namespace
{
constexpr std::uint64_t sentinel64 = 0xA5A5A5A5A5A5A5A5;
constexpr std::uint8_t sentinel8 = 0xA5;

// Sets the path for the scope and puts back the one before.
class PathScope
{
public:
    explicit PathScope(AnalysisPath path) : before_{evmalloc::analysis_path()}
    {
        ok_ = evmalloc::set_analysis_path(path);
    }
    ~PathScope() { (void)evmalloc::set_analysis_path(before_); }
    PathScope(const PathScope&) = delete;
    PathScope& operator=(const PathScope&) = delete;
    [[nodiscard]] bool ok() const { return ok_; }

private:
    AnalysisPath before_;
    bool ok_ = false;
};

std::vector<AnalysisPath> supported_paths()
{
    std::vector<AnalysisPath> paths;
    for (const AnalysisPath p : evmalloc::all_analysis_paths)
        if (evmalloc::analysis_path_supported(p))
            paths.push_back(p);
    return paths;
}

// `code` checked on every supported path, by JumpdestAnalysis::prepare with and without the
// padded copy: the code in a heap block of exactly its size, bits and copy exactly sized.
// Returns false at the first difference, with a message naming the path and what differs.
bool all_paths_match(const std::vector<std::uint8_t>& source)
{
    const std::size_t n = source.size();
    const std::unique_ptr<std::uint8_t[]> owned{new std::uint8_t[n == 0 ? 1 : n]};
    std::copy(source.begin(), source.end(), owned.get());
    const std::span<const std::uint8_t> code{owned.get(), n};
    const auto expected =
        evmalloc::test::reference_jumpdest_bits(evmalloc::test::reference_analysis(source));
    for (const AnalysisPath path : supported_paths())
    {
        const PathScope scope{path};
        const auto fail = [&](const char* what) {
            FAIL_CHECK(what << " differs on path " << evmalloc::analysis_path_name(path)
                            << " for code of size " << n);
            return false;
        };
        if (!scope.ok() || evmalloc::analysis_path() != path)
            return fail("the path");
        std::vector<std::uint64_t> bits(JumpdestAnalysis::jumpdest_words(n), sentinel64);
        const auto alone = JumpdestAnalysis::prepare(code, bits);
        if (!alone || bits != expected || alone->code().data() != code.data())
            return fail("prepare(code, bits)");
        std::vector<std::uint64_t> fused_bits(JumpdestAnalysis::jumpdest_words(n), sentinel64);
        std::vector<std::uint8_t> padded(n + PaddedCode::padding, sentinel8);
        const auto fused = JumpdestAnalysis::prepare(code, padded, fused_bits);
        if (!fused || fused_bits != expected)
            return fail("prepare(code, padded, bits): the bits");
        if (!std::equal(source.begin(), source.end(), padded.begin()) ||
            !std::all_of(padded.begin() + static_cast<std::ptrdiff_t>(n), padded.end(),
                [](std::uint8_t b) { return b == 0; }))
            return fail("prepare(code, padded, bits): the padded copy");
        if (fused->code().data() != padded.data() || fused->code().size() != n)
            return fail("prepare(code, padded, bits): code()");
    }
    return true;
}

// Filler bytes of a kind: all JUMPDEST (a jumpdest shows wherever push data ends), PUSH1
// bytes (data that looks like PUSHes), or mixed.
std::vector<std::uint8_t> filler(std::size_t n, int kind, std::mt19937_64& rng)
{
    std::vector<std::uint8_t> code(n, OP_JUMPDEST);
    for (auto& b : code)
        b = kind == 0   ? OP_JUMPDEST
            : kind == 1 ? OP_PUSH1
                        : static_cast<std::uint8_t>(rng() % 3 == 0 ? OP_JUMPDEST : rng());
    return code;
}
}  // namespace

TEST_CASE("jumpdest scan: path names, and from names back", "[jumpdest_scan]")
{
    CHECK(evmalloc::analysis_path_name(AnalysisPath::scalar) == "scalar");
    CHECK(evmalloc::analysis_path_name(AnalysisPath::word) == "word");
    CHECK(evmalloc::analysis_path_name(AnalysisPath::sse2) == "sse2");
    CHECK(evmalloc::analysis_path_name(AnalysisPath::avx2) == "avx2");
    CHECK(evmalloc::analysis_path_name(AnalysisPath::avx512) == "avx512");
    for (const AnalysisPath p : evmalloc::all_analysis_paths)
        CHECK(evmalloc::analysis_path_from_name(evmalloc::analysis_path_name(p)) == p);
    CHECK_FALSE(evmalloc::analysis_path_from_name("").has_value());
    CHECK_FALSE(evmalloc::analysis_path_from_name("AVX512").has_value());
    CHECK_FALSE(evmalloc::analysis_path_from_name("avx").has_value());
    STATIC_REQUIRE(evmalloc::analysis_path_from_name("word") == AnalysisPath::word);
}

TEST_CASE("jumpdest scan: what this machine supports and picks", "[jumpdest_scan]")
{
    CHECK(evmalloc::analysis_path_supported(AnalysisPath::scalar));
    CHECK(evmalloc::analysis_path_supported(AnalysisPath::word));
    const AnalysisPath best = evmalloc::best_analysis_path();
    CHECK(evmalloc::analysis_path_supported(best));
    for (const AnalysisPath p : evmalloc::all_analysis_paths)
        if (static_cast<int>(p) > static_cast<int>(best))
            CHECK_FALSE(evmalloc::analysis_path_supported(p));
#if defined(__x86_64__)
    CHECK(evmalloc::analysis_path_supported(AnalysisPath::sse2));
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
    const bool avx512 = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi");
    CHECK(evmalloc::analysis_path_supported(AnalysisPath::avx2) == avx2);
    CHECK(evmalloc::analysis_path_supported(AnalysisPath::avx512) == (avx512 && avx2));
    CHECK(best == (avx512 && avx2 ? AnalysisPath::avx512
                      : avx2      ? AnalysisPath::avx2
                                  : AnalysisPath::sse2));
    WARN("this machine: best analysis path " << evmalloc::analysis_path_name(best));
#else
    CHECK(best == AnalysisPath::word);
#endif
}

TEST_CASE("jumpdest scan: the path in use is the variable's if supported, else the best",
    "[jumpdest_scan]")
{
    // The choice at first use, as detail::initial_analysis_path() makes it from the variable.
    const char* const was = std::getenv(evmalloc::analysis_path_variable);
    const std::string saved = was != nullptr ? was : "";
    const auto choice_with = [](const char* value) {
        if (value != nullptr)
            ::setenv(evmalloc::analysis_path_variable, value, 1);
        else
            ::unsetenv(evmalloc::analysis_path_variable);
        return evmalloc::detail::initial_analysis_path();
    };
    CHECK(choice_with(nullptr) == evmalloc::best_analysis_path());
    CHECK(choice_with("") == evmalloc::best_analysis_path());
    CHECK(choice_with("fastest") == evmalloc::best_analysis_path());
    for (const AnalysisPath p : evmalloc::all_analysis_paths)
    {
        const std::string name{evmalloc::analysis_path_name(p)};
        CHECK(choice_with(name.c_str()) ==
              (evmalloc::analysis_path_supported(p) ? p : evmalloc::best_analysis_path()));
    }
    if (was != nullptr)
        ::setenv(evmalloc::analysis_path_variable, saved.c_str(), 1);
    else
        ::unsetenv(evmalloc::analysis_path_variable);
    // Whatever was chosen, analysis_path() is a path this CPU runs.
    CHECK(evmalloc::analysis_path_supported(evmalloc::analysis_path()));
}

TEST_CASE("jumpdest scan: set_analysis_path selects every supported path, refuses the others",
    "[jumpdest_scan]")
{
    const AnalysisPath before = evmalloc::analysis_path();
    for (const AnalysisPath p : evmalloc::all_analysis_paths)
    {
        INFO(evmalloc::analysis_path_name(p));
        const AnalysisPath current = evmalloc::analysis_path();
        if (evmalloc::analysis_path_supported(p))
        {
            CHECK(evmalloc::set_analysis_path(p));
            CHECK(evmalloc::analysis_path() == p);
        }
        else
        {
            CHECK_FALSE(evmalloc::set_analysis_path(p));
            CHECK(evmalloc::analysis_path() == current);  // unchanged
        }
    }
    CHECK_FALSE(evmalloc::set_analysis_path(static_cast<AnalysisPath>(200)));
    CHECK(evmalloc::set_analysis_path(before));
    CHECK(evmalloc::analysis_path() == before);
}

TEST_CASE("jumpdest scan: every PUSH size at every offset around the 16/32/64-byte boundaries",
    "[jumpdest_scan]")
{
    // One PUSHk at every offset of the first 300 bytes (every 16-, 32- and 64-byte boundary up
    // to 256 and beyond, at every distance), in three fillers; then two PUSHes back to back
    // across a boundary, the second carried in by the first's data.
    std::mt19937_64 rng{16};
    std::size_t checked = 0;
    for (int kind = 0; kind < 3; ++kind)
    {
        const auto base = filler(300, kind, rng);
        for (int k = 1; k <= 32; ++k)
            for (std::size_t at = 0; at < 270; ++at)
            {
                auto code = base;
                code[at] = op_push(k);
                if (!all_paths_match(code))
                    FAIL("PUSH" << k << " at " << at << ", filler " << kind);
                ++checked;
            }
    }
    for (const std::size_t boundary : {16U, 32U, 48U, 64U, 128U, 192U, 256U})
        for (int k = 1; k <= 32; ++k)
            for (int j = 1; j <= 32; j += 7)
                for (std::size_t d = 1; d <= 34 && d <= boundary; ++d)
                {
                    auto code = filler(boundary + 80, 0, rng);
                    const std::size_t at = boundary - d;
                    code[at] = op_push(k);
                    code[at + static_cast<std::size_t>(k) + 1] = op_push(j);
                    if (!all_paths_match(code))
                        FAIL("PUSH" << k << " at " << at << ", then PUSH" << j);
                    ++checked;
                }
    CHECK(checked == 3 * 32 * 270 + 32 * 5 * (16 + 32 + 5 * 34));
}

TEST_CASE(
    "jumpdest scan: a PUSH cut off by the end, and the end at every offset", "[jumpdest_scan]")
{
    std::mt19937_64 rng{33};
    std::size_t checked = 0;
    // Code of every size to 300 ending in a PUSHk with 0..k of its bytes present.
    for (std::size_t n = 1; n <= 300; ++n)
        for (int k = 1; k <= 32; k += (n < 140 ? 1 : 5))
            for (std::size_t present = 0; present <= static_cast<std::size_t>(k) && present < n;
                 present += 3)
            {
                auto code = filler(n, 0, rng);
                code[n - 1 - present] = op_push(k);
                if (!all_paths_match(code))
                    FAIL("size " << n << ", PUSH" << k << " with " << present << " bytes");
                ++checked;
            }
    // Every size to 600 in each filler, random code too: the end at every offset of a block
    // and of the four-block group, with and without push data carried to it.
    for (std::size_t n = 0; n <= 600; ++n)
    {
        for (int kind = 0; kind < 3; ++kind)
            if (!all_paths_match(filler(n, kind, rng)))
                FAIL("size " << n << ", filler " << kind);
        if (!all_paths_match(evmalloc::test::random_code(rng, n)))
            FAIL("random code of size " << n);
        checked += 4;
    }
    CHECK(checked > 601 * 4);
}

TEST_CASE("jumpdest scan: empty code and sizes around the block and the group", "[jumpdest_scan]")
{
    CHECK(all_paths_match({}));
    std::mt19937_64 rng{64};
    for (const std::size_t blocks : {1U, 2U, 3U, 4U, 5U, 7U, 8U, 9U, 16U, 17U, 64U, 385U, 2048U})
        for (const std::size_t n : {64 * blocks - 1, 64 * blocks, 64 * blocks + 1})
        {
            CHECK(all_paths_match(std::vector<std::uint8_t>(n, OP_JUMPDEST)));
            CHECK(all_paths_match(std::vector<std::uint8_t>(n, 0)));
            CHECK(all_paths_match(std::vector<std::uint8_t>(n, OP_PUSH1)));
            CHECK(all_paths_match(std::vector<std::uint8_t>(n, OP_PUSH32)));
            CHECK(all_paths_match(evmalloc::test::random_bytes(n, n)));
            CHECK(all_paths_match(evmalloc::test::random_code(rng, n)));
        }
    // A PUSH in one block of a four-block group of PUSH-free blocks, its data carried into the
    // next group or not.
    for (std::size_t block = 0; block < 8; ++block)
        for (const std::size_t at : {0U, 30U, 31U, 32U, 62U, 63U})
            for (const int k : {1, 2, 31, 32})
            {
                std::vector<std::uint8_t> code(8 * 64 + 5, OP_JUMPDEST);
                code[block * 64 + at] = op_push(k);
                CHECK(all_paths_match(code));
            }
}

TEST_CASE("jumpdest scan: the attack shapes and the worst cases", "[jumpdest_scan]")
{
    for (const auto& shape : evmalloc::test::code_shapes())
    {
        INFO(shape.name);
        CHECK(all_paths_match(shape.code));
    }
    // The devnet-8 shape: only the address's bytes can hide a JUMPDEST.
    const auto code = evmalloc::test::devnet8_code(65536);
    std::vector<std::uint64_t> bits(JumpdestAnalysis::jumpdest_words(code.size()));
    REQUIRE(JumpdestAnalysis::prepare(code, bits).has_value());
    CHECK(bits[1023] == ~std::uint64_t{0});  // the last 64 bytes, the jump's target among them
    CHECK(bits[1024] == 0);
}

TEST_CASE("jumpdest scan: random code of many sizes, and uniform bytes", "[jumpdest_scan]")
{
    std::mt19937_64 rng{0x5ca9};
    for (int r = 0; r < 300; ++r)
    {
        const std::size_t n = std::uniform_int_distribution<std::size_t>{0, 5000}(rng);
        if (!all_paths_match(evmalloc::test::random_code(rng, n)) ||
            !all_paths_match(evmalloc::test::random_bytes(n, rng())))
            FAIL("size " << n);
    }
    CHECK(all_paths_match(evmalloc::test::random_code(rng, 131072)));
    CHECK(all_paths_match(evmalloc::test::random_bytes(131073)));
}

TEST_CASE("jumpdest scan: the corpus on every path", "[jumpdest_scan]")
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
        CHECK(all_paths_match(e.code));
    }
}
