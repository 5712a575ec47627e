// evmalloc: everything but layout.hpp (which needs Boost.PFR).
#pragma once

#include "allocation.hpp"
#include "config.hpp"
#include "monotonic_arena.hpp"
#include "result.hpp"
#include "sanitizer.hpp"
#include "tier.hpp"
#include "traits.hpp"
