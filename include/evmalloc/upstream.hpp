// evmalloc: allocating from an upstream std::pmr::memory_resource, with or without exceptions.
//
// Where exceptions are enabled (__cpp_exceptions), an upstream reports failure by throwing and
// the library's std::pmr faces throw std::bad_alloc. Under -fno-exceptions nothing throws: an
// upstream (a custom resource) reports failure by returning nullptr, and a face that has no
// other way to fail reports through the assertion handler and aborts. These helpers are the
// only places in the library that catch or throw.
#pragma once

#include <cstddef>
#include <memory_resource>
#include <new>
#include <utility>

#include "config.hpp"

namespace evmalloc::detail
{
/// upstream->allocate(bytes, alignment) as the caller sees it, null included. libstdc++ declares
/// memory_resource::allocate() returns_nonnull, so without this the optimiser may drop a null
/// check after the call; a resource built without exceptions reports failure by returning null.
[[nodiscard]] inline void* call_allocate(
    std::pmr::memory_resource* upstream, std::size_t bytes, std::size_t alignment)
{
    void* p = upstream->allocate(bytes, alignment);
    __asm__("" : "+r"(p));  // the value is opaque to the optimiser from here on
    return p;
}

/// Throws std::bad_alloc where exceptions are enabled; otherwise reports `what` through the
/// assertion handler and aborts.
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_bad_alloc(const char* what)
{
#if defined(__cpp_exceptions)
    static_cast<void>(what);
    throw std::bad_alloc();
#else
    fatal_error(what, __FILE__, __LINE__);
#endif
}

/// `bytes` at `alignment` from `upstream`, or nullptr when it fails: an exception (caught
/// where exceptions are enabled) or a nullptr returned by the upstream.
/// \requires upstream is not null.
[[nodiscard]] inline void* try_allocate_from(
    std::pmr::memory_resource* upstream, std::size_t bytes, std::size_t alignment) noexcept
{
#if defined(__cpp_exceptions)
    try
    {
        return call_allocate(upstream, bytes, alignment);
    }
    catch (...)
    {
        return nullptr;
    }
#else
    return call_allocate(upstream, bytes, alignment);
#endif
}

/// `bytes` at `alignment` from `upstream`, never nullptr.
/// \throws whatever the upstream throws; std::bad_alloc (through throw_bad_alloc) when it
/// returns nullptr.
/// \requires upstream is not null.
[[nodiscard]] inline void* allocate_from(
    std::pmr::memory_resource* upstream, std::size_t bytes, std::size_t alignment)
{
    void* const p = call_allocate(upstream, bytes, alignment);
    if (p == nullptr) [[unlikely]]
        throw_bad_alloc("upstream memory resource returned nullptr");
    return p;
}

/// Returns f(). Where exceptions are enabled and f throws, calls undo() and rethrows; without
/// exceptions f cannot throw and undo is never called.
template <class F, class Undo>
decltype(auto) invoke_or_undo(F&& f, Undo&& undo)
{
#if defined(__cpp_exceptions)
    try
    {
        return std::forward<F>(f)();
    }
    catch (...)
    {
        std::forward<Undo>(undo)();
        throw;
    }
#else
    static_cast<void>(undo);
    return std::forward<F>(f)();
#endif
}
}  // namespace evmalloc::detail
