// evmalloc: error codes and Result<T>.
//
// Every failure an input can cause (code size, call depth, memory offsets, an upstream
// resource that throws) comes back as an Errc inside a Result, in every build type.
// Result<T> is shaped like std::expected<T, Errc>: has_value(), explicit operator bool,
// value() (throws std::system_error on error), error(), operator* and operator->. Where
// exceptions are off, value() on an error reports through the assertion handler and aborts,
// in every build type.
// A Result is built from a T (success) or from an Errc (failure): `return Errc::stack_overflow;`.
#pragma once

#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "config.hpp"

namespace evmalloc
{
enum class Errc
{
    code_too_large = 1,     ///< code is larger than max_code_size, or than the frame's tier
    buffer_too_small,       ///< a caller-provided buffer is shorter than calculate_allocation says
    memory_limit_exceeded,  ///< EVM memory offset + length overflows or passes Memory::limit()
    out_of_memory,          ///< the upstream resource failed (threw std::bad_alloc)
    call_depth_exceeded,    ///< more frames alive than FramePoolConfig::max_frames
    stack_overflow,         ///< push onto a full Stack (1024 words)
    stack_underflow,        ///< pop from an empty Stack
    code_hash_mismatch,     ///< the cached analysis for this code hash has other code
    out_of_gas,             ///< the gas left does not pay for a Memory expansion
};

namespace detail
{
class ErrorCategory final : public std::error_category
{
public:
    const char* name() const noexcept override { return "evmalloc"; }

    std::string message(int value) const override
    {
        switch (static_cast<Errc>(value))
        {
        case Errc::code_too_large:
            return "code too large for the frame (or above the maximum code size)";
        case Errc::buffer_too_small:
            return "buffer smaller than the component's calculated allocation";
        case Errc::memory_limit_exceeded:
            return "memory expansion overflows or exceeds the memory limit";
        case Errc::out_of_memory:
            return "upstream memory resource failed to allocate";
        case Errc::call_depth_exceeded:
            return "call depth exceeded: too many frames alive";
        case Errc::stack_overflow:
            return "EVM stack overflow";
        case Errc::stack_underflow:
            return "EVM stack underflow";
        case Errc::code_hash_mismatch:
            return "the cached analysis for this code hash has other code";
        case Errc::out_of_gas:
            return "not enough gas for the memory expansion";
        }
        return "unknown evmalloc error";
    }
};
}  // namespace detail

/// The category of every evmalloc error code; its name() is "evmalloc".
inline const std::error_category& error_category() noexcept
{
    static const detail::ErrorCategory category;
    return category;
}

inline std::error_code make_error_code(Errc e) noexcept
{
    return {static_cast<int>(e), error_category()};
}
}  // namespace evmalloc

template <>
struct std::is_error_code_enum<evmalloc::Errc> : std::true_type
{
};

namespace evmalloc
{
namespace detail
{
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_result_error(Errc e)
{
#if defined(__cpp_exceptions)
    throw std::system_error(make_error_code(e));
#else
    const std::string what =
        "Result::value() on an error: " + error_category().message(static_cast<int>(e));
    fatal_error(what.c_str(), __FILE__, __LINE__);
#endif
}

// Storage for Result<T>: trivially destructible (and so usable in constant expressions)
// whenever T is.
template <class T, bool = std::is_trivially_destructible_v<T>>
struct ResultStorage
{
    union
    {
        Errc error_;
        T value_;
    };
    bool has_value_;

    constexpr explicit ResultStorage(Errc e) noexcept : error_{e}, has_value_{false} {}
    template <class... A>
    constexpr explicit ResultStorage(std::in_place_t, A&&... a) noexcept(
        std::is_nothrow_constructible_v<T, A...>)
      : value_(std::forward<A>(a)...), has_value_{true}
    {}
};

template <class T>
struct ResultStorage<T, false>
{
    union
    {
        Errc error_;
        T value_;
    };
    bool has_value_;

