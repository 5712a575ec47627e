// Memory: gas of known expansions, the growth policy (capacities after a sequence), only the
// new tail zeroed, contents kept across growth, clear(), length 0 at any offset, overflow and
// limit errors, an upstream that throws or returns nullptr, release_storage(), moves; expand
// with a gas budget (out_of_gas changes nothing), expansion_gas(), data() never null,
// operator[]. A recording upstream fills
// every new block with a pattern (so zeroing is visible) and checks each deallocation.
#include <evmalloc/memory.hpp>
#include <evmalloc/sanitizer.hpp>

#include "catch.hpp"
#include "support/assert_capture.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory_resource>
#include <new>
#include <type_traits>
#include <vector>

using evmalloc::Errc;
using evmalloc::Memory;

namespace
{
constexpr std::uint8_t fresh_pattern = 0xCD;
constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

class RecordingResource final : public evmalloc::FallibleResource
{
public:
    bool fail = false;               ///< the next allocations fail
    bool fail_with_nullptr = false;  ///< upstream(): fail by returning nullptr, not std::bad_alloc
    std::vector<std::size_t> sizes;  ///< every successful allocation, in order
    std::size_t deallocations = 0;
    std::size_t mismatched = 0;  ///< deallocations not matching an allocation
    std::size_t attempts = 0;

    std::size_t live() const noexcept { return blocks_.size(); }

    /// This resource as a Memory holds it: as a FallibleResource (a failure is nullptr from
    /// try_allocate()) with fail_with_nullptr, else as a plain std::pmr::memory_resource (a
    /// failure is std::bad_alloc from allocate()).
    evmalloc::Upstream upstream() noexcept
    {
        if (fail_with_nullptr)
            return this;
        return static_cast<std::pmr::memory_resource*>(this);
    }

    ~RecordingResource() override { CHECK(blocks_.empty()); }

private:
    void* do_try_allocate(std::size_t bytes, std::size_t alignment) noexcept override
    {
        ++attempts;
        if (fail)
            return nullptr;
        void* p = std::pmr::new_delete_resource()->allocate(bytes, alignment);
        std::memset(p, fresh_pattern, bytes);
        blocks_[p] = {bytes, alignment};
        sizes.push_back(bytes);
        return p;
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override
    {
        ++deallocations;
        const auto it = blocks_.find(p);
        if (it == blocks_.end() || it->second.first != bytes || it->second.second != alignment)
        {
            ++mismatched;
            return;
        }
        blocks_.erase(it);
        std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
    }
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }

    std::map<void*, std::pair<std::size_t, std::size_t>> blocks_;
};

// Reads the byte at i < capacity(), also past size() where ASan builds poison the memory.
std::uint8_t byte_at(Memory& m, std::size_t i)
{
    EVMALLOC_UNPOISON(m.data(), m.capacity());
    const std::uint8_t b = m.data()[i];
    EVMALLOC_POISON(m.data() + m.size(), m.capacity() - m.size());
    return b;
}

bool all_bytes(const Memory& m, std::size_t from, std::size_t to, std::uint8_t value)
{
    for (std::size_t i = from; i < to; ++i)
        if (m.data()[i] != value)
            return false;
    return true;
}

void fill(Memory& m, std::uint8_t seed)
{
    for (std::size_t i = 0; i < m.size(); ++i)
        m.data()[i] = static_cast<std::uint8_t>(seed + i * 7);
}

bool filled(const Memory& m, std::size_t size, std::uint8_t seed)
{
    for (std::size_t i = 0; i < size; ++i)
        if (m.data()[i] != static_cast<std::uint8_t>(seed + i * 7))
            return false;
    return true;
}
}  // namespace

