// The main of every test binary: GoogleTest plus a watchdog, so no test can
// hang. A test that runs past its deadline (DEEPFM_TEST_DEADLINE_S, default
// 120 s; sanitizer builds may raise it) is reported by name and the binary
// exits at once, instead of waiting for ctest to kill it minutes later with
// nothing said. Tests that wait on processes or threads also bound those
// waits themselves, so a broken hang detector fails in seconds.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace {

// The watchdog thread's state. Never destroyed: the thread waits on it until
// the process exits, and destroying a condition variable with a waiter
// would block exit.
struct WatchState {
  std::mutex mu;
  std::condition_variable cv;
  std::string name;
  std::chrono::steady_clock::time_point deadline;
  bool armed = false;
};

[[noreturn]] void Watch(WatchState* w, std::chrono::seconds limit) {
  std::unique_lock<std::mutex> l(w->mu);
  while (true) {
    if (!w->armed) {
      w->cv.wait(l);
      continue;
    }
    w->cv.wait_until(l, w->deadline);
    if (w->armed && std::chrono::steady_clock::now() >= w->deadline) {
      fprintf(stderr,
              "\n[ WATCHDOG ] %s ran past %lld s (DEEPFM_TEST_DEADLINE_S): it is stuck "
              "in a wait that never ended; exiting\n",
              w->name.c_str(), static_cast<long long>(limit.count()));
      fflush(stderr);
      std::_Exit(124);
    }
  }
}

class Watchdog : public ::testing::EmptyTestEventListener {
 public:
  explicit Watchdog(int seconds) : limit_(seconds), state_(new WatchState) {
    std::thread(Watch, state_, limit_).detach();
  }

  void OnTestStart(const ::testing::TestInfo& info) override {
    std::lock_guard<std::mutex> l(state_->mu);
    state_->name = std::string(info.test_suite_name()) + "." + info.name();
    state_->deadline = std::chrono::steady_clock::now() + limit_;
    state_->armed = true;
    state_->cv.notify_all();
  }
  void OnTestEnd(const ::testing::TestInfo&) override {
    std::lock_guard<std::mutex> l(state_->mu);
    state_->armed = false;
  }

 private:
  const std::chrono::seconds limit_;
  WatchState* const state_;  // leaked on purpose, see WatchState
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int seconds = 120;
  if (const char* env = std::getenv("DEEPFM_TEST_DEADLINE_S"))
    seconds = std::max(1, std::atoi(env));
  // Owned by GoogleTest's listener list from here on.
  ::testing::UnitTest::GetInstance()->listeners().Append(new Watchdog(seconds));
  return RUN_ALL_TESTS();
}
