// evmalloc: the jumpdest scan, its kernels, and the one choice among them.
//
// The scan reads the code once, 64 bytes (one bit word) at a time, and writes the jumpdest
// bits: bit pc is set iff code[pc] == JUMPDEST and pc starts an instruction. On the way it may
// also write the padded copy (the code, then PaddedCode::padding zero bytes), so a jumpdest
// frame reads its code once. Per block of 64 bytes, two masks come from vector compares: J (the
// JUMPDEST bytes) and P (the PUSH1..PUSH32 bytes, 0x60..0x7F). A block with no PUSH byte after
// the push data carried in from the block before is done with one mask: bits = J minus the
// carried bytes. Only a block with a PUSH decodes: where the instructions start depends on
// every PUSH before, a chain. How each path decodes such a block:
//
//   avx512  (AVX-512BW + VBMI)  the whole block in one register: next[i] = i + 1 + immediate
//           size, then next composed with itself (vpermb) until every lane has left the block,
//           then per lane the last instruction start at or before it (binary lifting: at most
//           6 permutes); bit i is a start iff that is i. Branch free inside the block, and the
//           only chain from block to block is one permute (the carry), so blocks overlap in
//           the out-of-order window.
//   avx2    the same in four 16-byte groups (vpshufb tables of 16 entries), the carry passed
//           from group to group through one table load.
//   sse2, word   masks by SSE2 compares or eight 8-byte words (SWAR); a block with a PUSH is
//           walked: PUSH by PUSH (tzcnt over P) when it has few PUSH bytes, byte by byte else.
//   scalar  the plain loop, byte by byte: the reference the others are tested against.
//
// The path is chosen once per process: at first use, from EVMALLOC_ANALYSIS_PATH if it names a
// path this CPU runs (scalar, word, sse2, avx2, avx512), else the best one the CPU has
// (__builtin_cpu_supports: the library built without -march still runs AVX-512 where there
// is AVX-512). set_analysis_path() overrides it, so one binary tests every path. Every path
// writes exactly the bits of the plain decoder: tests and the `analysis` fuzz target compare
// them on every input. No path reads a byte past the end of the code (the last block is
// loaded masked, or through a zeroed local copy). docs/analysis.md has the measurements.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "opcodes.hpp"
#include "padded_code.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EVMALLOC_SCAN_X86 1
#else
#define EVMALLOC_SCAN_X86 0
#endif

