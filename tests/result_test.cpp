#include "catch.hpp"

#include <evmalloc/result.hpp>

#include <memory>
#include <set>
#include <string>
#include <system_error>

using evmalloc::Errc;
using evmalloc::Result;

TEST_CASE("Errc is an error code enum with the evmalloc category", "[result]")
{
    STATIC_REQUIRE(std::is_error_code_enum_v<Errc>);
    const std::error_code ec = Errc::stack_overflow;  // implicit through make_error_code
    CHECK(std::string{ec.category().name()} == "evmalloc");
    CHECK(ec.value() == static_cast<int>(Errc::stack_overflow));
    CHECK(static_cast<int>(Errc::code_too_large) == 1);

    // Every value has its own, non-empty message.
    std::set<std::string> messages;
    for (int v = static_cast<int>(Errc::code_too_large); v <= static_cast<int>(Errc::out_of_gas);
         ++v)
    {
        const auto msg = evmalloc::make_error_code(static_cast<Errc>(v)).message();
        CHECK_FALSE(msg.empty());
        CHECK(msg.find("unknown") == std::string::npos);
        messages.insert(msg);
    }
    CHECK(messages.size() == 9);
    // The order is the contract (values are stable): the last two follow stack_underflow.
    STATIC_REQUIRE(
        static_cast<int>(Errc::code_hash_mismatch) == static_cast<int>(Errc::stack_underflow) + 1);
    STATIC_REQUIRE(
        static_cast<int>(Errc::out_of_gas) == static_cast<int>(Errc::stack_underflow) + 2);
    CHECK(evmalloc::make_error_code(Errc::out_of_gas).message() ==
          "not enough gas for the memory expansion");
    CHECK(evmalloc::error_category().message(99).find("unknown") != std::string::npos);
}

TEST_CASE("Result<T> holds a value or an error", "[result]")
{
    Result<int> ok = 42;
    REQUIRE(ok.has_value());
    REQUIRE(static_cast<bool>(ok));
    CHECK(*ok == 42);
    CHECK(ok.value() == 42);
    CHECK(ok.value_or(7) == 42);

    Result<int> bad = Errc::memory_limit_exceeded;
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error() == Errc::memory_limit_exceeded);
    CHECK(bad.value_or(7) == 7);
}

#if defined(__cpp_exceptions)
// Without exceptions value() on an error aborts instead: tests/death/no_exceptions.cpp.
TEST_CASE("Result<T>::value() on an error throws std::system_error with the code", "[result]")
{
    Result<int> bad = Errc::memory_limit_exceeded;
    try
    {
        (void)bad.value();
        FAIL("value() on an error must throw");
    }
    catch (const std::system_error& e)
    {
        CHECK(e.code() == Errc::memory_limit_exceeded);
    }
    const Result<void> bad_void = Errc::stack_underflow;
    CHECK_THROWS_AS(bad_void.value(), std::system_error);
}
#endif

TEST_CASE("Result<T> is usable in constant expressions for trivial T", "[result]")
{
    constexpr Result<long> r = 5L;
    STATIC_REQUIRE(r.has_value());
    STATIC_REQUIRE(*r == 5);
    constexpr Result<long> e = Errc::code_too_large;
    STATIC_REQUIRE(e.error() == Errc::code_too_large);
}

TEST_CASE("Result<T> with a non-trivial, move-only T manages its lifetime", "[result]")
{
    auto counter = std::make_shared<int>(0);
    {
        Result<std::unique_ptr<std::shared_ptr<int>>> r =
            std::make_unique<std::shared_ptr<int>>(counter);
        CHECK(counter.use_count() == 2);
        auto moved = std::move(r);
        REQUIRE(moved.has_value());
        CHECK(**moved == counter);
        CHECK(moved->get() != nullptr);
        moved = Errc::out_of_memory;  // destroys the held value
        CHECK(counter.use_count() == 1);
        CHECK(moved.error() == Errc::out_of_memory);
        moved = std::make_unique<std::shared_ptr<int>>(counter);
        CHECK(counter.use_count() == 2);
    }
    CHECK(counter.use_count() == 1);

    Result<std::string> s = std::string(100, 'x');
    Result<std::string> copy = s;
    CHECK(*copy == *s);
    copy = Result<std::string>{Errc::stack_underflow};
    CHECK(copy.error() == Errc::stack_underflow);
    copy = s;
    CHECK(copy->size() == 100);
}

TEST_CASE("Result<void> is success by default or an error", "[result]")
{
    Result<void> ok;
    CHECK(ok.has_value());
    ok.value();  // success: returns
    Result<void> bad = Errc::stack_underflow;
    CHECK_FALSE(bad);
    CHECK(bad.error() == Errc::stack_underflow);
}
