// evmalloc: where the library's memory comes from, and how an upstream fails.
//
// Every evmalloc resource (the pools, the arenas, Memory, FramePool, the analysis caches,
// EvmAllocator) takes its memory from an upstream through an Upstream: a non-owning handle,
// two pointers, built implicitly from the pointer a constructor is given. What kind of resource
// it was built from decides how a failure reaches the library, and the choice is made once, by
// overload, from the static type at the call site (no RTTI, no dynamic_cast):
//
//   a FallibleResource*         its try_allocate() (noexcept): nullptr on failure. Never goes
//                               through std::pmr::memory_resource::allocate().
//   any std::pmr::memory_resource*
//                               its allocate(): with exceptions, a throw is caught and becomes
//                               a failure; without exceptions it cannot report a failure at all
//                               (allocate() never returns nullptr: libstdc++ declares it
//                               returns_nonnull, so a resource that returns nullptr from
//                               do_allocate() is undefined behaviour, and its failure must end
//                               the process instead).
//
// What a caller sees of a failure is the same either way: Errc::out_of_memory where the API
// returns a Result (Memory::expand, StackFrame::init, FramePool::acquire), nullptr from an
// evmalloc resource's own try_allocate(), std::bad_alloc from an evmalloc std::pmr face (or,
// without exceptions, the assertion handler's report and std::abort()).
//
// Builds with -fno-exceptions -fno-rtti (evmone's): to get Errc::out_of_memory instead of the
// end of the process when memory runs out, hand the library a FallibleResource* whose static
// type says so: nothrow_new_delete_resource() (operator new(std::nothrow)), an evmalloc
// resource (every one is a FallibleResource), or your own class derived from FallibleResource.
// A FallibleResource handed over as a plain std::pmr::memory_resource* is treated as one: it
// works, but its failure goes through do_allocate(), which throws std::bad_alloc (without
// exceptions: reports and aborts). std::pmr::new_delete_resource(), the default everywhere,
// ends the process on failure in such builds (its operator new throws through noexcept code).
//
// These helpers are the only places in the library that catch or throw.
#pragma once

#include <cstddef>
#include <memory_resource>
#include <new>
#include <utility>

#include "config.hpp"

namespace evmalloc
{
namespace detail
{
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

/// What a std::pmr face reports when its upstream failed (Errc::out_of_memory's message).
inline constexpr const char* upstream_failed = "upstream memory resource failed to allocate";

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

/// Calls f(): true when it returned, false when it threw (where exceptions are enabled).
template <class F>
bool invoke_nothrow(F&& f) noexcept
{
#if defined(__cpp_exceptions)
    try
    {
        std::forward<F>(f)();
        return true;
    }
    catch (...)
    {
        return false;
    }
#else
    std::forward<F>(f)();
    return true;
#endif
}
}  // namespace detail

/// A std::pmr::memory_resource that can also fail without throwing: try_allocate() returns
/// nullptr. Derive from it and implement do_try_allocate() (and do_deallocate(),
/// do_is_equal()); the std::pmr face (allocate()) is then do_try_allocate() with nullptr turned
/// into std::bad_alloc (without exceptions: the assertion handler's report and std::abort()).
class FallibleResource : public std::pmr::memory_resource
{
public:
    /// `bytes` aligned to `alignment`, or nullptr when the resource cannot provide them.
    /// \requires alignment is a power of two.
    [[nodiscard]] void* try_allocate(std::size_t bytes, std::size_t alignment) noexcept
    {
        return do_try_allocate(bytes, alignment);
    }

protected:
    /// The allocation itself: nullptr on failure, never a throw.
    virtual void* do_try_allocate(std::size_t bytes, std::size_t alignment) noexcept = 0;

    /// \throws std::bad_alloc when do_try_allocate() returns nullptr.
    void* do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        if (void* p = do_try_allocate(bytes, alignment)) [[likely]]
            return p;
        detail::throw_bad_alloc(detail::upstream_failed);
    }
};

/// How an evmalloc resource holds its upstream (see the top of this header): a non-owning,
/// trivially copyable handle, built implicitly from a FallibleResource* (failure is a nullptr
/// from try_allocate()) or from any other std::pmr::memory_resource* (failure is a throw from
/// allocate(), caught where exceptions are enabled).
class Upstream
{
public:
    /// No upstream (the resources that take one require it to be non-null).
    constexpr Upstream(std::nullptr_t = nullptr) noexcept {}
    /// Fails by throwing from allocate() (caught where exceptions are enabled).
    constexpr Upstream(std::pmr::memory_resource* resource) noexcept : resource_{resource} {}
    /// Fails by returning nullptr from try_allocate(); allocate() is never called.
    constexpr Upstream(FallibleResource* resource) noexcept
      : resource_{resource}, fallible_{resource}
    {}

    /// `bytes` at `alignment`, or nullptr when the upstream failed. \requires a non-null
    /// upstream; alignment is a power of two.
    [[nodiscard]] void* try_allocate(std::size_t bytes, std::size_t alignment) const noexcept
    {
        if (fallible_ != nullptr)
            return fallible_->try_allocate(bytes, alignment);
#if defined(__cpp_exceptions)
        try
        {
            return resource_->allocate(bytes, alignment);
        }
        catch (...)
        {
            return nullptr;
        }
#else
        return resource_->allocate(bytes, alignment);  // never nullptr: it cannot fail here
#endif
    }

    /// Gives back what try_allocate(bytes, alignment) returned.
    void deallocate(void* p, std::size_t bytes, std::size_t alignment) const
    {
        resource_->deallocate(p, bytes, alignment);
    }

    /// The resource itself.
    [[nodiscard]] constexpr std::pmr::memory_resource* resource() const noexcept
    {
        return resource_;
    }
    /// True when failure is a nullptr from try_allocate() (built from a FallibleResource*).
    [[nodiscard]] constexpr bool fallible() const noexcept
    {
        return fallible_ != nullptr;
    }

    friend constexpr bool operator==(const Upstream& a, const Upstream& b) noexcept
    {
        return a.resource_ == b.resource_;
    }

private:
    std::pmr::memory_resource* resource_ = nullptr;
    FallibleResource* fallible_ = nullptr;  // resource_ as a FallibleResource, if it is one
};

namespace detail
{
/// ::operator new(std::nothrow) and ::operator delete, with alignment, as a FallibleResource.
class NothrowNewDeleteResource final : public FallibleResource
{
    void* do_try_allocate(std::size_t bytes, std::size_t alignment) noexcept override
    {
        return ::operator new (bytes, std::align_val_t{alignment}, std::nothrow);
    }
    void do_deallocate(void* p, std::size_t, std::size_t alignment) override
    {
        ::operator delete (
            p, std::align_val_t{alignment});  // (sized delete is not always declared)
    }
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }
};
}  // namespace detail

/// The global heap as a FallibleResource: operator new(std::nothrow) with the requested
/// alignment, so a failure is nullptr (Errc::out_of_memory for the library's callers), also in
/// builds without exceptions. One instance for the process, never destroyed (usable from
/// other static objects' destructors).
[[nodiscard]] inline FallibleResource* nothrow_new_delete_resource() noexcept
{
    alignas(detail::NothrowNewDeleteResource) static unsigned char
        storage[sizeof(detail::NothrowNewDeleteResource)];
    static FallibleResource* const resource = ::new (storage) detail::NothrowNewDeleteResource;
    return resource;
}
}  // namespace evmalloc