TEST_CASE("Memory: the component and its constants", "[memory]")
{
    STATIC_REQUIRE(evmalloc::Component<Memory>);
    STATIC_REQUIRE(Memory::calculate_allocation(0) ==
                   evmalloc::Allocation{4096, alignof(std::max_align_t), true});
    STATIC_REQUIRE(Memory::calculate_allocation(131072).size == Memory::initial_capacity);
    STATIC_REQUIRE(Memory::default_limit == 64 * 1024 * 1024);
    STATIC_REQUIRE(Memory::initial_capacity == 4096);
    STATIC_REQUIRE(!std::is_copy_constructible_v<Memory> && !std::is_copy_assignable_v<Memory>);
    STATIC_REQUIRE(
        std::is_nothrow_move_constructible_v<Memory> && std::is_nothrow_move_assignable_v<Memory>);
}

TEST_CASE("Memory: expansion_cost is 3w + w*w/512", "[memory]")
{
    STATIC_REQUIRE(Memory::expansion_cost(0) == 0);
    STATIC_REQUIRE(Memory::expansion_cost(1) == 3);
    STATIC_REQUIRE(Memory::expansion_cost(32) == 98);      // 96 + 1024/512
    STATIC_REQUIRE(Memory::expansion_cost(100) == 319);    // 300 + 10000/512 (19.5 -> 19)
    STATIC_REQUIRE(Memory::expansion_cost(512) == 2048);   // 1536 + 512
    STATIC_REQUIRE(Memory::expansion_cost(1024) == 5120);  // 3072 + 2048
    STATIC_REQUIRE(Memory::expansion_cost(724) == 3195);   // 2172 + 524176/512 (1023.8 -> 1023)
    STATIC_REQUIRE(Memory::expansion_cost(std::uint64_t{1} << 32) == u64_max);
}

TEST_CASE("Memory: the constructor allocates nothing", "[memory]")
{
    RecordingResource res;
    const Memory m{&res, 1000};
    CHECK(res.attempts == 0);
    CHECK(m.size() == 0);
    CHECK(m.capacity() == 0);
    CHECK(m.data() != nullptr);  // the empty sentinel, never null
    CHECK(m.limit() == 1000);
    CHECK(m.upstream() == &res);
    const Memory d;
    CHECK(d.limit() == Memory::default_limit);
    CHECK(d.upstream() == std::pmr::get_default_resource());
}

TEST_CASE("Memory: gas of known expansions", "[memory]")
{
    RecordingResource res;
    Memory m{&res};
    CHECK(m.expand(0, 32).value() == 3);
    CHECK(m.size() == 32);
    CHECK(m.expand(0, 32).value() == 0);  // already addressable
    CHECK(m.expand(31, 1).value() == 0);  // still inside the first word
    CHECK(m.expand(32, 1).value() == 3);  // 2 words: 6 - 3
    CHECK(m.size() == 64);
    CHECK(m.expand(0, 100 * 32).value() == 319 - 6);
    CHECK(m.expand(0, 1024 * 32).value() == 5120 - 319);

    // 1024 words in one go from empty: 5120; the total over steps is the same.
    Memory one{&res};
    CHECK(one.expand(0, 32768).value() == 5120);
    Memory steps{&res};
    std::uint64_t total = 0;
    for (std::uint64_t off = 0; off < 32768; off += 32)
        total += steps.expand(off, 32).value();
    CHECK(total == 5120);
    CHECK(steps.size() == 32768);

    // Sizes round up to 32: [5, 15) needs one word.
    Memory r{&res};
    CHECK(r.expand(5, 10).value() == 3);
    CHECK(r.size() == 32);
    CHECK(r.expand(33, 31).value() == 3);  // end 64: two words
    CHECK(r.size() == 64);
    CHECK(r.expand(64, 1).value() == Memory::expansion_cost(3) - Memory::expansion_cost(2));
    CHECK(r.size() == 96);
}

