// evmalloc: the one macro layer for sanitizer annotations.
//
// Under AddressSanitizer, memory the library holds but has not handed out (free pool slots,
// an arena's unused tail, retained frame buffers) is poisoned, so a use after release is an
// ASan report instead of silent corruption. Without ASan every macro is a no-op.
//
//   EVMALLOC_POISON(p, n)    mark [p, p + n) unaddressable
//   EVMALLOC_UNPOISON(p, n)  mark [p, p + n) addressable again (before handing it out)
//   EVMALLOC_HAS_ASAN        1 when built with AddressSanitizer, else 0
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define EVMALLOC_HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EVMALLOC_HAS_ASAN 1
#endif
#endif
#ifndef EVMALLOC_HAS_ASAN
#define EVMALLOC_HAS_ASAN 0
#endif

#if EVMALLOC_HAS_ASAN
#include <sanitizer/asan_interface.h>
#define EVMALLOC_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define EVMALLOC_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define EVMALLOC_POISON(p, n) static_cast<void>(sizeof((p), (n)))
#define EVMALLOC_UNPOISON(p, n) static_cast<void>(sizeof((p), (n)))
#endif
