// Reads the byte after the 33 zero bytes that follow a prepared frame's code: inside the padded
// code part carved for the tier, but beyond what the code needs. ASan must report a
// use-after-poison: an interpreter may read up to code.size() + 33 bytes, no further.
#include <evmalloc/stack_frame.hpp>

#include <array>
#include <cstdint>
#include <cstdio>

int main()
{
    evmalloc::FramePool<> pool;
    auto frame = evmalloc::StackFrame<>::init(100, pool);
    const std::array<std::uint8_t, 100> code{0x5B};
    if (!frame || !frame->prepare(code, evmalloc::StackFrame<>::OpTable{}))
        return 1;
    const auto* const padded =
        static_cast<const volatile std::uint8_t*>(frame->analysis().code().data());
    int sum = 0;
    for (std::size_t i = 0; i < code.size() + evmalloc::PaddedCode::padding; ++i)
        sum += padded[i];  // the code and its padding: addressable
    std::printf("%d\n", sum);
    std::printf("%d\n", padded[code.size() + evmalloc::PaddedCode::padding]);  // reported here
    return 0;
}