namespace evmalloc
{
/// The ways the jumpdest scan can run, slowest first.
enum class AnalysisPath : std::uint8_t
{
    scalar,  ///< the plain byte loop (every CPU)
    word,    ///< 8 bytes at a time in a 64-bit register (every CPU)
    sse2,    ///< 16-byte SSE2 vectors (every x86-64 CPU)
    avx2,    ///< 32-byte AVX2 vectors, with BMI1/BMI2
    avx512,  ///< 64-byte AVX-512BW vectors with VBMI (vpermb), BMI1/BMI2
};

inline constexpr std::array<AnalysisPath, 5> all_analysis_paths = {AnalysisPath::scalar,
    AnalysisPath::word, AnalysisPath::sse2, AnalysisPath::avx2, AnalysisPath::avx512};

/// The environment variable read once, at the first scan: a path's name selects it.
inline constexpr const char* analysis_path_variable = "EVMALLOC_ANALYSIS_PATH";

/// "scalar", "word", "sse2", "avx2" or "avx512".
[[nodiscard]] constexpr std::string_view analysis_path_name(AnalysisPath path) noexcept
{
    constexpr std::array<std::string_view, 5> names = {"scalar", "word", "sse2", "avx2", "avx512"};
    const auto i = static_cast<std::size_t>(path);
    return i < names.size() ? names[i] : std::string_view{"unknown"};
}

/// The path of that name (as analysis_path_name() spells it), or nothing.
[[nodiscard]] constexpr std::optional<AnalysisPath> analysis_path_from_name(
    std::string_view name) noexcept
{
    for (const AnalysisPath p : all_analysis_paths)
        if (analysis_path_name(p) == name)
            return p;
    return std::nullopt;
}

/// True iff this CPU (and its operating system) runs `path`.
[[nodiscard]] inline bool analysis_path_supported(AnalysisPath path) noexcept
{
    switch (path)
    {
    case AnalysisPath::scalar:
    case AnalysisPath::word:
        return true;
#if EVMALLOC_SCAN_X86
    case AnalysisPath::sse2:
        return true;
    case AnalysisPath::avx2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
               __builtin_cpu_supports("bmi2");
    case AnalysisPath::avx512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("bmi") &&
               __builtin_cpu_supports("bmi2");
#endif
    default:
        return false;
    }
}

/// The fastest path this CPU runs.
[[nodiscard]] inline AnalysisPath best_analysis_path() noexcept
{
    for (auto i = all_analysis_paths.size(); i-- > 0;)
        if (analysis_path_supported(all_analysis_paths[i]))
            return all_analysis_paths[i];
    return AnalysisPath::scalar;
}

namespace detail
{
using u8 = std::uint8_t;
using u64 = std::uint64_t;

/// A scan kernel: writes bits[0 .. (n + 64) / 64), and when `padded` is not null also
/// padded[0 .. n) = code[0 .. n) and padded[n .. n + PaddedCode::padding) = 0. Reads only
/// code[0 .. n). \requires the buffers do not overlap.
using ScanKernel = void (*)(const u8* code, std::size_t n, u64* bits, u8* padded) noexcept;

inline constexpr std::size_t scan_block = 64;
inline constexpr std::size_t scan_padding = PaddedCode::padding;
static_assert(scan_padding <= scan_block, "the tail writes its padding with the last block");

/// The words of a code of n bytes.
constexpr std::size_t scan_words(std::size_t n) noexcept
{
    return n / scan_block + 1;
}

// --- scalar: the reference --------------------------------------------------------------------

/// The plain decoder: byte by byte, PUSH immediates skipped; each bit word is built in a
/// register and written once (no clearing pass).
inline void scan_plain(const u8* code, std::size_t n, u64* bits) noexcept
{
    std::size_t pc = 0;
    for (std::size_t w = 0, words = scan_words(n); w < words; ++w)
    {
        const std::size_t word_end = (w + 1) * scan_block < n ? (w + 1) * scan_block : n;
        u64 word = 0;
        for (; pc < word_end; ++pc)
        {
            const u8 op = code[pc];
            if (op == OP_JUMPDEST)
                word |= u64{1} << (pc % scan_block);
            else if (is_push(op))
                pc += push_size(op);
        }
        bits[w] = word;
    }
}

inline void scan_scalar(const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    if (padded != nullptr)
    {
        if (n != 0)
            std::memcpy(padded, code, n);
        std::memset(padded + n, 0, scan_padding);
    }
    scan_plain(code, n, bits);
}

// --- the block walk of the sse2 and word paths ------------------------------------------------

/// The jumpdest bits of one 64-byte block (`block`: 64 readable bytes) from its masks, entered
/// with `carry` (0..32) bytes of push data from the block before; leaves in `carry` the push
/// data that runs into the next block. PUSH by PUSH while the block has few PUSH bytes (each
/// step a tzcnt over P), else byte by byte: a PUSH-dense block has as many steps either way and
/// the byte loop's chain is shorter.
inline u64 walk_block(const u8* block, u64 J, u64 P, unsigned& carry) noexcept
{
    const u64 live = ~u64{0} << carry;  // carry <= 32
    u64 pushes = P & live;
    if (std::popcount(pushes) <= 10)
    {
        u64 data = ~live;
        unsigned out = 0;
        while (pushes != 0)
        {
            const auto p = static_cast<unsigned>(std::countr_zero(pushes));
            const unsigned last = p + static_cast<unsigned>(push_size(block[p]));
            if (last >= scan_block - 1)
            {
                data |= ~u64{0} << p;
                out = last - static_cast<unsigned>(scan_block - 1);
                break;
            }
            data |= ((u64{2} << last) - 1) & (~u64{1} << p);
            pushes &= ~u64{1} << last;
        }
        carry = out;
        return J & ~data;
    }
    u64 word = 0;
    std::size_t pc = carry;
    while (pc < scan_block)
    {
        const u8 op = block[pc];
        if (is_push(op))
            pc += push_size(op) + 1;
        else
        {
            if (op == OP_JUMPDEST)
                word |= u64{1} << pc;
            ++pc;
        }
    }
    carry = static_cast<unsigned>(pc - scan_block);
    return word;
}

/// The last n % 64 bytes (after the full blocks), entered with `carry`: byte by byte (fewer than
/// 64 steps: cheaper than a vector pass over a zeroed copy), and their copy with the padding.
inline void scan_tail(const u8* code, std::size_t n, u64* bits, u8* padded, unsigned carry) noexcept
{
    const std::size_t start = n / scan_block * scan_block;
    u64 word = 0;
    for (std::size_t pc = start + carry; pc < n; ++pc)
    {
        const u8 op = code[pc];
        if (op == OP_JUMPDEST)
            word |= u64{1} << (pc - start);
        else if (is_push(op))
            pc += push_size(op);
    }
    bits[start / scan_block] = word;
    if (padded != nullptr)
    {
        if (n != start)
            std::memcpy(padded + start, code + start, n - start);
        std::memset(padded + n, 0, scan_padding);
    }
}

// --- word: 8 bytes at a time ------------------------------------------------------------------

inline constexpr u64 swar_ones = 0x0101010101010101;
inline constexpr u64 swar_low7 = 0x7F7F7F7F7F7F7F7F;

/// The 8 bytes at p, byte k in bits 8k..8k+7.
inline u64 load_word(const u8* p) noexcept
{
    u64 w;
    std::memcpy(&w, p, sizeof(w));
    if constexpr (std::endian::native == std::endian::big)
        w = __builtin_bswap64(w);
    return w;
}

/// 0x80 in every byte of x that is zero, 0 in the others (exact: no carry between bytes).
constexpr u64 zero_bytes(u64 x) noexcept
{
    return ~(((x & swar_low7) + swar_low7) | x | swar_low7);
}

/// The PUSH1..PUSH32 bytes of w (0x60..0x7F: top three bits 011) as 0x80 per byte.
constexpr u64 push_bytes(u64 w) noexcept
{
    return zero_bytes((w & (swar_ones * 0xE0)) ^ (swar_ones * OP_PUSH1));
}

/// The JUMPDEST bytes of w as 0x80 per byte.
constexpr u64 jumpdest_bytes(u64 w) noexcept
{
    return zero_bytes(w ^ (swar_ones * OP_JUMPDEST));
}

/// The eight 0x80 flags of `flags` as 8 bits, byte k to bit k (one multiply: each flag lands in
/// its own bit of the top byte, no two partial products meet).
constexpr u64 gather_flags(u64 flags) noexcept
{
    return ((flags >> 7) * 0x0102040810204080) >> 56;
}

struct WordBlock
{
    u64 operator()(const u8* block, unsigned& carry) const noexcept
    {
        u64 pushes = 0;
        std::array<u64, 8> w;
        for (std::size_t k = 0; k < 8; ++k)
        {
            w[k] = load_word(block + 8 * k);
            pushes |= push_bytes(w[k]);
        }
        u64 J = 0;
        for (std::size_t k = 0; k < 8; ++k)
            J |= gather_flags(jumpdest_bytes(w[k])) << (8 * k);
        if (pushes == 0)
        {
            const u64 live = ~u64{0} << carry;
            carry = 0;
            return J & live;
        }
        u64 P = 0;
        for (std::size_t k = 0; k < 8; ++k)
            P |= gather_flags(push_bytes(w[k])) << (8 * k);
        return walk_block(block, J, P, carry);
    }
};

template <bool Copy>
inline void scan_word_impl(const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    unsigned carry = 0;
    const std::size_t full = n / scan_block;
    for (std::size_t b = 0; b < full; ++b)
    {
        const u8* const block = code + b * scan_block;
        if constexpr (Copy)
            std::memcpy(padded + b * scan_block, block, scan_block);
        bits[b] = WordBlock{}(block, carry);
    }
    scan_tail(code, n, bits, Copy ? padded : nullptr, carry);
}

inline void scan_word(const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    if (padded != nullptr)
        scan_word_impl<true>(code, n, bits, padded);
    else
        scan_word_impl<false>(code, n, bits, nullptr);
}

/// The JUMPDEST and PUSH1..PUSH32 bytes of the 64 bytes at p, bit k for byte k: the masks every
/// path starts from, here on the baseline of the build (SSE2 on x86-64, 8-byte words elsewhere)
/// for Analysis's search for PUSH-free runs.
struct BlockMasks
{
    u64 jumpdests;
    u64 pushes;
};

inline BlockMasks block_masks(const u8* p) noexcept
{
    BlockMasks m{0, 0};
#if EVMALLOC_SCAN_X86
    const __m128i jumpdest = _mm_set1_epi8(static_cast<char>(OP_JUMPDEST));
    const __m128i below_push = _mm_set1_epi8(static_cast<char>(OP_PUSH1 - 1));
    for (std::size_t k = 0; k < 4; ++k)
    {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
        m.jumpdests |=
            u64{static_cast<std::uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, jumpdest)))}
            << (16 * k);
        m.pushes |=
            u64{static_cast<std::uint16_t>(_mm_movemask_epi8(_mm_cmpgt_epi8(v, below_push)))}
            << (16 * k);
    }
