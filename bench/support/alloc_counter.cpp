#include "support/alloc_counter.hpp"

#include <cstdlib>
#include <new>

namespace
{
thread_local std::uint64_t tls_new_calls = 0;

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
