// Stack: checked push/pop with overflow at the 1025th push and underflow on empty (nothing
// changed, still usable), the unchecked fast paths, DUPn/SWAPn semantics, storage untouched.
#include <evmalloc/stack.hpp>

#include "catch.hpp"

#include <array>
#include <cstdint>
#include <vector>

using evmalloc::Errc;
using evmalloc::Stack;
using evmalloc::Word;

namespace
{
const Word sentinel{{0xDEAD, 0xBEEF, 0xDEAD, 0xBEEF}};

// 1024 words of storage and one guard word after them.
struct Storage
{
    std::vector<Word> words = std::vector<Word>(Stack<>::capacity + 1, sentinel);
    std::span<Word> span() { return {words.data(), Stack<>::capacity}; }
    bool guard_intact() const { return words.back() == sentinel; }
};

Word w(std::uint64_t v)
{
    return Word::from(v);
}
}  // namespace

TEST_CASE("Stack: calculate_allocation is 1024 words, whatever the code size", "[stack]")
{
    STATIC_REQUIRE(evmalloc::Component<Stack<>>);
    STATIC_REQUIRE(Stack<>::capacity == 1024);
    STATIC_REQUIRE(Stack<>::calculate_allocation(0) == evmalloc::Allocation{32768, 32, false});
    STATIC_REQUIRE(Stack<>::calculate_allocation(131072) == evmalloc::Allocation{32768, 32, false});
    STATIC_REQUIRE(
        Stack<std::uint64_t>::calculate_allocation(7) == evmalloc::Allocation{8192, 8, false});
}

TEST_CASE("Stack: the library never writes storage it was not asked to", "[stack]")
{
    Storage s;
    Stack<> stack{s.span()};
    CHECK(stack.empty());
    CHECK(stack.size() == 0);
    CHECK(stack.data() == s.words.data());
    for (std::size_t i = 0; i < Stack<>::capacity; ++i)
        REQUIRE(s.words[i] == sentinel);  // not zeroed by the constructor
    REQUIRE(stack.push(w(7)).has_value());
    CHECK(s.words[0] == w(7));
    CHECK(s.words[1] == sentinel);
}

TEST_CASE("Stack: push and pop are LIFO", "[stack]")
{
    Storage s;
    Stack<> stack{s.span()};
    for (std::uint64_t v = 1; v <= 5; ++v)
        REQUIRE(stack.push(w(v)).has_value());
    CHECK(stack.size() == 5);
    CHECK(stack.top() == w(5));
    for (std::uint64_t v = 5; v >= 1; --v)
    {
        const auto r = stack.pop();
        REQUIRE(r.has_value());
        CHECK(*r == w(v));
    }
    CHECK(stack.empty());
}

TEST_CASE("Stack: the 1025th push is stack_overflow and changes nothing", "[stack]")
{
    Storage s;
    Stack<> stack{s.span()};
    for (std::uint64_t v = 0; v < 1024; ++v)
        REQUIRE(stack.push(w(v)).has_value());
    CHECK(stack.size() == 1024);

    const auto r = stack.push(w(9999));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == Errc::stack_overflow);
    CHECK(stack.size() == 1024);
    CHECK(stack.top() == w(1023));
    CHECK(s.guard_intact());
    bool contents = true;
    for (std::uint64_t v = 0; v < 1024; ++v)
        contents = contents && s.words[v] == w(v);
    CHECK(contents);

    // Still usable: pop one, push one, overflow again.
    REQUIRE(stack.pop().has_value());
    REQUIRE(stack.push(w(42)).has_value());
    CHECK(stack.top() == w(42));
    CHECK(stack.push(w(43)).error() == Errc::stack_overflow);
    CHECK(s.guard_intact());
}

TEST_CASE("Stack: pop on empty is stack_underflow and changes nothing", "[stack]")
{
    Storage s;
    Stack<> stack{s.span()};
    const auto r = stack.pop();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == Errc::stack_underflow);
    CHECK(stack.size() == 0);
    CHECK(s.words[0] == sentinel);

    REQUIRE(stack.push(w(1)).has_value());
    REQUIRE(stack.pop().has_value());
    CHECK(stack.pop().error() == Errc::stack_underflow);
    CHECK(stack.empty());
    REQUIRE(stack.push(w(2)).has_value());
    CHECK(stack.size() == 1);
}

TEST_CASE("Stack: unchecked push/pop, top, peek, clear", "[stack]")
{
    Storage s;
    Stack<> stack{s.span()};
    for (std::uint64_t v = 10; v < 20; ++v)
        stack.push_unchecked(w(v));
    CHECK(stack.size() == 10);
    CHECK(stack.top() == w(19));
    for (std::size_t n = 0; n < 10; ++n)
        CHECK(stack.peek(n) == w(19 - n));
    stack.top() = w(100);
    CHECK(stack.peek(0) == w(100));
    stack.peek(9) = w(200);
    CHECK(s.words[0] == w(200));
    CHECK(stack.pop_unchecked() == w(100));
    CHECK(stack.size() == 9);
    const Stack<>& view = stack;
    CHECK(view.top() == w(18));
    CHECK(view.peek(8) == w(200));
    stack.clear();
    CHECK(stack.empty());
    CHECK(stack.pop().error() == Errc::stack_underflow);
    // Fill to the limit with the fast path: the checked push then sees it full.
    for (std::uint64_t v = 0; v < 1024; ++v)
        stack.push_unchecked(w(v));
    CHECK(stack.push(w(0)).error() == Errc::stack_overflow);
    CHECK(s.guard_intact());
}

TEST_CASE("Stack: dup(n) pushes a copy of the n-th item (EVM DUP1..DUP16)", "[stack]")
{
    for (std::size_t n = 1; n <= 16; ++n)
    {
        Storage s;
        Stack<> stack{s.span()};
        for (std::uint64_t v = 1; v <= 16; ++v)  // bottom 1 ... top 16
            stack.push_unchecked(w(v));
        stack.dup(n);
        CHECK(stack.size() == 17);
        CHECK(stack.top() == w(17 - n));  // the n-th item from the top was 17 - n
        for (std::size_t i = 1; i <= 16; ++i)
            CHECK(stack.peek(i) == w(17 - i));  // the rest unchanged
    }
    // DUP1 on a single item, and up to the limit.
    Storage s;
    Stack<> stack{s.span()};
    stack.push_unchecked(w(5));
    while (stack.size() < Stack<>::capacity)
        stack.dup(1);
    CHECK(stack.size() == 1024);
    CHECK(stack.peek(1023) == w(5));
    CHECK(stack.top() == w(5));
    CHECK(s.guard_intact());
}

TEST_CASE("Stack: swap(n) exchanges the top with the item n below (EVM SWAP1..SWAP16)", "[stack]")
{
    for (std::size_t n = 1; n <= 16; ++n)
    {
        Storage s;
        Stack<> stack{s.span()};
        for (std::uint64_t v = 0; v <= 16; ++v)  // 17 items: bottom 0 ... top 16
            stack.push_unchecked(w(v));
        stack.swap(n);
        CHECK(stack.size() == 17);
        CHECK(stack.top() == w(16 - n));
        CHECK(stack.peek(n) == w(16));
        for (std::size_t i = 1; i <= 16; ++i)
            if (i != n)
                CHECK(stack.peek(i) == w(16 - i));
    }
}

// A violated precondition of a fast path (and storage shorter than 1024 words) aborts in debug
// builds: tests/death/contracts.cpp.