#else
    for (std::size_t k = 0; k < 8; ++k)
    {
        const u64 w = load_word(p + 8 * k);
        m.jumpdests |= gather_flags(jumpdest_bytes(w)) << (8 * k);
        m.pushes |= gather_flags(push_bytes(w)) << (8 * k);
    }
#endif
    return m;
}

/// True iff one of the 64 bytes at p is a PUSH1..PUSH32 (block_masks(p).pushes != 0, cheaper).
inline bool has_push(const u8* p) noexcept
{
#if EVMALLOC_SCAN_X86
    const __m128i below_push = _mm_set1_epi8(static_cast<char>(OP_PUSH1 - 1));
    __m128i any = _mm_setzero_si128();
    for (std::size_t k = 0; k < 4; ++k)
        any = _mm_or_si128(
            any, _mm_cmpgt_epi8(
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k)), below_push));
    return _mm_movemask_epi8(any) != 0;
#else
    u64 pushes = 0;
    for (std::size_t k = 0; k < 8; ++k)
        pushes |= push_bytes(load_word(p + 8 * k));
    return pushes != 0;
#endif
}

#if EVMALLOC_SCAN_X86
// --- sse2 -------------------------------------------------------------------------------------

struct Sse2Block
{
    u64 operator()(const u8* block, unsigned& carry) const noexcept
    {
        const __m128i jumpdest = _mm_set1_epi8(static_cast<char>(OP_JUMPDEST));
        const __m128i below_push = _mm_set1_epi8(static_cast<char>(OP_PUSH1 - 1));
        u64 J = 0;
        u64 P = 0;
        for (std::size_t k = 0; k < 4; ++k)
        {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * k));
            // Signed: PUSH1..PUSH32 are the bytes above 0x5F; 0x80..0xFF are negative.
            J |= u64{static_cast<std::uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, jumpdest)))}
                 << (16 * k);
            P |= u64{static_cast<std::uint16_t>(_mm_movemask_epi8(_mm_cmpgt_epi8(v, below_push)))}
                 << (16 * k);
        }
        if ((P >> carry) == 0)
        {
            const u64 live = ~u64{0} << carry;
            carry = 0;
            return J & live;
        }
        return walk_block(block, J, P, carry);
    }
};

