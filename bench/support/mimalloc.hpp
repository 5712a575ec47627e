// Benchmark support: mimalloc as a baseline, reached through dlopen.
//
// Debian's libmimalloc.so exports malloc/free as well as mi_*: linked plainly it could take over
// the C library's malloc for the whole process, and every malloc/new baseline would measure
// mimalloc. Opened with RTLD_LOCAL its symbols stay out of the global lookup scope, and only
// mi_malloc, mi_malloc_aligned and mi_free are called, through pointers. (If the executable
// links mimalloc anyway, dlopen returns the library already loaded, which works the same.)
//
// Mimalloc::get() loads once per process. When the library is missing, available() is false
// and error() says why; benchmarks then call state.SkipWithError(error()).
// system_malloc() is false when std::malloc turned out to be mimalloc's: the malloc baselines
// would be wrong, and they skip themselves.
#pragma once

#include <dlfcn.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace evmalloc::bench
{
class Mimalloc
{
public:
    using MallocFn = void* (*)(std::size_t);
    using MallocAlignedFn = void* (*)(std::size_t, std::size_t);
    using FreeFn = void (*)(void*);

    /// The process-wide instance, loaded on first use.
    static const Mimalloc& get() noexcept
    {
        static const Mimalloc instance;
        return instance;
    }

    [[nodiscard]] bool available() const noexcept { return malloc_fn != nullptr; }
    /// Why available() is false (nullptr when it is true).
    [[nodiscard]] const char* error() const noexcept { return error_; }
    /// False when std::malloc is served by mimalloc rather than the C library.
    [[nodiscard]] bool system_malloc() const noexcept { return system_malloc_; }

    MallocFn malloc_fn = nullptr;                 ///< mi_malloc
    MallocAlignedFn malloc_aligned_fn = nullptr;  ///< mi_malloc_aligned(size, alignment)
    FreeFn free_fn = nullptr;                     ///< mi_free

private:
    Mimalloc() noexcept
    {
        void* const lib = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
        if (lib == nullptr)
        {
            error_ = "libmimalloc not installed";
            return;
        }
        const auto m = symbol<MallocFn>(lib, "mi_malloc");
        const auto ma = symbol<MallocAlignedFn>(lib, "mi_malloc_aligned");
        const auto f = symbol<FreeFn>(lib, "mi_free");
        const auto in_heap = symbol<bool (*)(const void*)>(lib, "mi_is_in_heap_region");
        if (m == nullptr || ma == nullptr || f == nullptr || in_heap == nullptr)
        {
            error_ = "libmimalloc lacks mi_malloc/mi_malloc_aligned/mi_free/mi_is_in_heap_region";
            return;
        }
        void* const probe = std::malloc(64);
        system_malloc_ = !in_heap(probe);
        std::free(probe);
        malloc_fn = m;
        malloc_aligned_fn = ma;
        free_fn = f;
    }

    template <class Fn>
    static Fn symbol(void* lib, const char* name) noexcept
    {
        void* const address = dlsym(lib, name);
        Fn fn = nullptr;
        static_assert(sizeof(fn) == sizeof(address));
        std::memcpy(&fn, &address, sizeof(fn));
        return fn;
    }

    const char* error_ = nullptr;
    bool system_malloc_ = true;
};
}  // namespace evmalloc::bench
