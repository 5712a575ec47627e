// Test support: an upstream resource that records everything.
//
// Every allocation is logged with its size and alignment; every deallocation must match a live
// allocation exactly (pointer, size, alignment) or it is recorded as an error (and not passed
// on). It can be told to fail once K more allocations have succeeded, while a flag is set, or
// for any request above a size (an upstream that cannot serve huge requests, as a real one
// cannot). It is an evmalloc::FallibleResource, so how a failure reaches the library depends on
// how the library is handed it (evmalloc/upstream.hpp), which upstream(style) chooses:
//   FailureStyle::returns_nullptr  as a FallibleResource (what `&rec` gives): try_allocate()
//                                  returns nullptr; the library never calls allocate();
//   FailureStyle::throws           as a plain std::pmr::memory_resource: allocate() throws
//                                  std::bad_alloc (without exceptions: reports and aborts).
// check() / report() let a test assert that nothing is left and nothing went wrong; the
// destructor returns anything still live to its own upstream so a failed test does not leak.
// Thread-safe (one mutex), so it can sit under Synchronized<> tests.
#pragma once

#include <evmalloc/upstream.hpp>

#include <cstddef>
#include <limits>
#include <map>
#include <memory_resource>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <vector>

namespace evmalloc::test
{
/// How a failing upstream fails: see the top of this header.
enum class FailureStyle
{
    returns_nullptr,
    throws,
};

/// Both failure styles, for tests that try each. Without exceptions only the nullptr one can
/// be survived.
#if defined(__cpp_exceptions)
inline constexpr FailureStyle failure_styles[] = {
    FailureStyle::returns_nullptr, FailureStyle::throws};
#else
inline constexpr FailureStyle failure_styles[] = {FailureStyle::returns_nullptr};
#endif

inline const char* name_of(FailureStyle style) noexcept
{
    return style == FailureStyle::throws ? "throws" : "returns nullptr";
}

class RecordingResource : public FallibleResource
{
public:
    struct Event
    {
        bool allocate;  ///< false: a deallocation
        void* p;
        std::size_t bytes;
        std::size_t alignment;
    };

    explicit RecordingResource(
        std::pmr::memory_resource* upstream = std::pmr::new_delete_resource())
      : upstream_{upstream}
    {}
    RecordingResource(const RecordingResource&) = delete;
    RecordingResource& operator=(const RecordingResource&) = delete;

    ~RecordingResource() override
    {
        for (const auto& [p, block] : live_)
            upstream_->deallocate(p, block.bytes, block.alignment);
    }

    /// This resource as the library holds it: failing by a nullptr from try_allocate(), or by
    /// std::bad_alloc from allocate().
    [[nodiscard]] Upstream upstream(FailureStyle style) noexcept
    {
        if (style == FailureStyle::throws)
            return static_cast<std::pmr::memory_resource*>(this);
        return this;
    }

    /// The next `k` allocations succeed, every one after fails (until reset).
    void fail_after(std::size_t k)
    {
        const std::lock_guard lock{mutex_};
        successes_left_ = k;
    }
    /// While set, every allocation fails.
    void set_failing(bool failing)
    {
        const std::lock_guard lock{mutex_};
        failing_ = failing;
    }
    /// Every allocation of more than `bytes` fails (until reset).
    void fail_above(std::size_t bytes)
    {
        const std::lock_guard lock{mutex_};
        max_bytes_ = bytes;
    }
    /// Back to never failing.
    void stop_failing()
    {
        const std::lock_guard lock{mutex_};
        failing_ = false;
        successes_left_ = no_limit;
        max_bytes_ = no_limit;
    }

    [[nodiscard]] std::size_t allocations() const
    {
        return locked([&] { return allocations_; });
    }
    [[nodiscard]] std::size_t deallocations() const
    {
        return locked([&] { return deallocations_; });
    }
    /// Allocations refused so far.
    [[nodiscard]] std::size_t failures() const
    {
        return locked([&] { return failures_; });
    }
    [[nodiscard]] std::size_t live_count() const
    {
        return locked([&] { return live_.size(); });
    }
    [[nodiscard]] std::size_t live_bytes() const
    {
        return locked([&] { return live_bytes_; });
    }
    [[nodiscard]] std::vector<Event> log() const
    {
        return locked([&] { return log_; });
    }
    [[nodiscard]] std::vector<std::string> errors() const
    {
        return locked([&] { return errors_; });
    }

    /// True when `p` is a live allocation of this resource.
    [[nodiscard]] bool is_live(const void* p) const
    {
        return locked([&] { return live_.count(const_cast<void*>(p)) != 0; });
    }

    /// Empty when every deallocation matched and nothing is live; else what is wrong.
    [[nodiscard]] std::string report() const
    {
        const std::lock_guard lock{mutex_};
        std::ostringstream out;
        for (const auto& e : errors_)
            out << e << '\n';
        for (const auto& [p, block] : live_)
            out << "still live: " << p << " (" << block.bytes << " bytes, alignment "
                << block.alignment << ")\n";
        return out.str();
    }
    /// True when report() is empty.
    [[nodiscard]] bool check() const { return report().empty(); }

protected:
    /// nullptr when failing; allocate() (FallibleResource's face) then throws std::bad_alloc.
    void* do_try_allocate(std::size_t bytes, std::size_t alignment) noexcept override
    {
        const std::lock_guard lock{mutex_};
        if (failing_ || successes_left_ == 0 || bytes > max_bytes_)
        {
            ++failures_;
            return nullptr;
        }
        void* const p = upstream_->allocate(bytes, alignment);
        if (successes_left_ != no_limit)
            --successes_left_;
        ++allocations_;
        live_.emplace(p, Block{bytes, alignment});
        live_bytes_ += bytes;
        log_.push_back({true, p, bytes, alignment});
        return p;
    }

    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override
    {
        const std::lock_guard lock{mutex_};
        log_.push_back({false, p, bytes, alignment});
        const auto it = live_.find(p);
        if (it == live_.end())
        {
            std::ostringstream out;
            out << "deallocate of " << p << " which is not live";
            errors_.push_back(out.str());
            return;
        }
        if (it->second.bytes != bytes || it->second.alignment != alignment)
        {
            std::ostringstream out;
            out << "deallocate of " << p << " with (" << bytes << ", " << alignment
                << "), allocated with (" << it->second.bytes << ", " << it->second.alignment << ")";
            errors_.push_back(out.str());
            return;
        }
        ++deallocations_;
        live_bytes_ -= bytes;
        live_.erase(it);
        upstream_->deallocate(p, bytes, alignment);
    }

    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }

private:
    struct Block
    {
        std::size_t bytes;
        std::size_t alignment;
    };
    static constexpr std::size_t no_limit = std::numeric_limits<std::size_t>::max();

    template <class F>
    auto locked(F&& f) const -> decltype(f())
    {
        const std::lock_guard lock{mutex_};
        return f();
    }

    std::pmr::memory_resource* upstream_;
    mutable std::mutex mutex_;
    std::map<void*, Block> live_;
    std::vector<Event> log_;
    std::vector<std::string> errors_;
    std::size_t allocations_ = 0;
    std::size_t deallocations_ = 0;
    std::size_t failures_ = 0;
    std::size_t live_bytes_ = 0;
    std::size_t successes_left_ = no_limit;
    std::size_t max_bytes_ = no_limit;
    bool failing_ = false;
};
}  // namespace evmalloc::test
