// Fuzz target `memory`: a sequence of expand(offset, length) and the metered
// expand(offset, length, gas_left) (offsets and lengths up to 2^64 - 1, any gas_left, negative
// included), expansion_gas(), writes, clear(), release_storage() and moves on one Memory,
// against a model: the size, the gas of each expansion (3w + w*w/512, computed here in 128
// bits, saturated at 2^63 - 1), out_of_gas before anything is allocated or changed, the
// capacity the growth policy gives, the contents (kept across growth, new tails zero, also
// after clear()), data() never null (the shared empty sentinel without storage), and the
// bytes past size() poisoned. The upstream fails where the input says and
// above 256 KiB: out_of_memory and memory_limit_exceeded leave size, capacity, data and
// contents as they were, and the upstream holds exactly the one live buffer.
#include "caching_resource.hpp"
#include "check.hpp"

#include <evmalloc/memory.hpp>
#include <support/recording_resource.hpp>

#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/asan_interface.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace
{
using evmalloc::Errc;
using evmalloc::Memory;
using u128 = unsigned __int128;

constexpr std::size_t upstream_cap = std::size_t{256} << 10;
constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

struct Model
{
    std::vector<std::uint8_t> bytes;  // size() bytes
    std::size_t capacity = 0;
    std::size_t limit = 0;
};

FUZZ_NO_COVERAGE u128 cost(u128 words)
{
    return 3 * words + words * words / 512;
}

FUZZ_NO_COVERAGE std::size_t round_to_page(std::size_t n)
{
    return n > std::numeric_limits<std::size_t>::max() - 4095 ? n : (n + 4095) / 4096 * 4096;
}

// The capacity a growth to `needed` bytes asks for (memory.hpp's policy).
FUZZ_NO_COVERAGE std::size_t grown_capacity(
    std::size_t capacity, std::size_t limit, std::size_t needed)
{
    std::size_t c = capacity > std::numeric_limits<std::size_t>::max() / 2
                        ? std::numeric_limits<std::size_t>::max()
                        : 2 * capacity;
    if (c < Memory::initial_capacity)
        c = Memory::initial_capacity;
    if (c > round_to_page(limit))
        c = round_to_page(limit);
    if (c < needed)
        c = round_to_page(needed);
    return c;
}

FUZZ_NO_COVERAGE void check_state(
    const Memory& m, const Model& model, const evmalloc::test::RecordingResource& rec)
{
    FUZZ_CHECK(m.size() == model.bytes.size());
    FUZZ_CHECK(m.size() % 32 == 0 && m.size() <= m.capacity() && m.size() <= m.limit());
    FUZZ_CHECK(m.capacity() == model.capacity);
    FUZZ_CHECK(
        m.data() != nullptr && reinterpret_cast<std::uintptr_t>(m.data()) % Memory::alignment == 0);
    if (m.capacity() == 0)
    {
        static const Memory empty;
        FUZZ_CHECK(m.data() == empty.data());  // the shared sentinel, never upstream's
    }
    FUZZ_CHECK(m.limit() == model.limit);
    if (m.size() != 0)
    {
        FUZZ_CHECK(std::memcmp(m.data(), model.bytes.data(), m.size()) == 0);
        FUZZ_CHECK(!__asan_address_is_poisoned(m.data() + m.size() - 1));
    }
    if (m.capacity() > m.size())
    {
        FUZZ_CHECK(__asan_address_is_poisoned(m.data() + m.size()));
        FUZZ_CHECK(__asan_address_is_poisoned(m.data() + m.capacity() - 1));
    }
    FUZZ_CHECK(rec.live_count() == (m.capacity() != 0 ? 1U : 0U));
    FUZZ_CHECK(rec.live_bytes() == m.capacity());
}

// An offset or length: small, near the size or the limit, near 2^64, or anything.
std::uint64_t pick(FuzzedDataProvider& in, const Model& model)
{
    const std::uint64_t size = model.bytes.size();
    switch (in.ConsumeIntegralInRange<int>(0, 5))
    {
    case 0:
        return in.ConsumeIntegralInRange<std::uint64_t>(0, 64);
    case 1:
        return in.ConsumeIntegralInRange<std::uint64_t>(0, 70000);
    case 2:
        return size + in.ConsumeIntegralInRange<std::uint64_t>(0, 64) - 32;
    case 3:
        return model.limit + in.ConsumeIntegralInRange<std::uint64_t>(0, 64) - 32;
    case 4:
        return u64_max - in.ConsumeIntegralInRange<std::uint64_t>(0, 64);
    default:
        return in.ConsumeIntegral<std::uint64_t>();
    }
}

std::size_t pick_limit(FuzzedDataProvider& in)
{
    constexpr std::size_t limits[] = {0, 31, 32, 100, 4096, 4097, 65536, 65537,
        std::size_t{1} << 20, Memory::default_limit, std::numeric_limits<std::size_t>::max() - 4000,
        std::numeric_limits<std::size_t>::max()};
    const auto i = in.ConsumeIntegralInRange<std::size_t>(0, std::size(limits));
    return i < std::size(limits) ? limits[i]
                                 : in.ConsumeIntegralInRange<std::size_t>(0, std::size_t{1} << 21);
}

constexpr u128 gas_saturation = (u128{1} << 63) - 1;

// The gas expand(offset, length) charges now, as the model sees it; false when the limit
// refuses it.
FUZZ_NO_COVERAGE bool model_gas(
    const Model& model, std::uint64_t offset, std::uint64_t length, u128& gas)
{
    const std::size_t size = model.bytes.size();
    const u128 end = u128{offset} + length;
    gas = 0;
    if (length == 0 || end <= size)
        return true;
    const u128 needed = (end + 31) / 32 * 32;
    if (needed > u64_max || needed > model.limit)
        return false;
    // As documented: expansion_cost saturates at 2^64 - 1 from 2^32 words (128 GiB) on, the
    // difference at 2^63 - 1.
    const auto documented_cost = [](u128 w) {
        return w >= (u128{1} << 32) ? u128{u64_max} : cost(w);
    };
    const u128 diff = documented_cost(needed / 32) - documented_cost(size / 32);
    gas = diff < gas_saturation ? diff : gas_saturation;
    return true;
}

// expand(), metered or not, against the model.
FUZZ_NO_COVERAGE void check_expand(Memory& m, Model& model, evmalloc::test::RecordingResource& rec,
    std::uint64_t offset, std::uint64_t length, bool failing, bool metered, std::int64_t gas_left)
{
    u128 gas = 0;
    const bool within_limit = model_gas(model, offset, length, gas);
    const auto priced = m.expansion_gas(offset, length);
    if (within_limit)
        FUZZ_CHECK(priced.has_value() && u128{*priced} == gas);
    else
        FUZZ_CHECK(!priced.has_value() && priced.error() == Errc::memory_limit_exceeded);

    rec.set_failing(failing);
    const std::uint8_t* const data_before = m.data();
    const std::size_t allocations_before = rec.allocations();
    const auto r = metered ? m.expand(offset, length, gas_left) : m.expand(offset, length);
    rec.set_failing(false);

    const std::size_t size = model.bytes.size();
    const u128 end = u128{offset} + length;
    if (length == 0 || end <= size)
    {
        FUZZ_CHECK(r.has_value() && *r == 0);
        FUZZ_CHECK(m.data() == data_before && rec.allocations() == allocations_before);
        return;
    }
    if (!within_limit)
    {
        FUZZ_CHECK(!r.has_value() && r.error() == Errc::memory_limit_exceeded);
        FUZZ_CHECK(m.data() == data_before && rec.allocations() == allocations_before);
        return;
    }
    if (metered && (gas_left < 0 || gas > static_cast<u128>(gas_left)))
    {
        FUZZ_CHECK(!r.has_value() && r.error() == Errc::out_of_gas);
        FUZZ_CHECK(m.data() == data_before && rec.allocations() == allocations_before);
        return;
    }
    const auto new_size = static_cast<std::size_t>((end + 31) / 32 * 32);
    if (new_size > model.capacity)
    {
        const std::size_t c = grown_capacity(model.capacity, model.limit, new_size);
        if (failing || c > upstream_cap)
        {
            FUZZ_CHECK(!r.has_value() && r.error() == Errc::out_of_memory);
            FUZZ_CHECK(m.data() == data_before && rec.allocations() == allocations_before);
            return;
        }
        model.capacity = c;
        FUZZ_CHECK(rec.allocations() == allocations_before + 1);
    }
    else
        FUZZ_CHECK(m.data() == data_before && rec.allocations() == allocations_before);
    FUZZ_CHECK(r.has_value());
    FUZZ_CHECK(u128{*r} == gas);
    model.bytes.resize(new_size, 0);
}
}  // namespace

