// evmalloc: a pool of N-byte blocks, with a typed fast path and a std::pmr face.
//
// BufferPool<N> is ObjectPool's engine with raw byte blocks: acquire() returns N bytes aligned
// to `alignment` (64 when N >= 64, a cache line; else 16), release() gives them back, LIFO.
// The standard sizes are standard_buffer_sizes: 256, 1024 and 4096 bytes.
//
// As a std::pmr::memory_resource (a FallibleResource: try_allocate() fails with nullptr, see
// upstream.hpp) it serves requests with size <= slot_size and alignment <= alignment from the
// pool and forwards the rest to upstream, on allocate and deallocate alike.
// Not thread-safe: see Synchronized.
#pragma once

#include <array>
#include <cstddef>
#include <memory_resource>

#include "slot_pool.hpp"
#include "upstream.hpp"

namespace evmalloc
{
/// The block sizes the library uses: small, medium and page-sized buffers.
inline constexpr std::array<std::size_t, 3> standard_buffer_sizes{256, 1024, 4096};

/// The alignment of BufferPool<N>'s blocks.
[[nodiscard]] constexpr std::size_t buffer_alignment(std::size_t n) noexcept
{
    return n >= 64 ? 64 : 16;
}

template <std::size_t N>
class BufferPool : public SlotPoolResource<N, buffer_alignment(N)>
{
    static_assert(N > 0, "a BufferPool needs a block size");
    using Base = SlotPoolResource<N, buffer_alignment(N)>;

public:
    static constexpr std::size_t block_size = N;
    static constexpr std::size_t alignment = buffer_alignment(N);

    /// \requires upstream is not null and outlives the pool.
    /// \throws std::bad_alloc when initial_capacity > 0 and upstream fails.
    explicit BufferPool(
        Upstream upstream = std::pmr::new_delete_resource(), std::size_t initial_capacity = 0)
      : Base{upstream, initial_capacity}
    {}

    /// N uninitialised bytes aligned to `alignment`.
    /// \throws std::bad_alloc when the pool must grow and upstream fails; the pool is unchanged.
    [[nodiscard]] std::byte* acquire() { return static_cast<std::byte*>(this->slots_.acquire()); }

    /// \requires p came from acquire() of this pool and is not released yet.
    void release(std::byte* p) noexcept { this->slots_.release(p); }
};
}  // namespace evmalloc
