// Test support: records what the assertion handler is given, for the lifetime of one
// AssertCapture: the leak reports (EVMALLOC_REPORT), which carry on. A failed check still
// aborts after the handler returns; those are tested in tests/death/. Not thread-safe: one
// capture at a time, on the test's own thread.
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

    /// How many reports the handler received since this capture began.
    [[nodiscard]] std::size_t count() const noexcept { return failures().size(); }
    /// The message of each report, in order.
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
        {}
#else
        failures().emplace_back(what);
#endif
    }
    AssertHandler previous_;
};
}  // namespace evmalloc::test
