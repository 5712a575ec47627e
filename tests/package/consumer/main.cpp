// A separate project using the installed evmalloc through find_package.
#include <evmalloc/evmalloc.hpp>

#include <cstdio>

int main()
{
    const auto tier = evmalloc::select_tier(24576);
    if (!tier || *tier != evmalloc::Tier::kb32)
        return 1;
    if (evmalloc::select_tier(evmalloc::max_code_size + 1).error() != evmalloc::Errc::code_too_large)
        return 2;
    std::puts("evmalloc package found and usable");
    return 0;
}
