// A separate project using the installed evmalloc through find_package: one call frame set up
// and prepared at the call site, its memory grown, and the transaction arena used and reset.
#include <evmalloc/evmalloc.hpp>

#include <array>
#include <cstdint>
#include <cstdio>

int main()
{
    const auto tier = evmalloc::select_tier(24576);
    if (!tier || *tier != evmalloc::Tier::kb32)
        return 1;
    if (evmalloc::select_tier(evmalloc::max_code_size + 1).error() !=
        evmalloc::Errc::code_too_large)
        return 2;

    evmalloc::EvmAllocator allocator;
    // PUSH1 2, PUSH1 3, ADD, JUMPDEST, STOP
    const std::array<std::uint8_t, 7> code{0x60, 0x02, 0x60, 0x03, 0x01, 0x5B, 0x00};
    auto frame = evmalloc::StackFrame<>::init(code.size(), allocator.frames());
    if (!frame)
        return 3;
    const evmalloc::StackFrame<>::OpTable ops{};
    if (!frame->prepare(code, ops) || frame->analysis().instruction_count() != 6 ||
        frame->metadata()[1] != 3 || !frame->analysis().is_jumpdest(5))
        return 4;
    const auto gas = frame->memory().expand(0, 32);
    if (!gas || *gas != 3)
        return 5;

    std::pmr::vector<int> logs{&allocator.arena()};
    logs.assign(100, 7);
    allocator.reset_arena();
    std::puts("evmalloc package found and usable");
    return 0;
}