template <bool Copy>
inline void scan_sse2_impl(const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    const __m128i jumpdest = _mm_set1_epi8(static_cast<char>(OP_JUMPDEST));
    const __m128i below_push = _mm_set1_epi8(static_cast<char>(OP_PUSH1 - 1));
    unsigned carry = 0;
    const std::size_t full = n / scan_block;
    std::size_t b = 0;
    // Four blocks at once while they hold no PUSH byte and no push data is carried in.
    while (b + 4 <= full)
    {
        const u8* const src = code + b * scan_block;
        if (carry == 0)
        {
            __m128i v[16];
            __m128i any = _mm_setzero_si128();
            for (std::size_t k = 0; k < 16; ++k)
            {
                v[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * k));
                any = _mm_or_si128(any, _mm_cmpgt_epi8(v[k], below_push));
            }
            if (_mm_movemask_epi8(any) == 0)
            {
                for (std::size_t k = 0; k < 16; ++k)
                {
                    if constexpr (Copy)
                        _mm_storeu_si128(
                            reinterpret_cast<__m128i*>(padded + b * scan_block + 16 * k), v[k]);
                }
                for (std::size_t j = 0; j < 4; ++j)
                {
                    u64 J = 0;
                    for (std::size_t k = 0; k < 4; ++k)
                        J |= u64{static_cast<std::uint16_t>(
                                 _mm_movemask_epi8(_mm_cmpeq_epi8(v[4 * j + k], jumpdest)))}
                             << (16 * k);
                    bits[b + j] = J;
                }
                b += 4;
                continue;
            }
        }
        if constexpr (Copy)
            std::memcpy(padded + b * scan_block, src, scan_block);
        bits[b] = Sse2Block{}(src, carry);
        ++b;
    }
    for (; b < full; ++b)
    {
        if constexpr (Copy)
            std::memcpy(padded + b * scan_block, code + b * scan_block, scan_block);
        bits[b] = Sse2Block{}(code + b * scan_block, carry);
    }
    scan_tail(code, n, bits, Copy ? padded : nullptr, carry);
}

inline void scan_sse2(const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    if (padded != nullptr)
        scan_sse2_impl<true>(code, n, bits, padded);
    else
        scan_sse2_impl<false>(code, n, bits, nullptr);
}

// --- avx2: 16-byte groups, vpshufb tables -----------------------------------------------------
//
// In a group of 16 bytes, next[i] = i + 1 + immediate size, kept as i (< 16) or as
// 0x80 | (next - 16) when it leaves the group: the push data it carries into the groups after
// (0..32). vpshufb gives 0 for an index with bit 7 set, so next∘next keeps the lanes that left
// by a max (a successor is always larger). After the composition, every lane's exit is the
// group's table from entry to the entry of the next group; the carry goes through the four
// groups by four table loads, then binary lifting finds per lane the last start at or before it.

#define EVMALLOC_TARGET_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt")))

struct Avx2Scan
{
    __m256i jumpdest, below_push, group_end, exit_bias, low7, lane, lane_plus1, entry_index01,
        entry_index23;
    // tables[g][e]: the entry of group g + 1 for entry e of group g (e < 16: the exit of the
    // path from lane e; e >= 16: the whole group is push data, e - 16 is left).
    alignas(64) std::array<std::array<u8, 48>, 4> tables;