/// Steps one input drives at most: long inputs stay cheap, and the corpus keeps its variety.
constexpr int max_steps = 256;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider in{data, size};
    evmalloc::test::RecordingResource rec{&evmalloc::fuzz::CachingResource::instance()};
    rec.fail_above(upstream_cap);
    Model model;
    model.limit = pick_limit(in);
    Memory m{rec.upstream(evmalloc::fuzz::pick_failure_style(in)), model.limit};
    check_state(m, model, rec);

    for (int steps = 0; steps < max_steps && in.remaining_bytes() != 0; ++steps)
    {
        switch (in.ConsumeIntegralInRange<int>(0, 9))
        {
        case 0:
        case 1:
        {
            const std::uint64_t offset = pick(in, model);
            const std::uint64_t length = pick(in, model);
            check_expand(
                m, model, rec, offset, length, in.ConsumeIntegral<std::uint8_t>() < 24, false, 0);
            break;
        }
        case 2:
        case 3:
        {
            const std::uint64_t offset = pick(in, model);
            const std::uint64_t length = pick(in, model);
            const bool failing = in.ConsumeIntegral<std::uint8_t>() < 24;
            // gas_left: around what this expansion costs, negative, or anything.
            u128 gas = 0;
            static_cast<void>(model_gas(model, offset, length, gas));
            std::int64_t gas_left;
            switch (in.ConsumeIntegralInRange<int>(0, 4))
            {
            case 0:
            {
                // gas <= 2^63 - 1: step from it without overflowing.
                const auto near = static_cast<std::int64_t>(gas);
                const auto delta = in.ConsumeIntegralInRange<std::int64_t>(-2, 2);
                gas_left = delta > 0 && near > std::numeric_limits<std::int64_t>::max() - delta
                               ? near
                               : near + delta;
            }
            break;
            case 1:
                gas_left = in.ConsumeIntegralInRange<std::int64_t>(
                    std::numeric_limits<std::int64_t>::min(), 0);
                break;
            case 2:
                gas_left = std::numeric_limits<std::int64_t>::max() -
                           in.ConsumeIntegralInRange<std::int64_t>(0, 2);
                break;
            default:
                gas_left = in.ConsumeIntegral<std::int64_t>();
                break;
            }
            check_expand(m, model, rec, offset, length, failing, true, gas_left);
            break;
        }
        case 4:
        case 5:
            if (!model.bytes.empty())
            {
                const auto at = in.ConsumeIntegralInRange<std::size_t>(0, model.bytes.size() - 1);
                const auto n = in.ConsumeIntegralInRange<std::size_t>(0, model.bytes.size() - at);
                const auto value = in.ConsumeIntegral<std::uint8_t>();
                std::memset(m.data() + at, value, n);
                std::memset(model.bytes.data() + at, value, n);
            }
            break;
        case 6:
            m.clear();
            model.bytes.clear();
            break;
        case 7:
            m.release_storage();
            model.bytes.clear();
            model.capacity = 0;
            break;
        case 8:
        {
            // Moved out and back: the buffer travels, the source is left empty.
            const std::uint8_t* const before = m.data();
            Memory other{std::move(m)};
            FUZZ_CHECK(
                m.capacity() == 0 && m.size() == 0 && m.data() != nullptr && m.upstream() == &rec);
            FUZZ_CHECK(other.data() == before && other.size() == model.bytes.size());
            m = std::move(other);
            FUZZ_CHECK(other.capacity() == 0 && m.data() == before);
            break;
        }
        default:
        {
            // expansion_cost: exact below 2^32 words, saturated at 2^64 - 1 above.
            const auto words =
                in.ConsumeIntegral<std::uint64_t>() >> in.ConsumeIntegralInRange<int>(0, 63);
            const u128 expected = words >= (std::uint64_t{1} << 32) ? u128{u64_max} : cost(words);
            FUZZ_CHECK(u128{Memory::expansion_cost(words)} == expected);
            break;
        }
        }
        check_state(m, model, rec);
    }
    m.release_storage();
    FUZZ_CHECK(rec.check());
    return 0;
}
