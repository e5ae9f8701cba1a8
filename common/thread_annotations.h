// Clang's thread-safety annotations (checked with -Wthread-safety under
// clang; GCC ignores them), so a reader sees which mutex guards what.
// Prefixed: gRPC's Abseil headers define the unprefixed names.
#pragma once

#if defined(__clang__)
#define DEEPFM_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define DEEPFM_THREAD_ANNOTATION(x)
#endif

#define DEEPFM_GUARDED_BY(x) DEEPFM_THREAD_ANNOTATION(guarded_by(x))
#define DEEPFM_REQUIRES(...) DEEPFM_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define DEEPFM_EXCLUDES(...) DEEPFM_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
