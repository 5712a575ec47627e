// evmone on evmalloc: EVMC result outputs in pooled buffers (evmalloc_output.hpp).
#include "evmalloc_output.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace evmalloc_evmone
{
OutputBuffers* OutputBuffers::create() noexcept
{
    return new (std::nothrow) OutputBuffers;
}

evmc_result OutputBuffers::make_result(evmc_status_code status, std::int64_t gas_left,
    std::int64_t gas_refund, const std::uint8_t* output, std::size_t output_size) noexcept
{
    evmc_result result{};
    if (output_size != 0)
    {
        std::uint32_t size_class = 0;
        std::byte* const block = acquire(output_size, size_class);
        if (block == nullptr) [[unlikely]]
        {
            result.status_code = EVMC_OUT_OF_MEMORY;
            return result;
        }
        ::new (block) Header{this, size_class, 0};
        auto* const out = reinterpret_cast<std::uint8_t*>(block + header_size);
        std::memcpy(out, output, output_size);
        result.output_data = out;
        result.output_size = output_size;
        result.release = &OutputBuffers::release;
        ++refs_;
    }
    result.status_code = status;
    result.gas_left = gas_left;
    result.gas_refund = gas_refund;
    return result;
}

std::byte* OutputBuffers::acquire(std::size_t output_size, std::uint32_t& size_class) noexcept
{
    const std::size_t bytes = output_size + header_size;
    if (bytes <= class_bytes[0])
        return size_class = 0, static_cast<std::byte*>(b64_.acquire_or_null());
    if (bytes <= class_bytes[1])
        return size_class = 1, static_cast<std::byte*>(b256_.acquire_or_null());
    if (bytes <= class_bytes[2])
        return size_class = 2, static_cast<std::byte*>(b1k_.acquire_or_null());
    if (bytes <= class_bytes[3])
        return size_class = 3, static_cast<std::byte*>(b4k_.acquire_or_null());
    if (bytes <= class_bytes[4])
        return size_class = 4, static_cast<std::byte*>(b16k_.acquire_or_null());
    if (bytes <= class_bytes[5])
        return size_class = 5, static_cast<std::byte*>(b64k_.acquire_or_null());
    size_class = heap_class;
    if (output_size > SIZE_MAX - header_size) [[unlikely]]
        return nullptr;
    return static_cast<std::byte*>(std::malloc(bytes));
}

void OutputBuffers::give_back(std::byte* block, std::uint32_t size_class) noexcept
{
    switch (size_class)
    {
    case 0:
        return b64_.release(block);
    case 1:
        return b256_.release(block);
    case 2:
        return b1k_.release(block);
    case 3:
        return b4k_.release(block);
    case 4:
        return b16k_.release(block);
    case 5:
        return b64k_.release(block);
    default:
        return std::free(block);
    }
}

void OutputBuffers::unref() noexcept
{
    if (--refs_ == 0)
        delete this;
}

void OutputBuffers::release(const evmc_result* result) noexcept
{
    auto* const block = const_cast<std::byte*>(
        reinterpret_cast<const std::byte*>(result->output_data) - header_size);
    const Header header = *std::launder(reinterpret_cast<const Header*>(block));
    header.owner->give_back(block, header.size_class);
    header.owner->unref();
}
}  // namespace evmalloc_evmone