    EVMALLOC_TARGET_AVX2 Avx2Scan() noexcept
      : jumpdest{_mm256_set1_epi8(static_cast<char>(OP_JUMPDEST))},
        below_push{_mm256_set1_epi8(static_cast<char>(OP_PUSH1 - 1))},
        group_end{_mm256_set1_epi8(15)},
        exit_bias{_mm256_set1_epi8(0x70)},
        low7{_mm256_set1_epi8(0x7F)},
        lane{_mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4,
            5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)},
        lane_plus1{_mm256_add_epi8(lane, _mm256_set1_epi8(1))},
        entry_index01{_mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)},
        entry_index23{_mm256_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3,
            3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3)}
    {
        for (auto& t : tables)
            for (std::size_t e = 16; e < t.size(); ++e)
                t[e] = static_cast<u8>(e - 16);
    }

    EVMALLOC_TARGET_AVX2 static __m256i load(const u8* p) noexcept
    {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    }

    EVMALLOC_TARGET_AVX2 static void store(u8* p, __m256i v) noexcept
    {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
    }

    EVMALLOC_TARGET_AVX2 static u64 movemask64(__m256i lo, __m256i hi) noexcept
    {
        return u64{static_cast<std::uint32_t>(_mm256_movemask_epi8(lo))} |
               u64{static_cast<std::uint32_t>(_mm256_movemask_epi8(hi))} << 32;
    }

    EVMALLOC_TARGET_AVX2 __m256i next_lanes(__m256i v) const noexcept
    {
        const __m256i push = _mm256_cmpgt_epi8(v, below_push);
        const __m256i size = _mm256_and_si256(_mm256_sub_epi8(v, below_push), push);
        const __m256i next = _mm256_add_epi8(lane_plus1, size);
        return _mm256_add_epi8(
            next, _mm256_and_si256(_mm256_cmpgt_epi8(next, group_end), exit_bias));
    }

    // x = max(x, up[x] if up[x] <= lane): the lifting step.
    EVMALLOC_TARGET_AVX2 __m256i lift(__m256i x, __m256i up) const noexcept
    {
        const __m256i y = _mm256_shuffle_epi8(up, x);
        const __m256i ok = _mm256_cmpeq_epi8(_mm256_min_epu8(y, lane), y);
        return _mm256_max_epu8(x, _mm256_and_si256(y, ok));
    }

    EVMALLOC_TARGET_AVX2 u64 block(__m256i v0, __m256i v1, unsigned& carry) noexcept
    {
        const u64 J = movemask64(_mm256_cmpeq_epi8(v0, jumpdest), _mm256_cmpeq_epi8(v1, jumpdest));
        const u64 P =
            movemask64(_mm256_cmpgt_epi8(v0, below_push), _mm256_cmpgt_epi8(v1, below_push));
        if ((P >> carry) == 0)
        {
            const u64 live = ~u64{0} << carry;
            carry = 0;
            return J & live;
        }
        // up[k]: next composed 2^k times, until every lane of both registers has left.
        __m256i a[5], b[5];
        a[0] = next_lanes(v0);
        b[0] = next_lanes(v1);
        std::size_t levels = 0;
        while (
            levels < 4 && (_mm256_movemask_epi8(a[levels]) & _mm256_movemask_epi8(b[levels])) != -1)
        {
            a[levels + 1] = _mm256_max_epu8(_mm256_shuffle_epi8(a[levels], a[levels]), a[levels]);
            b[levels + 1] = _mm256_max_epu8(_mm256_shuffle_epi8(b[levels], b[levels]), b[levels]);
            ++levels;
        }
        const __m256i ea = _mm256_and_si256(a[levels], low7);
        const __m256i eb = _mm256_and_si256(b[levels], low7);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(tables[0].data()), _mm256_castsi256_si128(ea));
        _mm_storeu_si128(
            reinterpret_cast<__m128i*>(tables[1].data()), _mm256_extracti128_si256(ea, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(tables[2].data()), _mm256_castsi256_si128(eb));
        _mm_storeu_si128(
            reinterpret_cast<__m128i*>(tables[3].data()), _mm256_extracti128_si256(eb, 1));
        const unsigned e0 = carry;
        const unsigned e1 = tables[0][e0];
        const unsigned e2 = tables[1][e1];
        const unsigned e3 = tables[2][e2];
        carry = tables[3][e3];
        // Each group's entry in its lanes; an entry >= 16 (no start in the group) as 0xFF, which
        // the lifting never moves and no lane equals.
        const __m256i entries =
            _mm256_set1_epi32(static_cast<int>(e0 | e1 << 8 | e2 << 16 | e3 << 24));
        __m256i x0 = _mm256_shuffle_epi8(entries, entry_index01);
        __m256i x1 = _mm256_shuffle_epi8(entries, entry_index23);
        x0 = _mm256_or_si256(x0, _mm256_cmpgt_epi8(x0, group_end));
        x1 = _mm256_or_si256(x1, _mm256_cmpgt_epi8(x1, group_end));
        for (std::size_t k = levels; k-- > 0;)
        {
            x0 = lift(x0, a[k]);
            x1 = lift(x1, b[k]);
        }
        return J & movemask64(_mm256_cmpeq_epi8(x0, lane), _mm256_cmpeq_epi8(x1, lane));
    }
};