TEST_CASE("Memory: growth policy: 4 KiB first, then doubling, then 4 KiB pages", "[memory]")
{
    RecordingResource res;
    Memory m{&res};
    REQUIRE(m.expand(0, 32).has_value());
    CHECK(m.capacity() == 4096);
    REQUIRE(m.expand(0, 4096).has_value());  // fits: no new allocation
    CHECK(m.capacity() == 4096);
    REQUIRE(m.expand(0, 4097).has_value());  // 4128 > 4096: doubles
    CHECK(m.capacity() == 8192);
    REQUIRE(m.expand(8000, 193).has_value());  // 8193 -> 8224: doubles
    CHECK(m.capacity() == 16384);
    REQUIRE(m.expand(0, 100000).has_value());  // doubling (32768) is short: 100000 -> pages
    CHECK(m.capacity() == 102400);
    REQUIRE(m.expand(0, 102401).has_value());  // doubles
    CHECK(m.capacity() == 204800);
    CHECK(res.sizes == std::vector<std::size_t>{4096, 8192, 16384, 102400, 204800});
    CHECK(res.live() == 1);  // every old buffer went back
    CHECK(res.deallocations == 4);
    CHECK(res.mismatched == 0);

    // A large first expansion: max(2 * 0, 4096) is short, so the need rounds to pages.
    Memory big{&res};
    REQUIRE(big.expand(0, 10000).has_value());  // 10016 bytes
    CHECK(big.capacity() == 12288);

    // Doubling never asks for more than the limit (rounded up to a page).
    Memory limited{&res, 10000};
    REQUIRE(limited.expand(0, 4097).has_value());
    CHECK(limited.capacity() == 8192);
    REQUIRE(limited.expand(0, 9000).has_value());  // would double to 16384
    CHECK(limited.capacity() == 12288);
}

TEST_CASE("Memory: only the new tail is zeroed", "[memory]")
{
    RecordingResource res;
    Memory m{&res};
    REQUIRE(m.expand(0, 64).has_value());
    CHECK(all_bytes(m, 0, 64, 0));
    CHECK(byte_at(m, 64) == fresh_pattern);  // the rest of the capacity was not touched
    CHECK(byte_at(m, 4095) == fresh_pattern);

    // Write everything addressable, grow within capacity: old bytes kept, only [64, 128) zeroed.
    std::memset(m.data(), 0x11, 64);
    REQUIRE(m.expand(100, 28).has_value());
    CHECK(m.size() == 128);
    CHECK(all_bytes(m, 0, 64, 0x11));
    CHECK(all_bytes(m, 64, 128, 0));
    CHECK(byte_at(m, 128) == fresh_pattern);

    // After clear() the old bytes stay (nothing zeroes the capacity) until expanded again.
    std::memset(m.data(), 0x22, 128);
    const auto* const before = m.data();
    m.clear();
    CHECK(m.size() == 0);
    CHECK(m.capacity() == 4096);
    CHECK(byte_at(m, 0) == 0x22);
    CHECK(byte_at(m, 127) == 0x22);
    REQUIRE(m.expand(0, 32).has_value());
    CHECK(m.data() == before);
    CHECK(all_bytes(m, 0, 32, 0));  // expanded again: zero
    CHECK(byte_at(m, 32) == 0x22);  // still stale, not addressable
    CHECK(res.sizes.size() == 1);   // all within the first buffer
}

TEST_CASE("Memory: contents are kept across growth", "[memory]")
{
    RecordingResource res;
    Memory m{&res};
    REQUIRE(m.expand(0, 4096).has_value());
    fill(m, 3);
    const auto* const first = m.data();
    for (std::uint64_t end = 8192; end <= 1024 * 1024; end *= 2)
    {
        REQUIRE(m.expand(end - 32, 32).has_value());
        CHECK(filled(m, 4096, 3));
        CHECK(all_bytes(m, 4096, m.size(), 0));
    }
    CHECK(m.data() != first);
    CHECK(m.size() == 1024 * 1024);
    CHECK(m.capacity() == 1024 * 1024);
    CHECK(res.live() == 1);
    CHECK(res.mismatched == 0);
}

