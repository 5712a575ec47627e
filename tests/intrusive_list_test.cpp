// detail::IntrusiveFreeList (LIFO order, trim to keep, a link placed away from the block's
// start) and detail::find_chunk / in_range (the owns() walks).
#include <evmalloc/intrusive_list.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "catch.hpp"

using evmalloc::detail::find_chunk;
using evmalloc::detail::in_range;
using evmalloc::detail::IntrusiveFreeList;

namespace
{
struct alignas(16) Block
{
    std::array<std::byte, 64> bytes;
};

/// A link 24 bytes into the block, as a pool whose link is not at the start keeps it.
struct LinkAt24
{
    static void* link(void* block) noexcept { return static_cast<std::byte*>(block) + 24; }
};

template <class List>
std::vector<void*> drain(List& list)
{
    std::vector<void*> out;
    while (void* p = list.pop())
        out.push_back(p);
    return out;
}
}  // namespace

TEST_CASE("IntrusiveFreeList: pop returns blocks in reverse order of push", "[intrusive_list]")
{
    std::array<Block, 4> blocks{};
    IntrusiveFreeList<> list;
    CHECK(list.empty());
    CHECK(list.pop() == nullptr);
    for (Block& b : blocks)
        list.push(&b);
    CHECK_FALSE(list.empty());
    CHECK(list.head() == &blocks[3]);
    CHECK(drain(list) == std::vector<void*>{&blocks[3], &blocks[2], &blocks[1], &blocks[0]});
    CHECK(list.empty());
    CHECK(list.pop() == nullptr);

    // Interleaved: the block pushed last is always the next one out.
    list.push(&blocks[0]);
    list.push(&blocks[1]);
    CHECK(list.pop() == &blocks[1]);
    list.push(&blocks[2]);
    CHECK(list.pop() == &blocks[2]);
    CHECK(list.pop() == &blocks[0]);
    CHECK(list.pop() == nullptr);
}

TEST_CASE("IntrusiveFreeList: the link lives where LinkOf says, nowhere else", "[intrusive_list]")
{
    std::array<Block, 2> blocks{};
    for (Block& b : blocks)
        b.bytes.fill(std::byte{0xAB});
    IntrusiveFreeList<LinkAt24> list;
    list.push(&blocks[0]);
    list.push(&blocks[1]);
    for (const Block& b : blocks)
    {
        for (std::size_t i = 0; i < b.bytes.size(); ++i)
        {
            if (i < 24 || i >= 24 + sizeof(void*))
                CHECK(b.bytes[i] == std::byte{0xAB});
        }
    }
    const std::byte* const link_place = blocks[1].bytes.data() + 24;
#if EVMALLOC_HAS_ASAN
    // While listed, the link bytes are poisoned, and only they.
    CHECK(__asan_address_is_poisoned(link_place));
    CHECK(__asan_address_is_poisoned(link_place + sizeof(void*) - 1));
    CHECK_FALSE(__asan_address_is_poisoned(link_place - 1));
    CHECK_FALSE(__asan_address_is_poisoned(link_place + sizeof(void*)));
#else
    void* link = nullptr;
    std::memcpy(&link, link_place, sizeof(void*));
    CHECK(link == &blocks[0]);
#endif
    CHECK(drain(list) == std::vector<void*>{&blocks[1], &blocks[0]});
}

TEST_CASE("IntrusiveFreeList: trim keeps the blocks pushed last and disposes of the rest",
    "[intrusive_list]")
{
    std::array<Block, 5> blocks{};
    for (std::size_t keep = 0; keep <= 7; ++keep)
    {
        IntrusiveFreeList<LinkAt24> list;
        for (Block& b : blocks)
            list.push(&b);
        std::vector<void*> disposed;
        const std::size_t n = list.trim(keep, [&](void* p) noexcept { disposed.push_back(p); });

        const std::size_t kept = keep < blocks.size() ? keep : blocks.size();
        CHECK(n == blocks.size() - kept);
        REQUIRE(disposed.size() == n);
        // Disposed top to bottom: blocks[4 - kept], ..., blocks[0].
        for (std::size_t i = 0; i < n; ++i)
            CHECK(disposed[i] == &blocks[blocks.size() - 1 - kept - i]);
        // What stays is the top `kept` blocks, in LIFO order, and the list ends after them.
        std::vector<void*> expected;
        for (std::size_t i = 0; i < kept; ++i)
            expected.push_back(&blocks[blocks.size() - 1 - i]);
        CHECK(drain(list) == expected);
    }

    IntrusiveFreeList<> empty;
    CHECK(empty.trim(0, [](void*) noexcept { FAIL("nothing to dispose of"); }) == 0);
    CHECK(empty.trim(3, [](void*) noexcept { FAIL("nothing to dispose of"); }) == 0);
    CHECK(empty.empty());
}

TEST_CASE("find_chunk: the chunk whose range holds an address", "[intrusive_list]")
{
    struct Chunk
    {
        Chunk* next;
        std::array<std::byte, 32> bytes;
    };
    std::array<Chunk, 3> chunks{};
    chunks[0].next = nullptr;
    chunks[1].next = &chunks[0];
    chunks[2].next = &chunks[1];
    const auto next = [](Chunk* c) noexcept { return c->next; };
    const auto range = [](Chunk* c) noexcept {
        const auto first = reinterpret_cast<std::uintptr_t>(c->bytes.data());
        return std::pair{first, first + c->bytes.size()};
    };
    for (Chunk& c : chunks)
    {
        CHECK(find_chunk(&chunks[2], c.bytes.data(), next, range) == &c);
        CHECK(find_chunk(&chunks[2], c.bytes.data() + 31, next, range) == &c);
        CHECK(find_chunk(&chunks[2], &c.next, next, range) == nullptr);  // outside every range
    }
    // Only the chunks reachable from the head count.
    CHECK(find_chunk(&chunks[1], chunks[2].bytes.data(), next, range) == nullptr);
    CHECK(find_chunk(static_cast<Chunk*>(nullptr), chunks[0].bytes.data(), next, range) == nullptr);

    CHECK(in_range(10, 10, 11));
    CHECK_FALSE(in_range(11, 10, 11));
    CHECK_FALSE(in_range(9, 10, 11));
    CHECK_FALSE(in_range(10, 10, 10));
}
