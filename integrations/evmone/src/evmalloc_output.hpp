// evmone on evmalloc: the call boundary. The output of an EVMC result in a pooled buffer, and a
// caller's return data kept as its callee's result instead of a copy.
//
// Stock evmone ends every call with evmc::make_result(), which mallocs a buffer for the output
// and copies the callee's memory into it (the one heap allocation per call evmalloc had left);
// the caller then copies that output into its ExecutionState::return_data (a std::basic_string,
// which allocates when the output outgrows it) and, for CALL, into its own memory. Here:
//
//   callee memory ──copy──► OutputBuffers block (pooled) ══ the EVMC result's output_data
//                                    ║ (kept, not copied: ReturnData holds the result)
//   caller: return_data views it; RETURNDATACOPY and the CALL's output area copy from it
//
// so a call with output copies it twice where stock copies it three times (callee memory →
// result, result → return_data, result → caller memory), and allocates nothing.
//
// OutputBuffers: blocks of 64, 256, 1 KiB, 4 KiB, 16 KiB and 64 KiB (evmalloc::BufferPool, one
// per size class); each block starts with a 16-byte header naming its pool and class, and the
// output follows it. An output above the largest class (64 KiB less the header) gets a block of
// its own from malloc. The result's release() reads the header, so results may be released in
// any order, after their call returned, after their frame is gone, and after the VM is
// destroyed: the VM holds one reference to its OutputBuffers and every result out holds one;
// the last to go frees them. Not thread-safe (as the VM): results are released on the thread
// that runs the VM.
//
// ReturnData: evmone's ExecutionState::return_data (evmone.patch). keep(result) takes over the
// callee's result (its release moves here, its output_data stays valid while this holds it);
// clear() releases it. It also keeps evmone's `bytes` interface (assign, push_back) for code
// and tests that write return data themselves.
#pragma once