TEST_CASE("Memory: clear() keeps the capacity and asks upstream for nothing", "[memory]")
{
    RecordingResource res;
    Memory m{&res};
    REQUIRE(m.expand(0, 20000).has_value());
    const auto capacity = m.capacity();
    const auto* const data = m.data();
    for (int round = 0; round < 10; ++round)
    {
        m.clear();
        CHECK(m.size() == 0);
        REQUIRE(m.expand(0, 20000).value() == Memory::expansion_cost(625));  // gas again from 0
        fill(m, static_cast<std::uint8_t>(round));
    }
    CHECK(m.capacity() == capacity);
    CHECK(m.data() == data);
    CHECK(res.attempts == 1);
}

TEST_CASE("Memory: length 0 expands nothing, whatever the offset", "[memory]")
{
    RecordingResource res;
    Memory m{&res, 1024};
    for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{1} << 40, u64_max - 1, u64_max})
    {
        const auto r = m.expand(offset, 0);
        REQUIRE(r.has_value());
        CHECK(*r == 0);
    }
    CHECK(m.size() == 0);
    CHECK(res.attempts == 0);
    REQUIRE(m.expand(0, 64).has_value());
    fill(m, 9);
    CHECK(m.expand(u64_max, 0).value() == 0);
    CHECK(m.size() == 64);
    CHECK(filled(m, 64, 9));
}

TEST_CASE(
    "Memory: offset + length overflowing is memory_limit_exceeded, nothing changed", "[memory]")
{
    RecordingResource res;
    Memory m{&res, u64_max};  // no limit: only the overflow stops it
    REQUIRE(m.expand(0, 96).has_value());
    fill(m, 5);
    const auto* const data = m.data();
    const std::pair<std::uint64_t, std::uint64_t> cases[] = {
        {u64_max, 1}, {1, u64_max}, {u64_max - 31, 64},
        {std::uint64_t{1} << 63, std::uint64_t{1} << 63}, {u64_max, u64_max},
        {u64_max - 10, 5},  // no wrap, but no 32-byte multiple fits
    };
    for (const auto& [offset, length] : cases)
    {
        const auto r = m.expand(offset, length);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == Errc::memory_limit_exceeded);
        CHECK(m.size() == 96);
        CHECK(m.data() == data);
        CHECK(filled(m, 96, 5));
    }
    CHECK(res.attempts == 1);
    CHECK(m.expand(96, 32).value() ==
          Memory::expansion_cost(4) - Memory::expansion_cost(3));  // usable
}

TEST_CASE("Memory: past limit() is memory_limit_exceeded, nothing changed", "[memory]")
{
    RecordingResource res;
    Memory m{&res, 1024};
    REQUIRE(m.expand(0, 512).has_value());
    fill(m, 1);
    for (const auto& [offset, length] : {std::pair<std::uint64_t, std::uint64_t>{0, 1025},
             {1024, 1}, {1000, 100}, {std::uint64_t{1} << 40, 32}})
    {
        const auto r = m.expand(offset, length);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == Errc::memory_limit_exceeded);
        CHECK(m.size() == 512);
        CHECK(m.capacity() == 4096);
        CHECK(filled(m, 512, 1));
    }
    REQUIRE(m.expand(0, 1024).has_value());  // exactly the limit is fine
    CHECK(m.size() == 1024);

    // A limit that is not a multiple of 32: the rounded size must fit it.
    Memory odd{&res, 1000};
    CHECK(odd.expand(0, 992).has_value());
    CHECK(odd.expand(0, 993).error() == Errc::memory_limit_exceeded);  // would be 1024
    CHECK(odd.size() == 992);

    // The default limit: refused before anything is allocated.
    Memory d{&res};
    CHECK(d.expand(0, Memory::default_limit + 1).error() == Errc::memory_limit_exceeded);
    CHECK(d.expand(Memory::default_limit, 1).error() == Errc::memory_limit_exceeded);
    CHECK(d.capacity() == 0);
    CHECK(res.sizes.size() == 2);  // m and odd only
}

