// evmalloc: bytecode-size tiers.
//
// A frame buffer is sized for the largest code of its tier, so one pool list per tier serves
// every call. Six tiers cover 4 KiB to 128 KiB of code: 128 KiB is the initcode limit the
// Amsterdam fork sets (131,072 bytes; runtime code 65,536), up from EIP-3860's 49,152 and
// EIP-170's 24,576.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "result.hpp"

namespace evmalloc
{
enum class Tier : std::uint8_t
{
    kb4,
    kb8,
    kb16,
    kb32,
    kb64,
    kb128,
};

inline constexpr std::size_t tier_count = 6;
inline constexpr std::array<Tier, tier_count> all_tiers{
    Tier::kb4, Tier::kb8, Tier::kb16, Tier::kb32, Tier::kb64, Tier::kb128};

/// The largest code any frame holds: the capacity of Tier::kb128.
inline constexpr std::size_t max_code_size = 131072;

/// 0 for kb4 … 5 for kb128, for indexing per-tier tables.
[[nodiscard]] constexpr std::size_t tier_index(Tier t) noexcept
{
    return static_cast<std::size_t>(t);
}

/// The largest code size a tier holds: 4096 << index.
[[nodiscard]] constexpr std::size_t code_capacity(Tier t) noexcept
{
    return std::size_t{4096} << tier_index(t);
}

/// "4KiB" … "128KiB", for reports.
[[nodiscard]] constexpr std::string_view tier_name(Tier t) noexcept
{
    constexpr std::array<std::string_view, tier_count> names{
        "4KiB", "8KiB", "16KiB", "32KiB", "64KiB", "128KiB"};
    return names[tier_index(t)];
}

/// The smallest tier whose capacity is >= code_size (0 gives kb4).
/// \returns Errc::code_too_large when code_size > max_code_size.
[[nodiscard]] constexpr Result<Tier> select_tier(std::size_t code_size) noexcept
{
    if (code_size > max_code_size)
        return Errc::code_too_large;
    if (code_size <= code_capacity(Tier::kb4))
        return Tier::kb4;
    // ceil(log2(code_size)) - 12, for code_size in (4096, 131072].
    return static_cast<Tier>(std::bit_width(code_size - 1) - 12);
}
}  // namespace evmalloc
