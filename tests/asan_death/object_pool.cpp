// Writes to a pool slot after release(): ASan must report a use-after-poison.
#include <evmalloc/object_pool.hpp>
#include <evmalloc/traits.hpp>

#include <cstdio>

int main()
{
    evmalloc::ObjectPool<evmalloc::Word> pool;
    evmalloc::Word* w = pool.acquire();
    w->limbs[0] = 1;
    pool.release(w);
    volatile std::uint64_t* limb = &w->limbs[2];
    *limb = 2;  // poisoned: reported here
    std::printf("not reported\n");
    return 0;
}