TEST_CASE("Memory: an upstream that throws or returns nullptr is out_of_memory, nothing changed",
    "[memory]")
{
    RecordingResource res;
#if defined(__cpp_exceptions)
    res.fail_with_nullptr = GENERATE(false, true);
#else
    res.fail_with_nullptr = true;  // the only way to fail without exceptions
#endif
    CAPTURE(res.fail_with_nullptr);
    SECTION("on the first growth")
    {
        Memory m{res.upstream()};
        const auto* const empty = m.data();
        res.fail = true;
        const auto r = m.expand(0, 32);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == Errc::out_of_memory);
        CHECK(m.size() == 0);
        CHECK(m.capacity() == 0);
        CHECK(m.data() == empty);
        res.fail = false;
        CHECK(m.expand(0, 32).value() == 3);  // the gas is still owed: nothing grew before
    }
    SECTION("on a later growth")
    {
        Memory m{res.upstream()};
        REQUIRE(m.expand(0, 4096).has_value());
        fill(m, 77);
        const auto* const data = m.data();
        res.fail = true;
        const auto r = m.expand(4096, 1);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == Errc::out_of_memory);
        CHECK(m.size() == 4096);
        CHECK(m.capacity() == 4096);
        CHECK(m.data() == data);
        CHECK(filled(m, 4096, 77));
        CHECK(m.expand(0, 4096).value() == 0);  // within capacity: upstream not asked
        res.fail = false;
        CHECK(
            m.expand(4096, 1).value() == Memory::expansion_cost(129) - Memory::expansion_cost(128));
        CHECK(filled(m, 4096, 77));
        CHECK(m.capacity() == 8192);
    }
    CHECK(res.mismatched == 0);
}

TEST_CASE("Memory: release_storage gives the buffer back; the destructor too", "[memory]")
{
    RecordingResource res;
    {
        Memory m{&res};
        REQUIRE(m.expand(0, 5000).has_value());
        CHECK(res.live() == 1);
        m.release_storage();
        CHECK(res.live() == 0);
        CHECK(m.size() == 0);
        CHECK(m.capacity() == 0);
        CHECK(m.data() != nullptr);
        CHECK(m.data() == Memory{&res}.data());  // the shared empty sentinel
        m.release_storage();                     // twice is fine
        CHECK(res.deallocations == 1);
        CHECK(m.expand(0, 32).value() == 3);  // allocates again, initial capacity
        CHECK(m.capacity() == 4096);
        CHECK(res.live() == 1);
    }
    CHECK(res.live() == 0);
    CHECK(res.deallocations == 2);
    CHECK(res.mismatched == 0);
}

