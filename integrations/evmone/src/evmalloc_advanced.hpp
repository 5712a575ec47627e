// evmone on evmalloc: evmone's advanced interpreter on an evmalloc frame whose code part is
// advanced's own analysis (AdvancedCodePart, evmalloc_advanced.cpp), shared between calls; used
// by evmone's advanced_execution.cpp (evmone-advanced.patch).
//
// The code part holds, for code of n bytes, what evmone's analysis writes (advanced_analysis.cpp,
// analyze(op_table, code, storage), the stock analysis writing into our storage instead of
// vectors): the instruction array (n + 2: the OPX_BEGINBLOCK prologue and the final STOP), the
// 256-bit push values (n / 10 + 1: each PUSH9..PUSH32 takes at least ten bytes or ends the
// code), the sorted jumpdest offsets and their targets (n each, binary searched as in stock),
// and the padded code: about 28 bytes per code byte, where stock evmone reserves
// 16 (n + 2) + 32 (n + 1) bytes per call and grows two int32 vectors. The entry is built once
// per (code, revision): the op table is advanced's table of the call's revision
// (get_op_table(rev), one object per revision), and the cache keys entries by the code and the
// table's identity.
//
// A call takes one frame from the VM's advanced pool (its stack and Memory back evmone's
// ExecutionState, as in baseline) and the AdvancedExecutionState of its depth, made on the
// depth's first call and reused, where stock evmone makes one per call (a 4 KiB Memory and a
// 32 KiB stack). The output goes into the VM's pooled buffers (Frames::make_result), so a call
// in steady state allocates nothing. EVMONE_EVMALLOC_CACHE=0 gives the per-frame path (the
// analysis into the frame's own buffer on every call). EOF code keeps stock evmone's path.
#pragma once

#include <evmc/evmc.h>
#include <evmc/evmc.hpp>

#include <cstddef>

namespace evmalloc_evmone
{
/// advanced::execute(evmc_vm*, ...) for legacy code, on evmalloc: an EVMC execute that
/// allocates nothing in steady state. Errors of the frame (no memory, code above 2^31 - 2
/// bytes) are the call's status (EVMC_OUT_OF_MEMORY, EVMC_FAILURE), with no gas left.
[[nodiscard]] evmc_result execute_advanced(evmc_vm* vm, const evmc_host_interface& host,
    evmc_host_context* ctx, evmc_revision rev, const evmc_message& msg,
    evmc::bytes_view code) noexcept;
}  // namespace evmalloc_evmone

/// The bytes of an advanced code part (the analysis and the padded copy, no entry header) for
/// code of `code_size` bytes; C linkage, so that tools linked with either build can look for it.
extern "C" std::size_t evmalloc_evmone_advanced_part_bytes(std::size_t code_size) noexcept;