template <bool Copy>
EVMALLOC_TARGET_AVX2 inline void scan_avx2_impl(
    const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    Avx2Scan scan;
    unsigned carry = 0;
    const std::size_t full = n / scan_block;
    std::size_t b = 0;
    while (b + 4 <= full)
    {
        const u8* const src = code + b * scan_block;
        if (carry == 0)
        {
            // Four blocks with no PUSH byte (the signed maximum is not above 0x5F): J alone.
            __m256i v[8];
            for (std::size_t k = 0; k < 8; ++k)
                v[k] = Avx2Scan::load(src + 32 * k);
            const __m256i top = _mm256_max_epi8(
                _mm256_max_epi8(_mm256_max_epi8(v[0], v[1]), _mm256_max_epi8(v[2], v[3])),
                _mm256_max_epi8(_mm256_max_epi8(v[4], v[5]), _mm256_max_epi8(v[6], v[7])));
            const __m256i any = _mm256_cmpgt_epi8(top, scan.below_push);
            if (_mm256_testz_si256(any, any))
            {
                for (std::size_t k = 0; k < 8; ++k)
                {
                    if constexpr (Copy)
                        Avx2Scan::store(padded + b * scan_block + 32 * k, v[k]);
                }
                for (std::size_t j = 0; j < 4; ++j)
                    bits[b + j] = Avx2Scan::movemask64(_mm256_cmpeq_epi8(v[2 * j], scan.jumpdest),
                        _mm256_cmpeq_epi8(v[2 * j + 1], scan.jumpdest));
                b += 4;
                continue;
            }
        }
        const __m256i v0 = Avx2Scan::load(src);
        const __m256i v1 = Avx2Scan::load(src + 32);
        if constexpr (Copy)
        {
            Avx2Scan::store(padded + b * scan_block, v0);
            Avx2Scan::store(padded + b * scan_block + 32, v1);
        }
        bits[b] = scan.block(v0, v1, carry);
        ++b;
    }
    for (; b < full; ++b)
    {
        const __m256i v0 = Avx2Scan::load(code + b * scan_block);
        const __m256i v1 = Avx2Scan::load(code + b * scan_block + 32);
        if constexpr (Copy)
        {
            Avx2Scan::store(padded + b * scan_block, v0);
            Avx2Scan::store(padded + b * scan_block + 32, v1);
        }
        bits[b] = scan.block(v0, v1, carry);
    }
    scan_tail(code, n, bits, Copy ? padded : nullptr, carry);
}

EVMALLOC_TARGET_AVX2 inline void scan_avx2(
    const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    if (padded != nullptr)
        scan_avx2_impl<true>(code, n, bits, padded);
    else
        scan_avx2_impl<false>(code, n, bits, nullptr);
}

// --- avx512: the whole block in one register --------------------------------------------------
//
// A lane's position p is kept as 0x80 | p (negative as a signed byte), a next position past the
// block as 0x40 + the push data it carries into the next block (0..32, positive): vpermb reads
// the low 6 bits, vpmovb2m tells the two apart, and a signed compare orders them (every exit
// after every position).

#define EVMALLOC_TARGET_AVX512 \
    __attribute__((target("avx512f,avx512bw,avx512vbmi,bmi,bmi2,popcnt")))

struct Avx512Scan
{
    __m512i jumpdest, push_bias, below_push, lane, lane_plus1, position, exit_to_entry;
    __m512i entry;  // the carry into the current block, as a position in every lane

    EVMALLOC_TARGET_AVX512 Avx512Scan() noexcept
      : jumpdest{_mm512_set1_epi8(static_cast<char>(OP_JUMPDEST))},
        push_bias{_mm512_set1_epi8(0x20)},
        below_push{_mm512_set1_epi8(static_cast<char>(OP_PUSH1 - 1))},
        lane{_mm512_set_epi8(63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46,
            45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24,
            23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)},
        lane_plus1{_mm512_add_epi8(lane, _mm512_set1_epi8(1))},
        position{_mm512_set1_epi8(static_cast<char>(0x80))},
        exit_to_entry{_mm512_set1_epi8(static_cast<char>(0xC0))},
        entry{position}
    {
        lane = _mm512_or_si512(lane, position);  // lane i as the position 0x80 | i
    }

    // PUSH1..PUSH32: v + 0x20 has its top bit set and v has not (0x60..0x7F only).
    EVMALLOC_TARGET_AVX512 __mmask64 pushes(__m512i v) const noexcept
    {
        const __m512i t = _mm512_add_epi8(v, push_bias);
        return _mm512_movepi8_mask(_mm512_ternarylogic_epi32(v, t, t, 0x0C));  // ~v & t
    }

    // vpermb: table[index & 63] per lane. (The masked form: GCC 12's unmasked intrinsics read
    // an uninitialised register, which -Werror=uninitialized rejects.)
    EVMALLOC_TARGET_AVX512 static __m512i permute(__m512i index, __m512i table) noexcept
    {
        return _mm512_mask_permutexvar_epi8(table, ~__mmask64{0}, index, table);
    }

    EVMALLOC_TARGET_AVX512 static __m512i compose(__m512i up, __mmask64 inside) noexcept
    {
        return _mm512_mask_permutexvar_epi8(up, inside, up, up);
    }