TEST_CASE("Memory: moves take the buffer; move-assignment returns the old one", "[memory]")
{
    RecordingResource res;
    RecordingResource other_res;
    Memory a{&res, 2048};
    REQUIRE(a.expand(0, 64).has_value());
    fill(a, 4);
    const auto* const data = a.data();

    Memory b{std::move(a)};
    CHECK(b.data() == data);
    CHECK(b.size() == 64);
    CHECK(b.capacity() == 4096);
    CHECK(b.limit() == 2048);
    CHECK(b.upstream() == &res);
    CHECK(filled(b, 64, 4));
    CHECK(a.data() != nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
    CHECK(a.data() != data);
    CHECK(a.size() == 0);
    CHECK(a.capacity() == 0);

    Memory c{&other_res};
    REQUIRE(c.expand(0, 32).has_value());
    CHECK(other_res.live() == 1);
    c = std::move(b);
    CHECK(other_res.live() == 0);  // c's old buffer went back to its own upstream
    CHECK(c.data() == data);
    CHECK(c.upstream() == &res);
    CHECK(c.limit() == 2048);
    CHECK(filled(c, 64, 4));
    CHECK(res.live() == 1);
    CHECK(res.mismatched == 0);
    CHECK(other_res.mismatched == 0);
}

namespace
{
constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t i64_min = std::numeric_limits<std::int64_t>::min();

// Everything an expansion could change, to compare before and after.
struct Snapshot
{
    std::size_t size;
    std::size_t capacity;
    const std::uint8_t* data;
    std::size_t attempts;
    std::size_t deallocations;

    bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(const Memory& m, const RecordingResource& res)
{
    return {m.size(), m.capacity(), m.data(), res.attempts, res.deallocations};
}
}  // namespace

TEST_CASE("Memory: expand with one gas short is out_of_gas, nothing allocated, zeroed or changed",
    "[memory]")
{
    RecordingResource res;
    Memory m{&res};
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::size_t start = 0;  // the size before the expansion under test
    SECTION("the first growth (would allocate)")
    {
        offset = 0;
        length = 32;
    }
    SECTION("one word within capacity (the leaf step)")
    {
        start = 64;
        offset = 64;
        length = 32;
    }
    SECTION("many words within capacity")
    {
        start = 64;
        offset = 1000;
        length = 2000;
    }
    SECTION("past capacity (would reallocate)")
    {
        start = 4096;
        offset = 4096;
        length = 5000;
    }
    SECTION("a large growth, 1 MiB from 4 KiB")
    {
        start = 4096;
        offset = 0;
        length = 1024 * 1024;
    }
    if (start != 0)
    {
        REQUIRE(m.expand(0, start).has_value());
        fill(m, 31);
    }
    const std::uint64_t gas = m.expansion_gas(offset, length).value();
    REQUIRE(gas > 0);
    const Snapshot before = snapshot(m, res);

    const auto r = m.expand(offset, length, static_cast<std::int64_t>(gas) - 1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == Errc::out_of_gas);
    CHECK(snapshot(m, res) == before);
    CHECK(filled(m, start, 31));
    if (m.capacity() > m.size())  // the bytes past size() were not zeroed either
        CHECK(byte_at(m, m.size()) == fresh_pattern);

    // With exactly enough gas: the gas and the state of the two-argument form.
    Memory twin{&res};
    if (start != 0)
        REQUIRE(twin.expand(0, start).has_value());
    const auto plain = twin.expand(offset, length);
    const auto budget = m.expand(offset, length, static_cast<std::int64_t>(gas));
    REQUIRE(plain.has_value());
    REQUIRE(budget.has_value());
    CHECK(*budget == gas);
    CHECK(*plain == gas);
    CHECK(m.size() == twin.size());
    CHECK(m.capacity() == twin.capacity());
    CHECK(filled(m, start, 31));
    CHECK(all_bytes(m, start, m.size(), 0));
    CHECK(res.mismatched == 0);
}

TEST_CASE("Memory: a negative gas_left affords no growth, but what needs none succeeds", "[memory]")
{
    RecordingResource res;
    Memory m{&res};
    for (const std::int64_t gas_left : {std::int64_t{-1}, i64_min})
    {
        const auto r = m.expand(0, 32, gas_left);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == Errc::out_of_gas);
        CHECK(m.size() == 0);
        CHECK(res.attempts == 0);
    }
    CHECK(m.expand(0, 32, 2).error() == Errc::out_of_gas);  // one word costs 3
    CHECK(m.expand(0, 32, 3).value() == 3);
    fill(m, 5);
    // Within size(): 0 gas, whatever gas_left.
    CHECK(m.expand(0, 32, -1).value() == 0);
    CHECK(m.expand(31, 1, i64_min).value() == 0);
    CHECK(m.expand(0, 0, i64_min).value() == 0);
    CHECK(m.size() == 32);
    CHECK(filled(m, 32, 5));
    CHECK(m.expand(0, 33, 0).error() == Errc::out_of_gas);
    CHECK(m.size() == 32);
    CHECK(res.attempts == 1);
}

TEST_CASE("Memory: memory_limit_exceeded is checked before the gas", "[memory]")
{
    RecordingResource res;
    Memory m{&res, 1024};
    REQUIRE(m.expand(0, 64).has_value());
    const Snapshot before = snapshot(m, res);
    for (const std::int64_t gas_left :
        {i64_min, std::int64_t{-1}, std::int64_t{0}, std::int64_t{10}, i64_max})
    {
        CHECK(m.expand(0, 1025, gas_left).error() == Errc::memory_limit_exceeded);
        CHECK(m.expand(u64_max, 2, gas_left).error() == Errc::memory_limit_exceeded);  // wraps
        CHECK(
            m.expand(std::uint64_t{1} << 40, 32, gas_left).error() == Errc::memory_limit_exceeded);
    }
    CHECK(m.expansion_gas(0, 1025).error() == Errc::memory_limit_exceeded);
    CHECK(m.expansion_gas(u64_max, 2).error() == Errc::memory_limit_exceeded);
    CHECK(snapshot(m, res) == before);
    CHECK(m.expand(0, 1024, 0).error() == Errc::out_of_gas);  // at the limit: the gas decides
    CHECK(m.expand(0, 1024, i64_max).value() ==
          Memory::expansion_cost(32) - Memory::expansion_cost(2));
}

TEST_CASE("Memory: length 0 costs 0 and succeeds whatever the offset and gas", "[memory]")
{
    RecordingResource res;
    Memory m{&res, 1024};
    for (const std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{1} << 40, u64_max})
    {
        for (const std::int64_t gas_left : {i64_min, std::int64_t{0}, i64_max})
            CHECK(m.expand(offset, 0, gas_left).value() == 0);
        CHECK(m.expansion_gas(offset, 0).value() == 0);
    }
    CHECK(m.size() == 0);
    CHECK(res.attempts == 0);
}

