// Catch2's main for builds without exceptions (the installed Catch2WithMain is built with
// them). Where Catch2 would throw (its own internal errors) it calls this instead.
#define CATCH_CONFIG_MAIN
#include "catch.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>

#if defined(CATCH_CONFIG_DISABLE_EXCEPTIONS_CUSTOM_HANDLER)
namespace Catch
{
[[noreturn]] void throw_exception(const std::exception& e)
{
    std::fprintf(stderr, "Catch2 needed to throw: %s\n", e.what());
    std::abort();
}
}  // namespace Catch
#endif
