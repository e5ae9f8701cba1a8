// Exit codes of the `deepfm ps` and `deepfm worker` tasks: the contract
// between a task and whatever restarts it (the local launcher, or an
// engine's restart policy).
#pragma once

#include "common/status.h"

namespace deepfm {

inline constexpr int kExitOk = 0;
// The task refused to run as configured (a corrupt checkpoint, a changed
// data layout, bad data): a restart would fail the same way.
inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;  // bad flags
// A peer died or timed out (a shard restarting, a lost connection): the
// task may well succeed when restarted. BSD's EX_TEMPFAIL.
inline constexpr int kExitTemporary = 75;

// The exit code for a task that stopped on `s`.
inline int ExitCodeFor(const Status& s) {
  if (s.ok()) return kExitOk;
  switch (static_cast<int>(s.code())) {
    case static_cast<int>(Code::kUnavailable):
    case static_cast<int>(Code::kAborted):
    case 4:  // DEADLINE_EXCEEDED, as gRPC reports it
      return kExitTemporary;
    default:
      return kExitRefused;
  }
}

}  // namespace deepfm
