// Test support for the shared analysis: codes of every tier boundary, a copy of everything a
// prepared frame shows (the analysis tables, ops, metadata, the padded code) to compare a frame
// on a cache entry with one prepared on its own, and what an upstream holds in blocks of one
// alignment (entries are 64-byte aligned; a cache's bucket array is not).
#pragma once

#include "recording_resource.hpp"

#include <evmalloc/analysis_cache.hpp>
#include <evmalloc/padded_code.hpp>
#include <evmalloc/stack_frame.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

namespace evmalloc::test
{
/// An instruction frame with other element types than DefaultTraits'.
struct NarrowTraits
{
    using Word = evmalloc::Word;
    using Op = std::uint16_t;
    using Metadata = std::uint32_t;
};

/// Code sizes at every tier boundary: 0, 1, and capacity - 1, capacity, capacity + 1 of each tier
/// up to the largest (131072).
inline std::vector<std::size_t> tier_boundary_sizes()
{
    std::vector<std::size_t> sizes{0, 1};
    for (const Tier t : all_tiers)
    {
        const std::size_t c = code_capacity(t);
        sizes.push_back(c - 1);
        sizes.push_back(c);
        if (c + 1 <= max_code_size)
            sizes.push_back(c + 1);
    }
    return sizes;
}

/// `size` random bytes, with JUMPDESTs and PUSHes frequent enough to matter.
inline std::vector<std::uint8_t> random_code(std::size_t size, std::uint32_t seed)
{
    std::mt19937 rng{seed};
    std::uniform_int_distribution<int> byte{0, 255};
    std::vector<std::uint8_t> code(size);
    for (auto& b : code)
    {
        const int r = byte(rng);
        b = static_cast<std::uint8_t>(r < 24 ? 0x5b : byte(rng));
    }
    return code;
}

/// A table of distinct values for any Op type: table[i] differs for every i (from `base`).
template <class Traits>
typename StackFrame<Traits>::OpTable distinct_table(std::size_t base)
{
    typename StackFrame<Traits>::OpTable t{};
    using Op = typename Traits::Op;
    for (std::size_t i = 0; i < t.size(); ++i)
    {
        if constexpr (std::is_pointer_v<Op>)
            t[i] = reinterpret_cast<Op>(static_cast<std::uintptr_t>(0x1000 + 8 * (base + i)));
        else
            t[i] = static_cast<Op>(base + i + 1);
    }
    return t;
}

/// Everything a prepared frame shows, copied out.
struct FrameImage
{
    std::vector<std::uint8_t> padded_code;  ///< code().size() + PaddedCode::padding bytes
    std::vector<std::uint32_t> inst_to_pc, pc_to_inst;
    std::vector<std::uint64_t> jumpdest_bits;
    std::vector<std::uint64_t> ops, metadata;  ///< as integers
    std::size_t instruction_count = 0;

    bool operator==(const FrameImage&) const = default;
};

template <class Traits>
FrameImage image_of(const StackFrame<Traits>& frame)
{
    FrameImage im;
    const auto& a = frame.analysis();
    const std::uint8_t* code = a.code().data();
    im.padded_code.assign(code, code + a.code().size() + PaddedCode::padding);
    im.jumpdest_bits.assign(a.jumpdest_bits_span().begin(), a.jumpdest_bits_span().end());
    if constexpr (is_instruction_frame<Traits>)
    {
        im.instruction_count = a.instruction_count();
        im.inst_to_pc.assign(a.inst_to_pc_span().begin(), a.inst_to_pc_span().end());
        im.pc_to_inst.assign(a.pc_to_inst_span().begin(), a.pc_to_inst_span().end());
        for (const auto op : frame.ops())
        {
            if constexpr (std::is_pointer_v<typename Traits::Op>)
                im.ops.push_back(reinterpret_cast<std::uintptr_t>(op));
            else
                im.ops.push_back(static_cast<std::uint64_t>(op));
        }
        for (const auto m : frame.metadata())
            im.metadata.push_back(static_cast<std::uint64_t>(m));
    }
    return im;
}

/// The per-frame path's image of `code`: init(size, pool) + prepare on a pool of its own.
template <class Traits, class... Table>
FrameImage reference_image(std::span<const std::uint8_t> code, const Table&... table)
{
    FramePool<Traits> pool{
        std::pmr::new_delete_resource(), FramePoolConfig{.max_code_size = 1U << 20}};
    auto frame = StackFrame<Traits>::init(code.size(), pool);
    if (!frame || !frame->prepare(code, table...))
        return {};
    return image_of(*frame);
}

/// Blocks live in a recording resource, by alignment: count and bytes.
struct LiveBlocks
{
    std::size_t count = 0;
    std::size_t bytes = 0;
};

inline LiveBlocks live_blocks(const RecordingResource& r, std::size_t alignment)
{
    std::map<void*, std::size_t> live;
    for (const auto& e : r.log())
    {
        if (e.alignment != alignment)
            continue;
        if (e.allocate)
            live[e.p] = e.bytes;
        else
            live.erase(e.p);
    }
    LiveBlocks b;
    for (const auto& [p, bytes] : live)
    {
        ++b.count;
        b.bytes += bytes;
    }
    return b;
}

/// The block one entry of code of n bytes takes: its header, then code_part_bytes(n).
template <class Traits>
constexpr std::size_t entry_bytes(std::size_t n) noexcept
{
    return detail::CacheEntry<Traits>::code_part_offset() + code_part_bytes<Traits>(n);
}

/// The counters a caller sees of a cache.
struct CacheState
{
    std::size_t entries, bytes, hits, misses, evictions, pinned;
    bool operator==(const CacheState&) const = default;
};

template <class Cache>
CacheState cache_state(const Cache& c)
{
    return {c.entries(), c.bytes(), c.hits(), c.misses(), c.evictions(), c.pinned()};
}

/// A fingerprint that puts every code in the same bucket with the same hash.
struct AlwaysSameHash
{
    std::uint64_t operator()(std::span<const std::uint8_t>) const noexcept { return 0x5eed; }
};
}  // namespace evmalloc::test
