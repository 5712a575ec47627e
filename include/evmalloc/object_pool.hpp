// evmalloc: a pool of T-sized slots, with a typed fast path and a std::pmr face.
//
// ObjectPool<T> hands out slots of sizeof(T) bytes aligned to alignof(T) (at least a pointer
// each, so a free slot can hold the free-list link). acquire()/release() deal in raw slots;
// create()/destroy() construct and destroy a T in one. Slots are reused LIFO; memory comes
// from upstream in chunks that double in size and all goes back when the pool is destroyed.
//
// As a std::pmr::memory_resource it serves every request that fits a slot (size <= slot_size,
// alignment <= slot_alignment) from the pool and forwards the rest to upstream; deallocation
// follows the same rule. It is a FallibleResource: try_allocate() fails with nullptr where
// allocate() throws (upstream.hpp). The overrides are final: calls through an ObjectPool<T>& devirtualize.
//
// Debug builds abort on a double release or a foreign pointer and report objects alive at
// destruction, through the assertion handler (see slot_pool.hpp). Not thread-safe: see
// Synchronized.
#pragma once

#include <cstddef>
#include <memory_resource>
#include <new>
#include <utility>

#include "config.hpp"
#include "slot_pool.hpp"
#include "upstream.hpp"

namespace evmalloc
{
template <class T>
class ObjectPool : public SlotPoolResource<sizeof(T), alignof(T)>
{
    using Base = SlotPoolResource<sizeof(T), alignof(T)>;

public:
    using value_type = T;

    /// \requires upstream is not null and outlives the pool.
    /// \throws std::bad_alloc when initial_capacity > 0 and upstream fails.
    explicit ObjectPool(
        Upstream upstream = std::pmr::new_delete_resource(), std::size_t initial_capacity = 0)
      : Base{upstream, initial_capacity}
    {}

    /// Raw storage for one T (no object constructed).
    /// \throws std::bad_alloc when the pool must grow and upstream fails; the pool is unchanged.
    [[nodiscard]] T* acquire() { return static_cast<T*>(this->slots_.acquire()); }

    /// Gives back storage from acquire() (any object in it already destroyed).
    /// \requires p came from this pool and is not released yet.
    void release(T* p) noexcept { this->slots_.release(p); }

    /// A T constructed from `args` in a pooled slot.
    /// \throws std::bad_alloc as acquire(), or whatever T's constructor throws (the slot is
    /// given back then).
    template <class... A>
    [[nodiscard]] T* create(A&&... args)
    {
        T* const slot = acquire();
        return detail::invoke_or_undo(
            [&] { return ::new (static_cast<void*>(slot)) T(std::forward<A>(args)...); },
            [&] { release(slot); });
    }

    /// Destroys an object from create() and gives its slot back.
    /// \requires p came from create() of this pool and is not destroyed yet (checked in debug
    /// builds before the destructor runs: a bad call is reported and aborts).
    void destroy(T* p) noexcept
    {
        this->slots_.check_release(p);
        p->~T();
        release(p);
    }
};
}  // namespace evmalloc
