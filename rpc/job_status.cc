#include "rpc/job_status.h"

#include <cstdio>

namespace deepfm::rpc {

StuckTrainer FindStuckTrainer(const ps::JobStatusResponse& status, double timeout_s) {
  char buf[256];
  for (const ps::WorkerStatus& w : status.workers()) {
    if (w.done() || w.phase() == ps::FINISHED) continue;
    const char* phase = ps::WorkerPhase_Name(w.phase()).c_str();
    if (w.phase() == ps::FAILED) {
      snprintf(buf, sizeof(buf),
               "trainer %u failed (its last heartbeat said so; its own log says why)",
               w.task_index());
      return {static_cast<int>(w.task_index()), buf};
    }
    if (w.seconds_since_heartbeat() > timeout_s) {
      snprintf(buf, sizeof(buf),
               "trainer %u sent no heartbeat for %.0f s (last phase %s, local step %lld; "
               "--hang_timeout %.0f s)",
               w.task_index(), w.seconds_since_heartbeat(),
               w.phase() == ps::PHASE_UNKNOWN ? "none: never heard from" : phase,
               static_cast<long long>(w.local_step()), timeout_s);
      return {static_cast<int>(w.task_index()), buf};
    }
    if (w.phase() != ps::WAITING && w.seconds_since_progress() > timeout_s) {
      snprintf(buf, sizeof(buf),
               "trainer %u made no progress for %.0f s in phase %s (local step %lld; "
               "--hang_timeout %.0f s)",
               w.task_index(), w.seconds_since_progress(), phase,
               static_cast<long long>(w.local_step()), timeout_s);
      return {static_cast<int>(w.task_index()), buf};
    }
  }
  return {};
}

}  // namespace deepfm::rpc
