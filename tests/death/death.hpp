// Death tests: one executable holds several cases, the case to run is argv[1]. Each case must
// end the process with std::abort(); tests/death/check.cmake checks that it did and that stderr
// holds the expected text. A case that returns is a failure (the process exits normally).
#pragma once

#include <cstddef>
#include <cstdio>
#include <string_view>

namespace evmalloc::test
{
struct DeathCase
{
    std::string_view name;
    void (*run)();
};

template <std::size_t N>
int run_death_case(const DeathCase (&cases)[N], int argc, char** argv)
{
    if (argc != 2)
    {
        std::fprintf(stderr, "usage: %s CASE\n", argv[0]);
        return 2;
    }
    for (const DeathCase& c : cases)
    {
        if (c.name == argv[1])
        {
            c.run();
            std::fprintf(stderr, "%s: returned instead of aborting\n", argv[1]);
            return 0;
        }
    }
    std::fprintf(stderr, "no case named %s\n", argv[1]);
    return 3;
}
}  // namespace evmalloc::test
