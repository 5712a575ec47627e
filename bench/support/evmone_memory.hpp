// Benchmark support: an evmone-style EVM memory, the baseline for workload 4 (memory).
//
// Modelled on how evmone's Memory behaves (lib/evmone/execution_state.hpp and the
// check_memory/grow_memory helpers), written here from that description:
// - the constructor allocates one 4 KiB page with std::realloc;
// - growth doubles the capacity, and rounds the need up to 4 KiB pages when doubling is short,
//   reallocating with std::realloc (which may extend in place or copy the whole capacity);
// - only the new tail [old size, new size) is zeroed; clear() keeps the capacity;
// - offsets and lengths above 2^32 - 1 are refused before any arithmetic (evmone's
//   max_buffer_size check), the size rounds up to 32 and the gas is cost(new) - cost(old).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace evmalloc::bench
{
class EvmoneMemory
{
public:
    static constexpr std::size_t page_size = 4096;
    static constexpr std::uint64_t max_buffer_size = 0xFFFFFFFF;

    EvmoneMemory() { reallocate(); }
    EvmoneMemory(const EvmoneMemory&) = delete;
    EvmoneMemory& operator=(const EvmoneMemory&) = delete;
    ~EvmoneMemory() { std::free(data_); }

    /// The gas of making [offset, offset + length) addressable, or -1 when refused.
    std::int64_t expand(std::uint64_t offset, std::uint64_t length) noexcept
    {
        if (length == 0)
            return 0;
        if (((offset | length) >> 32) != 0)
            return -1;
        const std::uint64_t end = offset + length;
        if (end <= size_)
            return 0;
        return grow_memory(end);
    }

    void clear() noexcept { size_ = 0; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] std::uint8_t* data() noexcept { return data_; }

private:
    [[gnu::noinline]] std::int64_t grow_memory(std::uint64_t end) noexcept
    {
        const std::uint64_t new_words = (end + 31) / 32;
        const std::uint64_t old_words = size_ / 32;
        const auto cost = [](std::uint64_t w) { return 3 * w + w * w / 512; };
        const auto gas = static_cast<std::int64_t>(cost(new_words) - cost(old_words));
        grow(static_cast<std::size_t>(new_words * 32));
        return gas;
    }

    void grow(std::size_t new_size) noexcept
    {
        if (new_size > capacity_)
        {
            capacity_ *= 2;
            if (capacity_ < new_size)
                capacity_ = (new_size + page_size - 1) / page_size * page_size;
            reallocate();
        }
        std::memset(data_ + size_, 0, new_size - size_);
        size_ = new_size;
    }

    void reallocate() noexcept
    {
        auto* const p = static_cast<std::uint8_t*>(std::realloc(data_, capacity_));
        if (p == nullptr)
            std::abort();  // as evmone: no recovery from a failed realloc
        data_ = p;
    }

    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = page_size;
};
}  // namespace evmalloc::bench
