// Fuzz support: an upstream that keeps large freed blocks for the next execution. Frame
// buffers (128 KiB to 3.3 MiB) and arena chunks would otherwise be mapped, faulted in and
// unmapped by the sanitizer's allocator on every execution. A kept block is poisoned, so a
// use after it was given back is still an ASan report; blocks below 64 KiB go straight to
// the global heap. At most max_cached_bytes are kept in all (buffers above the largest tier
// come in many sizes: kept without a bound they took the process past libFuzzer's RSS limit).
#pragma once

#include <sanitizer/asan_interface.h>

#include <cstddef>
#include <map>
#include <memory_resource>
#include <utility>
#include <vector>

namespace evmalloc::fuzz
{
class CachingResource final : public std::pmr::memory_resource
{
public:
    static constexpr std::size_t min_cached = 64 * 1024;
    static constexpr std::size_t max_per_size = 32;
    static constexpr std::size_t max_cached_bytes = std::size_t{256} << 20;

    /// The one instance, never destroyed: the blocks it keeps stay reachable (not leaks)
    /// until the process ends.
    static CachingResource& instance()
    {
        static CachingResource* const r = new CachingResource;
        return *r;
    }

private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        if (bytes >= min_cached)
        {
            auto& list = kept_[{bytes, alignment}];
            if (!list.empty())
            {
                void* p = list.back();
                list.pop_back();
                cached_bytes_ -= bytes;
                ASAN_UNPOISON_MEMORY_REGION(p, bytes);
                return p;
            }
        }
        return std::pmr::new_delete_resource()->allocate(bytes, alignment);
    }

    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override
    {
        if (bytes >= min_cached)
        {
            auto& list = kept_[{bytes, alignment}];
            if (list.size() < max_per_size && cached_bytes_ + bytes <= max_cached_bytes)
            {
                ASAN_POISON_MEMORY_REGION(p, bytes);
                list.push_back(p);
                cached_bytes_ += bytes;
                return;
            }
        }
        std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
    }

    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }

    std::map<std::pair<std::size_t, std::size_t>, std::vector<void*>> kept_;
    std::size_t cached_bytes_ = 0;
};
}  // namespace evmalloc::fuzz
