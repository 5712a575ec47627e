// Reads arena memory after reset(): ASan must report a use-after-poison.
#include <evmalloc/monotonic_arena.hpp>

#include <array>
#include <cstdio>

int main()
{
    alignas(64) std::array<std::byte, 256> buffer{};
    evmalloc::MonotonicArena arena{buffer};
    auto* p = static_cast<volatile unsigned char*>(arena.try_allocate(32, 8));
    p[0] = 1;
    arena.reset();
    std::printf("%d\n", p[0]);  // poisoned: reported here
    return 0;
}