TEST_CASE("Memory: expansion_gas is what expand charges, without growing", "[memory]")
{
    RecordingResource res;
    Memory m{&res, 256 * 1024};      // priced with expansion_gas, then grown with exactly that
    Memory plain{&res, 256 * 1024};  // the same steps through the two-argument expand
    struct Step
    {
        std::uint64_t offset;
        std::uint64_t length;
    };
    const Step steps[] = {
        {0, 1}, {0, 32}, {31, 1}, {32, 1}, {64, 32},     // first growth, one-word steps
        {100, 1000}, {0, 4096}, {4095, 1}, {4096, 1},    // within, then past capacity
        {10000, 1}, {8191, 2}, {0, 70000}, {69999, 2},   // doubling and page rounding
        {262143, 1}, {262144, 1}, {u64_max, 1}, {5, 0},  // at and past the limit, empty
    };
    for (const Step& s : steps)
    {
        INFO("offset " << s.offset << " length " << s.length << " from size " << m.size());
        const Snapshot before = snapshot(m, res);
        const auto priced = m.expansion_gas(s.offset, s.length);
        CHECK(snapshot(m, res) == before);  // pricing changes nothing
        const auto charged = plain.expand(s.offset, s.length);
        REQUIRE(priced.has_value() == charged.has_value());
        if (!priced)
        {
            CHECK(priced.error() == charged.error());
            CHECK(m.expand(s.offset, s.length, i64_max).error() == charged.error());
            continue;
        }
        CHECK(*priced == *charged);
        if (*priced > 0)
            CHECK(m.expand(s.offset, s.length, static_cast<std::int64_t>(*priced) - 1).error() ==
                  Errc::out_of_gas);
        CHECK(m.expand(s.offset, s.length, static_cast<std::int64_t>(*priced)).value() == *priced);
        CHECK(m.size() == plain.size());
        CHECK(m.capacity() == plain.capacity());
        CHECK(m.expansion_gas(s.offset, s.length).value() == 0);  // now addressable
    }
    CHECK(m.size() == 256 * 1024);
    CHECK(res.mismatched == 0);
}

