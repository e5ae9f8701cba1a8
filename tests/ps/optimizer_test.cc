// Each optimizer against values worked out by hand from DESIGN.md §4 (the
// expected numbers come from the formulas evaluated in double precision).
#include "ps/optimizer.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace deepfm::ps {
namespace {

std::unique_ptr<Optimizer> Make(OptimizerType type, float lr = 0.1f) {
  OptimizerOptions o;
  o.type = type;
  o.learning_rate = lr;
  std::unique_ptr<Optimizer> opt;
  EXPECT_TRUE(MakeOptimizer(o, &opt).ok());
  return opt;
}

// Runs `steps` single-element pushes and returns w after each.
std::vector<float> RunPushes(const Optimizer& opt, const std::vector<int64_t>& steps,
                       const std::vector<float>& grads, std::vector<float>* slots_out = nullptr) {
  float w = 1.0f;
  std::vector<float> slots(opt.SlotFloats(1));
  opt.InitSlots(slots.data(), 1);
  VariableOptState state;
  std::vector<float> out;
  for (size_t i = 0; i < steps.size(); ++i) {
    const PushConstants c = opt.BeginPush(&state, steps[i]);
    opt.Apply(&w, slots.data(), &grads[i], 1, c);
    out.push_back(w);
  }
  if (slots_out) *slots_out = slots;
  return out;
}

TEST(OptimizerTest, SgdStepsByLearningRate) {
  auto opt = Make(OptimizerType::kSgd);
  EXPECT_EQ(opt->SlotFloats(17), 0);
  auto w = RunPushes(*opt, {1, 2}, {0.5f, -0.2f});
  EXPECT_FLOAT_EQ(w[0], 0.95f);
  EXPECT_FLOAT_EQ(w[1], 0.97f);
}

TEST(OptimizerTest, AdamUsesGlobalStepForBiasCorrection) {
  auto opt = Make(OptimizerType::kAdam);
  EXPECT_EQ(opt->SlotFloats(17), 34);
  auto w = RunPushes(*opt, {1, 2, 3}, {0.5f, -0.2f, 0.3f});
  EXPECT_NEAR(w[0], 0.9000000632455132, 1e-6);
  EXPECT_NEAR(w[1], 0.8654394987576699, 1e-6);
  EXPECT_NEAR(w[2], 0.8109954907412902, 1e-6);
  // A variable first touched at global step 10 is corrected with t = 10, 11, 12.
  auto late = RunPushes(*opt, {10, 11, 12}, {0.5f, -0.2f, 0.3f});
  EXPECT_NEAR(late[0], 0.9515573920040249, 1e-6);
  EXPECT_NEAR(late[1], 0.9291652740201722, 1e-6);
  EXPECT_NEAR(late[2], 0.8881346244095975, 1e-6);
}

TEST(OptimizerTest, AdamAsyncKeepsItsOwnBetaPowers) {
  auto opt = Make(OptimizerType::kAdamAsync);
  // Whatever global step the pushes carry, the variable's own powers advance
  // once per push: the result equals Adam at t = 1, 2, 3.
  auto w = RunPushes(*opt, {10, 11, 12}, {0.5f, -0.2f, 0.3f});
  EXPECT_NEAR(w[0], 0.9000000632455132, 1e-6);
  EXPECT_NEAR(w[1], 0.8654394987576699, 1e-6);
  EXPECT_NEAR(w[2], 0.8109954907412902, 1e-6);
  VariableOptState s;
  opt->BeginPush(&s, 1);
  opt->BeginPush(&s, 1);
  EXPECT_NEAR(s.beta1_power, 0.9 * 0.9 * 0.9, 1e-6);
  EXPECT_NEAR(s.beta2_power, 0.999 * 0.999 * 0.999, 1e-6);
}

// beta1 = 0 makes beta1_power 0 after the first push, which once meant "not
// started" and restarted bias correction on every push. Worked out in
// double precision with b1 = 0, b2 = 0.999, lr = 0.1: m = g, the powers
// before push t are (0, 0.999^t), a_t = 0.1 * sqrt(1 - 0.999^t).
// (Restarting every push would give 0.90000006, 0.93715513, 0.88845413.)
TEST(OptimizerTest, AdamAsyncWithZeroBeta1KeepsItsBiasCorrectionGoing) {
  OptimizerOptions o;
  o.type = OptimizerType::kAdamAsync;
  o.learning_rate = 0.1f;
  o.beta1 = 0.0f;
  std::unique_ptr<Optimizer> opt;
  ASSERT_TRUE(MakeOptimizer(o, &opt).ok());
  auto w = RunPushes(*opt, {1, 2, 3}, {0.5f, -0.2f, 0.3f});
  EXPECT_NEAR(w[0], 0.9000000632455132, 1e-6);
  EXPECT_NEAR(w[1], 0.952532121267035, 1e-6);
  EXPECT_NEAR(w[2], 0.8682216859959556, 1e-6);
  VariableOptState s;
  EXPECT_FALSE(s.started);
  opt->BeginPush(&s, 1);
  opt->BeginPush(&s, 2);
  EXPECT_TRUE(s.started);
  EXPECT_EQ(s.beta1_power, 0.0);
  EXPECT_NEAR(s.beta2_power, 0.999 * 0.999 * 0.999, 1e-6);  // beta2 is a float
}

// Epsilon in the denominator, for both Adam flavours: a zero first gradient
// (m = v = 0) must leave the weight unchanged instead of making 0/0 = NaN,
// and a large epsilon damps the step by the formula:
//   t=1, g=0.5: a = 0.1*sqrt(1-0.999)/(1-0.9), m = 0.05, v = 0.00025,
//   w = 1 - a*m/(sqrt(v) + 0.1) = 0.9863472940504185
//   t=2, g=-0.2: w = 0.981320106090418 (same formula, double precision).
TEST(OptimizerTest, AdamEpsilonGuardsTheDenominator) {
  for (OptimizerType type : {OptimizerType::kAdam, OptimizerType::kAdamAsync}) {
    SCOPED_TRACE(OptimizerName(type));
    auto opt = Make(type);
    auto zero = RunPushes(*opt, {1, 2}, {0.0f, 0.0f});
    EXPECT_EQ(zero[0], 1.0f);
    EXPECT_EQ(zero[1], 1.0f);
    OptimizerOptions o;
    o.type = type;
    o.learning_rate = 0.1f;
    o.epsilon = 0.1f;
    std::unique_ptr<Optimizer> damped;
    ASSERT_TRUE(MakeOptimizer(o, &damped).ok());
    auto w = RunPushes(*damped, {1, 2}, {0.5f, -0.2f});
    EXPECT_NEAR(w[0], 0.9863472940504185, 1e-6);
    EXPECT_NEAR(w[1], 0.981320106090418, 1e-6);
  }
}

TEST(OptimizerTest, AdagradAccumulatesSquares) {
  auto opt = Make(OptimizerType::kAdagrad);
  std::vector<float> slots;
  auto w = RunPushes(*opt, {1, 2, 3}, {0.5f, -0.2f, 0.3f}, &slots);
  EXPECT_NEAR(w[0], 0.9154845745271484, 1e-6);
  EXPECT_NEAR(w[1], 0.9475102052881658, 1e-6);
  EXPECT_NEAR(w[2], 0.9042089350989438, 1e-6);
  EXPECT_NEAR(slots[0], 0.48, 1e-6);
}

TEST(OptimizerTest, AdagradDecayDecaysAtMostOncePerUpdate) {
  OptimizerOptions o;
  o.type = OptimizerType::kAdagradDecay;
  o.learning_rate = 0.1f;
  o.decay_period = 2;
  o.decay_rate = 0.5f;
  std::unique_ptr<Optimizer> opt;
  ASSERT_TRUE(MakeOptimizer(o, &opt).ok());
  EXPECT_EQ(opt->SlotFloats(16), 17);
  std::vector<float> slots;
  auto w = RunPushes(*opt, {1, 2, 3, 8, 9}, {0.5f, -0.2f, 0.3f, 1.0f, 0.4f}, &slots);
  EXPECT_NEAR(w[0], 0.9154845745271484, 1e-6);  // 1/2 = 0: no decay
  EXPECT_NEAR(w[1], 0.9586176838085237, 1e-6);  // 2/2 = 1 > 0: decay to max(.175, .1)
  EXPECT_NEAR(w[2], 0.9042962361830126, 1e-6);
  EXPECT_NEAR(w[3], 0.8111469496164881, 1e-6);  // 8/2 = 4 > 1: one decay only
  EXPECT_NEAR(w[4], 0.764529625876643, 1e-6);   // 9/2 = 4 > 2: decays again
  EXPECT_NEAR(slots[0], 0.73625, 1e-6);
  EXPECT_EQ(slots[1], 3.0f);  // the row's decay power
}

TEST(OptimizerTest, AdagradDecayFloorsTheAccumulator) {
  OptimizerOptions o;
  o.type = OptimizerType::kAdagradDecay;
  o.decay_period = 1;
  o.decay_rate = 0.1f;
  std::unique_ptr<Optimizer> opt;
  ASSERT_TRUE(MakeOptimizer(o, &opt).ok());
  std::vector<float> slots;
  RunPushes(*opt, {1, 2, 3}, {0.0f, 0.0f, 0.0f}, &slots);
  EXPECT_FLOAT_EQ(slots[0], 0.1f);
}

TEST(OptimizerTest, RejectsBadOptions) {
  std::unique_ptr<Optimizer> opt;
  OptimizerOptions o;
  o.learning_rate = -1;
  EXPECT_FALSE(MakeOptimizer(o, &opt).ok());
  o = OptimizerOptions();
  o.beta1 = 1.0f;
  EXPECT_FALSE(MakeOptimizer(o, &opt).ok());
  OptimizerType t;
  EXPECT_FALSE(ParseOptimizerType("adamw", &t).ok());
  EXPECT_TRUE(ParseOptimizerType("adagraddecay", &t).ok());
  EXPECT_EQ(t, OptimizerType::kAdagradDecay);
}

}  // namespace
}  // namespace deepfm::ps
