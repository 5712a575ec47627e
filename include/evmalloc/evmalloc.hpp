// evmalloc: everything but layout.hpp (which needs Boost.PFR).
#pragma once

// core
#include "allocation.hpp"
#include "code_hash.hpp"
#include "config.hpp"
#include "opcodes.hpp"
#include "result.hpp"
#include "sanitizer.hpp"
#include "table_id.hpp"
#include "tier.hpp"
#include "traits.hpp"
#include "upstream.hpp"

// resources
#include "buffer_pool.hpp"
#include "monotonic_arena.hpp"
#include "object_pool.hpp"
#include "slot_pool.hpp"
#include "statistics.hpp"
#include "synchronized.hpp"
#include "transaction_arena.hpp"

// components
#include "analysis.hpp"
#include "code_part.hpp"
#include "instruction_array.hpp"
#include "jumpdest_analysis.hpp"
#include "jumpdest_scan.hpp"
#include "memory.hpp"
#include "padded_code.hpp"
#include "stack.hpp"

// frame
#include "analysis_cache.hpp"
#include "frame_layout.hpp"
#include "frame_pool.hpp"
#include "stack_frame.hpp"

// composition
#include "evm_allocator.hpp"