TEST_CASE("Memory: expand_charged is expand(offset, length, gas_left) with the gas left as one "
          "number; negative, nothing changed, where expand fails",
    "[memory]")
{
    RecordingResource res;
    Memory m{&res, 256 * 1024};     // through expand_charged
    Memory twin{&res, 256 * 1024};  // the same steps through expand(offset, length, gas_left)
    struct Step
    {
        std::uint64_t offset;
        std::uint64_t length;
        std::int64_t gas_left;
    };
    const Step steps[] = {
        {0, 32, 2}, {0, 32, 3}, {31, 1, i64_min},           // out of gas, then exactly enough
        {32, 1, 1000}, {64, 32, 1000}, {96, 32, 5},         // one-word steps within capacity
        {200, 1000, 1000}, {1199, 2, 1000}, {4000, 96, 3},  // many words; short of gas
        {4000, 96, 100000}, {8191, 2, 100000},              // past capacity: reallocates
        {0, 70000, 100000}, {262143, 1, i64_max},           // page rounding; to the limit
        {262144, 1, i64_max}, {u64_max, 2, i64_max},        // past the limit, wrapped
        {5, 0, i64_min}, {u64_max, 0, -1},                  // empty, whatever the offset
    };
    for (const Step& s : steps)
    {
        INFO("offset " << s.offset << " length " << s.length << " gas_left " << s.gas_left
                       << " from size " << m.size());
        const Snapshot before = snapshot(m, res);
        const auto expected = twin.expand(s.offset, s.length, s.gas_left);
        const std::int64_t left = m.expand_charged(s.offset, s.length, s.gas_left);
        if (expected)
        {
            CHECK(left == s.gas_left - static_cast<std::int64_t>(*expected));
            CHECK((left >= 0 || s.gas_left < 0));  // negative only if it came in negative
        }
        else
        {
            CHECK(left < 0);
            CHECK(snapshot(m, res) == before);
        }
        CHECK(m.size() == twin.size());
        CHECK(m.capacity() == twin.capacity());
        CHECK(all_bytes(m, 0, m.size(), 0));  // nothing else wrote: every byte is a zeroed one
    }
    CHECK(m.size() == 256 * 1024);
    CHECK(res.mismatched == 0);
}

TEST_CASE("Memory: data() is never null and aligned", "[memory]")
{
    RecordingResource res;
    const auto aligned = [](const void* p) {
        return reinterpret_cast<std::uintptr_t>(p) % Memory::alignment == 0;
    };
    Memory m{&res};
    CHECK(m.data() != nullptr);
    CHECK(aligned(m.data()));
    const Memory& cm = m;
    CHECK(cm.data() == m.data());
    m.clear();
    CHECK(m.data() != nullptr);
    REQUIRE(m.expand(0, 32).has_value());
    const auto* const storage = m.data();
    CHECK(aligned(storage));
    m.release_storage();
    CHECK(m.data() != nullptr);
    CHECK(m.data() != storage);
    CHECK(aligned(m.data()));
    m.release_storage();  // the sentinel is not given to upstream
    CHECK(res.deallocations == 1);
    CHECK(res.mismatched == 0);

    Memory from{&res};
    REQUIRE(from.expand(0, 64).has_value());
    Memory to{std::move(from)};
    CHECK(from.data() != nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
    CHECK(aligned(from.data()));
    Memory assigned{&res};
    assigned = std::move(to);
    CHECK(to.data() != nullptr);  // NOLINT(bugprone-use-after-move)
    CHECK(to.capacity() == 0);
    CHECK(res.live() == 1);  // only assigned's buffer
}

TEST_CASE("Memory: operator[] reads and writes the bytes", "[memory]")
{
    RecordingResource res;
    Memory m{&res};
    REQUIRE(m.expand(0, 64).has_value());
    CHECK(m[0] == 0);
    CHECK(m[63] == 0);
    m[0] = 0xAB;
    m[63] = 0x12;
    CHECK(m.data()[0] == 0xAB);
    CHECK(m.data()[63] == 0x12);
    m.data()[40] = 7;
    const Memory& cm = m;
    CHECK(cm[40] == 7);
    CHECK(&cm[63] == m.data() + 63);
    REQUIRE(m.expand(64, 1).has_value());
    CHECK(m[64] == 0);
    CHECK(m[0] == 0xAB);  // kept across growth
    // An index past size() is a broken contract: tests/death/contracts.cpp.
}
