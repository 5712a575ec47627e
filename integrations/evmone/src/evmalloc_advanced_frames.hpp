// evmone on evmalloc: what an evmone VM holds for its advanced interpreter (evmone.patch adds an
// AdvancedFramesHandle member to evmone::VM). The frames themselves are defined in
// evmalloc_advanced.cpp; this header names them only, so vm.hpp needs none of the advanced
// interpreter's headers.
#pragma once

#include <memory>

namespace evmalloc_evmone
{
class AdvancedFrames;

struct AdvancedFramesDeleter
{
    void operator()(AdvancedFrames* frames) const noexcept;
};

/// Created on the VM's first advanced call; one per VM, like Frames.
using AdvancedFramesHandle = std::unique_ptr<AdvancedFrames, AdvancedFramesDeleter>;
}  // namespace evmalloc_evmone
