// Monotonic timing helpers for step-time splits and benchmarks.
#pragma once

#include <chrono>
#include <cstdint>

namespace deepfm {

inline int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class Stopwatch {
 public:
  Stopwatch() : start_(NowNanos()) {}
  void Reset() { start_ = NowNanos(); }
  double Seconds() const { return (NowNanos() - start_) * 1e-9; }
  int64_t Micros() const { return (NowNanos() - start_) / 1000; }

 private:
  int64_t start_;
};

}  // namespace deepfm