    EVMALLOC_TARGET_AVX512 __m512i lift(__m512i x, __m512i up) const noexcept
    {
        const __m512i y = permute(x, up);
        return _mm512_mask_mov_epi8(x, _mm512_cmple_epi8_mask(y, lane), y);
    }

    // The bits of a block with a PUSH after the carried push data (see the comment above).
    EVMALLOC_TARGET_AVX512 u64 decode(__m512i v, __mmask64 J, __mmask64 P) noexcept
    {
        const __m512i next =
            _mm512_mask_add_epi8(lane_plus1, P, lane_plus1, _mm512_sub_epi8(v, below_push));
        // 0x80 | next while next < 64 (bit 6 clear), next itself (0x40 + carry) after.
        __m512i up[7];
        up[0] = _mm512_ternarylogic_epi32(next, _mm512_slli_epi16(next, 1), position, 0xF2);
        std::size_t levels = 0;
        for (__mmask64 inside = _mm512_movepi8_mask(up[0]); inside != 0 && levels < 6;
             inside = _mm512_movepi8_mask(up[levels]))
        {
            up[levels + 1] = compose(up[levels], inside);
            ++levels;
        }
        __m512i x = entry;
        switch (levels)
        {
        case 6:
            x = lift(x, up[5]);
            [[fallthrough]];
        case 5:
            x = lift(x, up[4]);
            [[fallthrough]];
        case 4:
            x = lift(x, up[3]);
            [[fallthrough]];
        case 3:
            x = lift(x, up[2]);
            [[fallthrough]];
        case 2:
            x = lift(x, up[1]);
            [[fallthrough]];
        case 1:
            x = lift(x, up[0]);
            [[fallthrough]];
        default:
            break;
        }
        entry = _mm512_xor_si512(permute(entry, up[levels]), exit_to_entry);
        return _cvtmask64_u64(_kand_mask64(J, _mm512_cmpeq_epi8_mask(x, lane)));
    }

    EVMALLOC_TARGET_AVX512 u64 block(__m512i v) noexcept
    {
        const __mmask64 J = _mm512_cmpeq_epi8_mask(v, jumpdest);
        const __mmask64 P = pushes(v);
        const __mmask64 live = _mm512_cmpge_epi8_mask(lane, entry);
        if (_kortestz_mask64_u8(_kand_mask64(P, live), _kand_mask64(P, live)))
        {
            entry = position;
            return _cvtmask64_u64(_kand_mask64(J, live));
        }
        return decode(v, J, P);
    }
};

template <bool Copy>
EVMALLOC_TARGET_AVX512 inline void scan_avx512_impl(
    const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    Avx512Scan scan;
    bool no_carry = true;  // the block before took the one-mask path
    const std::size_t full = n / scan_block;
    std::size_t b = 0;
    while (b + 4 <= full)
    {
        const u8* const src = code + b * scan_block;
        if (no_carry)
        {
            // Four blocks with no PUSH byte (the signed maximum is not above 0x5F): J alone.
            const __m512i v0 = _mm512_loadu_si512(src);
            const __m512i v1 = _mm512_loadu_si512(src + 64);
            const __m512i v2 = _mm512_loadu_si512(src + 128);
            const __m512i v3 = _mm512_loadu_si512(src + 192);
            const __m512i top = _mm512_max_epi8(_mm512_max_epi8(v0, v1), _mm512_max_epi8(v2, v3));
            if (_mm512_cmpgt_epi8_mask(top, scan.below_push) == 0)
            {
                if constexpr (Copy)
                {
                    u8* const dst = padded + b * scan_block;
                    _mm512_storeu_si512(dst, v0);
                    _mm512_storeu_si512(dst + 64, v1);
                    _mm512_storeu_si512(dst + 128, v2);
                    _mm512_storeu_si512(dst + 192, v3);
                }
                bits[b] = _cvtmask64_u64(_mm512_cmpeq_epi8_mask(v0, scan.jumpdest));
                bits[b + 1] = _cvtmask64_u64(_mm512_cmpeq_epi8_mask(v1, scan.jumpdest));
                bits[b + 2] = _cvtmask64_u64(_mm512_cmpeq_epi8_mask(v2, scan.jumpdest));
                bits[b + 3] = _cvtmask64_u64(_mm512_cmpeq_epi8_mask(v3, scan.jumpdest));
                b += 4;
                continue;
            }
        }
        const __m512i v = _mm512_loadu_si512(src);
        if constexpr (Copy)
            _mm512_storeu_si512(padded + b * scan_block, v);
        const __mmask64 J = _mm512_cmpeq_epi8_mask(v, scan.jumpdest);
        const __mmask64 P = scan.pushes(v);
        const __mmask64 live = _mm512_cmpge_epi8_mask(scan.lane, scan.entry);
        no_carry = _kortestz_mask64_u8(_kand_mask64(P, live), _kand_mask64(P, live)) != 0;
        if (no_carry)
        {
            scan.entry = scan.position;
            bits[b] = _cvtmask64_u64(_kand_mask64(J, live));
        }
        else
            bits[b] = scan.decode(v, J, P);
        ++b;
    }
    for (; b < full; ++b)
    {
        const __m512i v = _mm512_loadu_si512(code + b * scan_block);
        if constexpr (Copy)
            _mm512_storeu_si512(padded + b * scan_block, v);
        bits[b] = scan.block(v);
    }
    // The last n % 64 bytes, loaded masked (nothing past the end is read); the copy gets them
    // and the padding's zeros from the same register, and the rest of the padding after it.
    const std::size_t t = n - full * scan_block;
    const __mmask64 in_code = _bzhi_u64(~u64{0}, static_cast<unsigned>(t));
    const __m512i v = _mm512_maskz_loadu_epi8(in_code, code + full * scan_block);
    bits[full] = scan.block(v);
    if constexpr (Copy)
    {
        const std::size_t end = t + scan_padding;  // bytes of the copy from the tail's start
        u8* const dst = padded + full * scan_block;
        _mm512_mask_storeu_epi8(dst, _bzhi_u64(~u64{0}, static_cast<unsigned>(end)), v);
        if (end > scan_block)
            _mm512_mask_storeu_epi8(dst + scan_block,
                _bzhi_u64(~u64{0}, static_cast<unsigned>(end - scan_block)),
                _mm512_setzero_si512());
    }
}

