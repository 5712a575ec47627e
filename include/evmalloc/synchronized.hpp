// evmalloc: any resource behind a mutex.
//
// The intended model is one allocator per executing thread: pools and arenas are not
// thread-safe and need no locks. Synchronized<R> is for what must be shared: it owns an R
// (constructed from the arguments it is given), is itself a std::pmr::memory_resource that
// locks around R's allocate/deallocate, and with_lock(f) runs f(R&) under the same lock for
// typed calls (acquire/release, create/destroy) and for reading counts consistently. It is a
// FallibleResource (upstream.hpp): try_allocate() locks and asks R the same way an evmalloc
// resource asks its upstream (R's own try_allocate() when R is a FallibleResource, else R's
// allocate() with a throw caught), so nullptr is its failure.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory_resource>
#include <mutex>
#include <utility>

#include "upstream.hpp"

namespace evmalloc
{
template <class R>
class Synchronized final : public FallibleResource
{
public:
    using resource_type = R;

    /// Constructs the inner resource from `args`.
    template <class... A>
        requires std::constructible_from<R, A...>
    explicit Synchronized(A&&... args) : inner_(std::forward<A>(args)...) {}

    Synchronized(const Synchronized&) = delete;
    Synchronized& operator=(const Synchronized&) = delete;
    ~Synchronized() override = default;

    /// Runs f(inner) with the lock held and returns what f returns.
    /// \requires f does not call back into this Synchronized (the mutex is not recursive),
    /// and does not keep a reference to the inner resource past its return.
    template <class F>
    decltype(auto) with_lock(F&& f)
    {
        const std::lock_guard lock{mutex_};
        return std::forward<F>(f)(inner_);
    }

    template <class F>
    decltype(auto) with_lock(F&& f) const
    {
        const std::lock_guard lock{mutex_};
        return std::forward<F>(f)(std::as_const(inner_));
    }

protected:
    void* do_try_allocate(std::size_t bytes, std::size_t alignment) noexcept override
    {
        const std::lock_guard lock{mutex_};
        return Upstream{&inner_}.try_allocate(bytes, alignment);
    }

    void* do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        const std::lock_guard lock{mutex_};
        return static_cast<std::pmr::memory_resource&>(inner_).allocate(bytes, alignment);
    }

    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override
    {
        const std::lock_guard lock{mutex_};
        static_cast<std::pmr::memory_resource&>(inner_).deallocate(p, bytes, alignment);
    }

    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }

private:
    mutable std::mutex mutex_;
    R inner_;
};
}  // namespace evmalloc