    constexpr explicit ResultStorage(Errc e) noexcept : error_{e}, has_value_{false} {}
    template <class... A>
    constexpr explicit ResultStorage(std::in_place_t, A&&... a) noexcept(
        std::is_nothrow_constructible_v<T, A...>)
      : value_(std::forward<A>(a)...), has_value_{true}
    {}
    ResultStorage(const ResultStorage& o) noexcept(std::is_nothrow_copy_constructible_v<T>)
      : has_value_{o.has_value_}
    {
        if (has_value_)
            std::construct_at(&value_, o.value_);
        else
            error_ = o.error_;
    }
    ResultStorage(ResultStorage&& o) noexcept(std::is_nothrow_move_constructible_v<T>)
      : has_value_{o.has_value_}
    {
        if (has_value_)
            std::construct_at(&value_, std::move(o.value_));
        else
            error_ = o.error_;
    }
    ResultStorage& operator=(const ResultStorage& o) noexcept(
        std::is_nothrow_copy_constructible_v<T>&& std::is_nothrow_copy_assignable_v<T>)
    {
        assign(o);
        return *this;
    }
    ResultStorage& operator=(ResultStorage&& o) noexcept(
        std::is_nothrow_move_constructible_v<T>&& std::is_nothrow_move_assignable_v<T>)
    {
        assign(std::move(o));
        return *this;
    }
    ~ResultStorage()
    {
        if (has_value_)
            value_.~T();
    }

private:
    template <class S>
    void assign(S&& o)
    {
        if (has_value_ && o.has_value_)
            value_ = std::forward<S>(o).value_;
        else if (o.has_value_)
        {
            std::construct_at(&value_, std::forward<S>(o).value_);
            has_value_ = true;
        }
        else
        {
            if (has_value_)
                value_.~T();
            error_ = o.error_;
            has_value_ = false;
        }
    }
};
}  // namespace detail

/// A T or an Errc. \requires T is not Errc and not a reference.
template <class T>
class Result : private detail::ResultStorage<T>
{
    using Base = detail::ResultStorage<T>;
    static_assert(!std::is_reference_v<T> && !std::is_same_v<std::remove_cv_t<T>, Errc>);

public:
    using value_type = T;
    using error_type = Errc;

    /// Failure.
    constexpr Result(Errc e) noexcept : Base{e} {}  // NOLINT(google-explicit-constructor)

    /// Success, from anything T is constructible from.
    template <class U = T>
        requires(std::is_constructible_v<T, U&&> &&
                 !std::is_same_v<std::remove_cvref_t<U>, Result> &&
                 !std::is_same_v<std::remove_cvref_t<U>, Errc>)
    constexpr Result(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>)  // NOLINT
      : Base{std::in_place, std::forward<U>(v)}
    {}

    template <class... A>
    constexpr explicit Result(std::in_place_t, A&&... a) noexcept(
        std::is_nothrow_constructible_v<T, A...>)
      : Base{std::in_place, std::forward<A>(a)...}
    {}

    [[nodiscard]] constexpr bool has_value() const noexcept { return this->has_value_; }
    constexpr explicit operator bool() const noexcept { return this->has_value_; }

    /// \requires !has_value()
    [[nodiscard]] constexpr Errc error() const noexcept
    {
        EVMALLOC_ASSERT(!this->has_value_);
        return this->error_;
    }

    /// \throws std::system_error with this error's code when !has_value() (without exceptions:
    /// reports through the assertion handler and aborts).
    constexpr T& value() &
    {
        if (!this->has_value_)
            detail::throw_result_error(this->error_);
        return this->value_;
    }
    constexpr const T& value() const&
    {
        if (!this->has_value_)
            detail::throw_result_error(this->error_);
        return this->value_;
    }
    constexpr T&& value() &&
    {
        if (!this->has_value_)
            detail::throw_result_error(this->error_);
        return std::move(this->value_);
    }

    template <class U>
    constexpr T value_or(U&& fallback) const&
    {
        return this->has_value_ ? this->value_ : static_cast<T>(std::forward<U>(fallback));
    }

    /// \requires has_value()
    constexpr T& operator*() & noexcept { return checked(); }
    constexpr const T& operator*() const& noexcept { return const_cast<Result*>(this)->checked(); }
    constexpr T&& operator*() && noexcept { return std::move(checked()); }
    constexpr T* operator->() noexcept { return &checked(); }
    constexpr const T* operator->() const noexcept { return &const_cast<Result*>(this)->checked(); }

private:
    constexpr T& checked() noexcept
    {
        EVMALLOC_ASSERT(this->has_value_);
        return this->value_;
    }
};

/// Success or an Errc; default-constructed is success.
template <>
class Result<void>
{
public:
    using value_type = void;
    using error_type = Errc;

    constexpr Result() noexcept = default;
    constexpr Result(Errc e) noexcept : error_{e}, has_value_{false} {}  // NOLINT

    [[nodiscard]] constexpr bool has_value() const noexcept { return has_value_; }
    constexpr explicit operator bool() const noexcept { return has_value_; }

    /// \requires !has_value()
    [[nodiscard]] constexpr Errc error() const noexcept
    {
        EVMALLOC_ASSERT(!has_value_);
        return error_;
    }

    /// \throws std::system_error with this error's code when !has_value() (without exceptions:
    /// reports through the assertion handler and aborts).
    constexpr void value() const
    {
        if (!has_value_)
            detail::throw_result_error(error_);
    }

    constexpr void operator*() const noexcept { EVMALLOC_ASSERT(has_value_); }

private:
    Errc error_{};
    bool has_value_ = true;
};
}  // namespace evmalloc
