#include "support/alloc_counter.hpp"

#include <cstdlib>
#include <new>

// glibc's own allocator entry points, which the replacements below forward to.
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void __libc_free(void* p);
}

namespace
{
thread_local std::uint64_t tls_new_calls = 0;
// Zero-initialised, so reading it needs no TLS constructor (malloc runs before main).
thread_local std::uint64_t tls_malloc_calls = 0;

void* counted_new(std::size_t size)
{
    ++tls_new_calls;
    if (size == 0)
        size = 1;
    for (;;)
    {
        if (void* p = std::malloc(size))
            return p;
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr)
            throw std::bad_alloc();
        handler();
    }
}

void* counted_new_aligned(std::size_t size, std::align_val_t al)
{
    ++tls_new_calls;
    const auto alignment = static_cast<std::size_t>(al);
    const std::size_t rounded = (size + alignment - 1) / alignment * alignment;
    if (void* p = std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded))
        return p;
    throw std::bad_alloc();
}
}  // namespace

std::uint64_t evmalloc::bench::new_calls() noexcept
{
    return tls_new_calls;
}

std::uint64_t evmalloc::bench::malloc_calls() noexcept
{
    return tls_malloc_calls;
}

// The C allocator, counted. glibc requires malloc, free, calloc and realloc to be replaced
// together; aligned_alloc is replaced too so that it is counted (memalign and posix_memalign,
// which nothing here calls, stay glibc's and still pair with this free).
extern "C" {
void* malloc(std::size_t size) noexcept
{
    ++tls_malloc_calls;
    return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept
{
    ++tls_malloc_calls;
    return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) noexcept
{
    if (size != 0 || p == nullptr)
        ++tls_malloc_calls;
    return __libc_realloc(p, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept
{
    ++tls_malloc_calls;
    return __libc_memalign(alignment, size);
}
void free(void* p) noexcept
{
    __libc_free(p);
}
}

void* operator new(std::size_t size)
{
    return counted_new(size);
}
void* operator new[](std::size_t size)
{
    return counted_new(size);
}
void* operator new(std::size_t size, std::align_val_t al)
{
    return counted_new_aligned(size, al);
}
void* operator new[](std::size_t size, std::align_val_t al)
{
    return counted_new_aligned(size, al);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept
{
    try
    {
        return counted_new(size);
    }
    catch (...)
    {
        return nullptr;
    }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept
{
    try
    {
        return counted_new(size);
    }
    catch (...)
    {
        return nullptr;
    }
}
void operator delete(void* p) noexcept
{
    std::free(p);
}
void operator delete[](void* p) noexcept
{
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept
{
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept
{
    std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept
{
    std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept
{
    std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept
{
    std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept
{
    std::free(p);
}
