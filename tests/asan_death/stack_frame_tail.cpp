// Writes one byte past the last part of a prepared frame's buffer (after its padded code, the
// code filling the tier): ASan must report a use-after-poison. In 0.2.0 the carving step's
// arena unpoisoned the whole buffer again on return, and this write went unseen.
#include <evmalloc/stack_frame.hpp>

#include <cstdint>
#include <cstdio>
#include <vector>

int main()
{
    evmalloc::FramePool<evmalloc::JumpdestTraits> pool;
    auto frame = evmalloc::StackFrame<evmalloc::JumpdestTraits>::init(4096, pool);
    const std::vector<std::uint8_t> code(frame ? frame->code_capacity() : 0, 0x5B);
    if (!frame || !frame->prepare(code))
        return 1;
    // The padded code is the last part: the code, then its 33 zero bytes, then the tail.
    auto* const past = const_cast<volatile std::uint8_t*>(
        frame->analysis().code().data() + code.size() + evmalloc::PaddedCode::padding);
    std::printf("%zu bytes of code, tail of %zu bytes\n", code.size(),
        static_cast<std::size_t>(reinterpret_cast<const std::uint8_t*>(frame->stack().data()) +
                                 frame->buffer_size() - const_cast<std::uint8_t*>(past)));
    *past = 1;  // poisoned: reported here
    return 0;
}
