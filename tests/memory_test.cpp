// Memory: gas of known expansions, the growth policy (capacities after a sequence), only the
// new tail zeroed, contents kept across growth, clear(), length 0 at any offset, overflow and
// limit errors, an upstream that throws or returns nullptr, release_storage(), moves. A recording upstream fills
// every new block with a pattern (so zeroing is visible) and checks each deallocation.
#include <evmalloc/memory.hpp>
#include <evmalloc/sanitizer.hpp>

#include "catch.hpp"

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

class RecordingResource final : public std::pmr::memory_resource
{
public:
    bool fail = false;                      ///< the next allocations fail
    bool fail_with_nullptr = false;         ///< fail by returning nullptr, not std::bad_alloc
    std::vector<std::size_t> sizes;         ///< every successful allocation, in order
    std::size_t deallocations = 0;
    std::size_t mismatched = 0;             ///< deallocations not matching an allocation
    std::size_t attempts = 0;

    std::size_t live() const noexcept { return blocks_.size(); }

    ~RecordingResource() override { CHECK(blocks_.empty()); }

private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        ++attempts;
        if (fail)
        {
#if defined(__cpp_exceptions)
            if (!fail_with_nullptr)
                throw std::bad_alloc();
#endif
            return nullptr;
        }
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
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }

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

TEST_CASE("Memory: the component and its constants")
{
    STATIC_REQUIRE(evmalloc::Component<Memory>);
    STATIC_REQUIRE(Memory::calculate_allocation(0) == evmalloc::Allocation{4096, alignof(std::max_align_t), true});
    STATIC_REQUIRE(Memory::calculate_allocation(131072).size == Memory::initial_capacity);
    STATIC_REQUIRE(Memory::default_limit == 64 * 1024 * 1024);
    STATIC_REQUIRE(Memory::initial_capacity == 4096);
    STATIC_REQUIRE(!std::is_copy_constructible_v<Memory> && !std::is_copy_assignable_v<Memory>);
    STATIC_REQUIRE(std::is_nothrow_move_constructible_v<Memory> && std::is_nothrow_move_assignable_v<Memory>);
}

TEST_CASE("Memory: expansion_cost is 3w + w*w/512")
{
    STATIC_REQUIRE(Memory::expansion_cost(0) == 0);
    STATIC_REQUIRE(Memory::expansion_cost(1) == 3);
    STATIC_REQUIRE(Memory::expansion_cost(32) == 98);       // 96 + 1024/512
    STATIC_REQUIRE(Memory::expansion_cost(100) == 319);     // 300 + 10000/512 (19.5 -> 19)
    STATIC_REQUIRE(Memory::expansion_cost(512) == 2048);    // 1536 + 512
    STATIC_REQUIRE(Memory::expansion_cost(1024) == 5120);   // 3072 + 2048
    STATIC_REQUIRE(Memory::expansion_cost(724) == 3195);    // 2172 + 524176/512 (1023.8 -> 1023)
    STATIC_REQUIRE(Memory::expansion_cost(std::uint64_t{1} << 32) == u64_max);
}

TEST_CASE("Memory: the constructor allocates nothing")
{
    RecordingResource res;
    const Memory m{&res, 1000};
    CHECK(res.attempts == 0);
    CHECK(m.size() == 0);
    CHECK(m.capacity() == 0);
    CHECK(m.data() == nullptr);
    CHECK(m.limit() == 1000);
    CHECK(m.upstream() == &res);
    const Memory d;
    CHECK(d.limit() == Memory::default_limit);
    CHECK(d.upstream() == std::pmr::get_default_resource());
}

TEST_CASE("Memory: gas of known expansions")
{
    RecordingResource res;
    Memory m{&res};
    CHECK(m.expand(0, 32).value() == 3);
    CHECK(m.size() == 32);
    CHECK(m.expand(0, 32).value() == 0);   // already addressable
    CHECK(m.expand(31, 1).value() == 0);   // still inside the first word
    CHECK(m.expand(32, 1).value() == 3);   // 2 words: 6 - 3
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

TEST_CASE("Memory: growth policy: 4 KiB first, then doubling, then 4 KiB pages")
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

TEST_CASE("Memory: only the new tail is zeroed")
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
    CHECK(all_bytes(m, 0, 32, 0));        // expanded again: zero
    CHECK(byte_at(m, 32) == 0x22);         // still stale, not addressable
    CHECK(res.sizes.size() == 1);          // all within the first buffer
}

TEST_CASE("Memory: contents are kept across growth")
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

TEST_CASE("Memory: clear() keeps the capacity and asks upstream for nothing")
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

TEST_CASE("Memory: length 0 expands nothing, whatever the offset")
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

TEST_CASE("Memory: offset + length overflowing is memory_limit_exceeded, nothing changed")
{
    RecordingResource res;
    Memory m{&res, u64_max};  // no limit: only the overflow stops it
    REQUIRE(m.expand(0, 96).has_value());
    fill(m, 5);
    const auto* const data = m.data();
    const std::pair<std::uint64_t, std::uint64_t> cases[] = {
        {u64_max, 1}, {1, u64_max}, {u64_max - 31, 64}, {std::uint64_t{1} << 63, std::uint64_t{1} << 63},
        {u64_max, u64_max}, {u64_max - 10, 5},  // no wrap, but no 32-byte multiple fits
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
    CHECK(m.expand(96, 32).value() == Memory::expansion_cost(4) - Memory::expansion_cost(3));  // usable
}

TEST_CASE("Memory: past limit() is memory_limit_exceeded, nothing changed")
{
    RecordingResource res;
    Memory m{&res, 1024};
    REQUIRE(m.expand(0, 512).has_value());
    fill(m, 1);
    for (const auto& [offset, length] : {std::pair<std::uint64_t, std::uint64_t>{0, 1025},
                                         {1024, 1},
                                         {1000, 100},
                                         {std::uint64_t{1} << 40, 32}})
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

TEST_CASE("Memory: an upstream that throws or returns nullptr is out_of_memory, nothing changed")
{
    RecordingResource res;
    res.fail_with_nullptr = GENERATE(false, true);
    CAPTURE(res.fail_with_nullptr);
    SECTION("on the first growth")
    {
        Memory m{&res};
        res.fail = true;
        const auto r = m.expand(0, 32);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == Errc::out_of_memory);
        CHECK(m.size() == 0);
        CHECK(m.capacity() == 0);
        CHECK(m.data() == nullptr);
        res.fail = false;
        CHECK(m.expand(0, 32).value() == 3);  // the gas is still owed: nothing grew before
    }
    SECTION("on a later growth")
    {
        Memory m{&res};
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
        CHECK(m.expand(4096, 1).value() == Memory::expansion_cost(129) - Memory::expansion_cost(128));
        CHECK(filled(m, 4096, 77));
        CHECK(m.capacity() == 8192);
    }
    CHECK(res.mismatched == 0);
}

TEST_CASE("Memory: release_storage gives the buffer back; the destructor too")
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
        CHECK(m.data() == nullptr);
        m.release_storage();  // twice is fine
        CHECK(res.deallocations == 1);
        CHECK(m.expand(0, 32).value() == 3);  // allocates again, initial capacity
        CHECK(m.capacity() == 4096);
        CHECK(res.live() == 1);
    }
    CHECK(res.live() == 0);
    CHECK(res.deallocations == 2);
    CHECK(res.mismatched == 0);
}

TEST_CASE("Memory: moves take the buffer; move-assignment returns the old one")
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
    CHECK(a.data() == nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
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
