// Test support: records EVMALLOC_ASSERT failures instead of aborting, for the lifetime of one
// AssertCapture. Not thread-safe: one capture at a time, on the test's own thread.
#pragma once

#include <evmalloc/config.hpp>

#include <string>
#include <vector>

namespace evmalloc::test
{
class AssertCapture
{
public:
    AssertCapture() noexcept : previous_{set_assert_handler(&record)} { failures().clear(); }
    ~AssertCapture() { set_assert_handler(previous_); }
    AssertCapture(const AssertCapture&) = delete;
    AssertCapture& operator=(const AssertCapture&) = delete;

    /// How many checks failed since this capture began.
    [[nodiscard]] std::size_t count() const noexcept { return failures().size(); }
    /// What each failed check reported (the condition or the message).
    [[nodiscard]] const std::vector<std::string>& messages() const noexcept { return failures(); }

private:
    static std::vector<std::string>& failures() noexcept
    {
        static std::vector<std::string> list;
        return list;
    }
    static void record(const char* what, const char*, int) noexcept
    {
#if defined(__cpp_exceptions)
        try
        {
            failures().emplace_back(what);
        }
        catch (...)
        {
        }
#else
        failures().emplace_back(what);
#endif
    }
    AssertHandler previous_;
};
}  // namespace evmalloc::test