EVMALLOC_TARGET_AVX512 inline void scan_avx512(
    const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    if (padded != nullptr)
        scan_avx512_impl<true>(code, n, bits, padded);
    else
        scan_avx512_impl<false>(code, n, bits, nullptr);
}

#undef EVMALLOC_TARGET_AVX2
#undef EVMALLOC_TARGET_AVX512
#endif  // EVMALLOC_SCAN_X86

/// The kernel of each path, indexed by AnalysisPath; paths this build has no code for fall
/// back to the word path (never chosen: analysis_path_supported() says no).
inline constexpr std::array<ScanKernel, 5> scan_kernels = {
    scan_scalar,
    scan_word,
#if EVMALLOC_SCAN_X86
    scan_sse2,
    scan_avx2,
    scan_avx512,
#else
    scan_word,
    scan_word,
    scan_word,
#endif
};

inline constexpr std::uint8_t scan_path_unset = 0xFF;

/// The path in use, scan_path_unset until the first scan (or analysis_path()) chooses it.
inline std::atomic<std::uint8_t> scan_path{scan_path_unset};

/// The path at first use: the one EVMALLOC_ANALYSIS_PATH names if this CPU runs it, else the
/// best one.
inline AnalysisPath initial_analysis_path() noexcept
{
    if (const char* name = std::getenv(analysis_path_variable))
        if (const auto path = analysis_path_from_name(name); path && analysis_path_supported(*path))
            return *path;
    return best_analysis_path();
}

[[gnu::cold, gnu::noinline]] inline std::uint8_t choose_scan_path() noexcept
{
    std::uint8_t expected = scan_path_unset;
    const auto chosen = static_cast<std::uint8_t>(initial_analysis_path());
    // Another thread (or set_analysis_path) may have chosen first: its choice stands.
    if (scan_path.compare_exchange_strong(expected, chosen, std::memory_order_relaxed))
        return chosen;
    return expected;
}

inline std::uint8_t current_scan_path() noexcept
{
    const std::uint8_t path = scan_path.load(std::memory_order_relaxed);
    return path != scan_path_unset ? path : choose_scan_path();
}

/// The scan on the path in use: bits[0 .. (n + 64) / 64) and, when `padded` is not null, the
/// padded copy (n bytes, then PaddedCode::padding zeros). \requires the buffers do not overlap.
inline void scan_jumpdests(const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    scan_kernels[current_scan_path()](code, n, bits, padded);
}

/// The scan on the given path, whatever is in use. \requires analysis_path_supported(path)
inline void scan_jumpdests(
    AnalysisPath path, const u8* code, std::size_t n, u64* bits, u8* padded) noexcept
{
    scan_kernels[static_cast<std::size_t>(path)](code, n, bits, padded);
}
}  // namespace detail

/// The path the jumpdest scan runs on (chosen at first use, see the top of this header).
[[nodiscard]] inline AnalysisPath analysis_path() noexcept
{
    return static_cast<AnalysisPath>(detail::current_scan_path());
}

/// Makes every later scan run on `path`, in every thread (a test and diagnosis override: the
/// results are the same on every path, only the speed differs).
/// \returns false, and changes nothing, when this CPU does not run `path`.
inline bool set_analysis_path(AnalysisPath path) noexcept
{
    if (!analysis_path_supported(path))
        return false;
    detail::scan_path.store(static_cast<std::uint8_t>(path), std::memory_order_relaxed);
    return true;
}
}  // namespace evmalloc