#include <evmalloc/buffer_pool.hpp>
#include <evmalloc/upstream.hpp>
#include <evmc/evmc.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace evmalloc_evmone
{
class OutputBuffers
{
public:
    /// The bytes in front of every output: the pool and the size class of its block.
    static constexpr std::size_t header_size = 16;
    /// The block sizes (header included).
    static constexpr std::size_t class_count = 6;
    static constexpr std::size_t class_bytes[class_count] = {64, 256, 1024, 4096, 16384, 65536};
    /// Outputs up to this size come from a pool; larger ones from malloc.
    static constexpr std::size_t max_pooled_output = class_bytes[class_count - 1] - header_size;

    /// A new set of pools, referenced once (by the VM). Nullptr when the allocation fails.
    [[nodiscard]] static OutputBuffers* create() noexcept;

    /// Drops the VM's reference: the pools go when the last result out is released too.
    void drop() noexcept
    {
        dropped_ = true;
        unref();
    }

    OutputBuffers(const OutputBuffers&) = delete;
    OutputBuffers& operator=(const OutputBuffers&) = delete;

    /// evmc_make_result() with the output in a pooled block: `output_size` bytes copied from
    /// `output` (which may be null when output_size is 0). Without output the result has no
    /// release function. When no block can be had the result is EVMC_OUT_OF_MEMORY with
    /// nothing else set (as evmc_make_result's).
    [[nodiscard]] evmc_result make_result(evmc_status_code status, std::int64_t gas_left,
        std::int64_t gas_refund, const std::uint8_t* output, std::size_t output_size) noexcept;

    /// Results whose output is still out (handed out and not released).
    [[nodiscard]] std::size_t outstanding() const noexcept { return refs_ - (dropped_ ? 0 : 1); }

private:
    struct Header
    {
        OutputBuffers* owner;
        std::uint32_t size_class;  ///< an index into class_bytes, or heap_class
        std::uint32_t unused;
    };
    static_assert(sizeof(Header) == header_size);
    static constexpr std::uint32_t heap_class = class_count;

    OutputBuffers() noexcept = default;
    ~OutputBuffers() = default;

    /// A block with room for `output_size` bytes after the header, or nullptr.
    std::byte* acquire(std::size_t output_size, std::uint32_t& size_class) noexcept;
    void give_back(std::byte* block, std::uint32_t size_class) noexcept;
    void unref() noexcept;

    static void release(const evmc_result* result) noexcept;

    evmalloc::BufferPool<class_bytes[0]> b64_{evmalloc::nothrow_new_delete_resource()};
    evmalloc::BufferPool<class_bytes[1]> b256_{evmalloc::nothrow_new_delete_resource()};
    evmalloc::BufferPool<class_bytes[2]> b1k_{evmalloc::nothrow_new_delete_resource()};
    evmalloc::BufferPool<class_bytes[3]> b4k_{evmalloc::nothrow_new_delete_resource()};
    evmalloc::BufferPool<class_bytes[4]> b16k_{evmalloc::nothrow_new_delete_resource()};
    evmalloc::BufferPool<class_bytes[5]> b64k_{evmalloc::nothrow_new_delete_resource()};
    std::size_t refs_ = 1;
    bool dropped_ = false;
};

/// The return data of an ExecutionState: the output of the last call it made, held as that
/// call's EVMC result (no copy), with evmone's `bytes` interface for reading.
class ReturnData
{
public:
    ReturnData() noexcept = default;
    ReturnData(const ReturnData&) = delete;
    ReturnData& operator=(const ReturnData&) = delete;
    ReturnData(ReturnData&& other) noexcept
      : data_{std::exchange(other.data_, nullptr)},
        size_{std::exchange(other.size_, 0)},
        kept_{std::exchange(other.kept_, {})},
        own_{std::move(other.own_)}
    {}
    ReturnData& operator=(ReturnData&& other) noexcept
    {
        if (this != &other)
        {
            release_kept();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
            kept_ = std::exchange(other.kept_, {});
            own_ = std::move(other.own_);
        }
        return *this;
    }
    ~ReturnData() { release_kept(); }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    /// \requires size() > 0 to read through it.
    [[nodiscard]] const std::uint8_t* data() const noexcept { return data_; }
    /// \requires index < size().
    const std::uint8_t& operator[](std::size_t index) const noexcept { return data_[index]; }
    operator evmc::bytes_view() const noexcept { return {data_, size_}; }

    /// Takes over `result`: its output becomes the return data without a copy, and releasing
    /// it becomes this object's job. `result` keeps its fields (result.output_data stays
    /// readable while this holds it) but releases nothing any more.
    void keep(evmc::Result& result) noexcept
    {
        release_kept();
        kept_ = result.release_raw();
        data_ = kept_.output_data;
        size_ = kept_.output_size;
    }

    /// Empty; a kept result is released.
    void clear() noexcept
    {
        release_kept();
        data_ = nullptr;
        size_ = 0;
    }

    /// evmone's bytes::assign(): a copy of [data, data + size), in storage of its own.
    void assign(const std::uint8_t* data, std::size_t size)
    {
        evmc::bytes& own = materialise();
        own.assign(data, size);
        data_ = own.data();
        size_ = own.size();
    }

    /// evmone's bytes::push_back() (evmone's tests write return data so).
    void push_back(std::uint8_t byte)
    {
        evmc::bytes& own = materialise();
        own.push_back(byte);
        data_ = own.data();
        size_ = own.size();
    }

private:
    void release_kept() noexcept
    {
        if (kept_.release != nullptr)
        {
            kept_.release(&kept_);
            kept_.release = nullptr;
        }
    }

    /// The storage of its own, holding the current contents; a kept result is released.
    evmc::bytes& materialise()
    {
        if (!own_)
            own_ = std::make_unique<evmc::bytes>();
        if (size_ == 0)
            own_->clear();
        else if (data_ != own_->data())
            own_->assign(data_, size_);
        release_kept();
        return *own_;
    }

    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    evmc_result kept_{};  // kept_.release == nullptr: nothing kept
    std::unique_ptr<evmc::bytes> own_;
};
}  // namespace evmalloc_evmone
