// The shard's sweeper thread alone: periodic passes, a requested pass that
// is forced and prompt, and a stop that waits for the pass in progress.
#include "ps/sweeper.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace deepfm::ps {
namespace {

using namespace std::chrono_literals;

TEST(SweeperTest, PassesRunEveryPollUnforced) {
  std::atomic<int> passes{0}, forced{0};
  {
    Sweeper s([&](bool f) { ++passes, forced += f; }, 5ms);
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_GE(passes.load(), 5);
  EXPECT_EQ(forced.load(), 0);
}

TEST(SweeperTest, ARequestRunsOneForcedPassWithoutWaitingOutThePoll) {
  std::atomic<int> forced{0}, passes{0};
  Sweeper s([&](bool f) { ++passes, forced += f; }, 60s);
  const auto start = std::chrono::steady_clock::now();
  s.Request();
  while (forced.load() == 0 && std::chrono::steady_clock::now() - start < 5s) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(forced.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(passes.load(), 1) << "one request, one pass";
}

TEST(SweeperTest, StoppingWaitsForThePassInProgressAndStartsNoOther) {
  std::atomic<bool> in_pass{false};
  std::atomic<int> passes{0};
  auto s = std::make_unique<Sweeper>(
      [&](bool) {
        in_pass = true;
        std::this_thread::sleep_for(100ms);
        ++passes;
        in_pass = false;
      },
      1ms);
  while (!in_pass.load()) std::this_thread::sleep_for(1ms);
  s.reset();
  EXPECT_FALSE(in_pass.load()) << "the pass was cut short";
  const int after = passes.load();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(passes.load(), after);
}

}  // namespace
}  // namespace deepfm::ps
