// The `criteo` preset's golden jobs: fixed-seed jobs of the real `deepfm`
// program whose per-interval losses, eval AUC and log loss, and final shard
// files' sizes and CRC-32C were recorded before the feature spec existed
// (commit de8b69f, the trainer with 13 and 26 compiled in). The preset must
// reproduce them bit for bit: same keys, same row creation order on the
// shards, same arithmetic. Each ISA path has its own figures (their GEMMs
// sum in different orders); a path this CPU lacks is skipped, saying so.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/checkpoint_manifest.h"
#include "common/report.h"
#include "obs/event_reader.h"
#include "worker/dnn_kernels.h"

namespace {

namespace fs = std::filesystem;

struct Golden {
  const char* name;
  const char* isa;
  const char* flags;
  std::vector<std::pair<uint64_t, uint32_t>> files;  // bytes, crc32c of ckpt-30's shard files
  double auc, logloss;
  std::vector<float> losses;  // train/loss every 5 steps (generic fp32 only; empty: not checked)
};

const std::vector<float> kGenericLosses = {0.5972914099693298f, 0.5838189721107483f,
                                           0.5733768939971924f, 0.5436572432518005f,
                                           0.5614004731178284f, 0.5616598129272461f};

const Golden kGoldens[] = {
    {"generic fp32 stand-alone", "generic", "--standalone", {{7477261, 291090307u}},
     0.6299468106644667, 0.5521258673097069, kGenericLosses},
    {"generic fp32 1x1", "generic", "", {{7477261, 291090307u}}, 0.6299468106644667,
     0.5521258673097069, kGenericLosses},
    {"generic bf16 stand-alone", "generic", "--standalone --bf16", {{7477261, 892397538u}},
     0.6298737275890914, 0.5521551250228065, {}},
    {"generic fp32 2 shards", "generic", "--ps_num=2",
     {{3933971, 793826625u}, {3543404, 3685871051u}}, 0.6299468106644667, 0.5521258673097069,
     kGenericLosses},
    {"avx2 fp32 1x1", "avx2", "", {{7477261, 1306175292u}}, 0.6299469752659879,
     0.5521258658951689, {}},
    {"avx512 fp32 1x1", "avx512", "", {{7477261, 461210016u}}, 0.6299469752659879,
     0.5521258658618138, {}},
};

void PrintTo(const Golden& g, std::ostream* os) { *os << g.name; }

int Shell(const std::string& cmd) {
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

class CriteoGoldenTest : public ::testing::TestWithParam<Golden> {
 public:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("deepfm_golden_" + std::to_string(getpid())));
    fs::remove_all(*root_);
    ASSERT_EQ(Shell(std::string(DEEPFM_BIN) + " gen-data --rows=20000 --eval_rows=4000 --seed=7 --out=" +
                  (*root_ / "data").string() + " >/dev/null 2>&1"),
              0);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static fs::path* root_;
};
fs::path* CriteoGoldenTest::root_ = nullptr;

TEST_P(CriteoGoldenTest, ReproducesTheRecordedJob) {
  const Golden& g = GetParam();
  deepfm::dnn::Isa isa;
  ASSERT_TRUE(deepfm::dnn::ParseIsa(g.isa, &isa));
  if (deepfm::dnn::KernelsFor(isa) == nullptr) {
    GTEST_SKIP() << "this CPU has no " << g.isa << " path; its golden job is not checked here";
  }
  const fs::path job = *root_ / (std::string("job_") + std::to_string(reinterpret_cast<uintptr_t>(&g)));
  const std::string log = (job.string() + ".log");
  const std::string cmd = std::string("DEEPFM_ISA=") + g.isa + " " + DEEPFM_BIN +
                          " train --feature_spec=criteo --data_location=" + (*root_ / "data").string() +
                          " --steps=30 --staleness=0 --hidden_units=64,32 --seed=5 --batch_size=256"
                          " --dnn_threads=1 --log_every=5 --save_steps=15 --checkpoint=" +
                          job.string() + " " + g.flags + " >" + log + " 2>&1";
  ASSERT_EQ(Shell(cmd), 0) << cmd << "\n" << log;

  deepfm::Manifest m;
  const deepfm::Status s = deepfm::ReadAndVerifyManifest((job / "ckpt-30").string(), &m);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(m.files.size(), g.files.size());
  for (size_t i = 0; i < g.files.size(); ++i) {
    EXPECT_EQ(m.files[i].bytes, g.files[i].first) << g.name << ": " << m.files[i].name;
    EXPECT_EQ(m.files[i].crc32c, g.files[i].second) << g.name << ": " << m.files[i].name;
  }
  deepfm::JobMetrics metrics;
  ASSERT_TRUE(deepfm::ReadJobMetrics((job / "metrics.json").string(), &metrics).ok());
  EXPECT_EQ(metrics.eval.auc, g.auc) << g.name;
  EXPECT_EQ(metrics.eval.logloss, g.logloss) << g.name;
  if (!g.losses.empty()) {
    std::vector<deepfm::obs::Scalar> scalars;
    ASSERT_TRUE(deepfm::obs::ReadScalars((job / "train").string(), &scalars).ok());
    std::vector<float> losses;
    for (const auto& sc : scalars) {
      if (sc.tag == "loss") losses.push_back(static_cast<float>(sc.value));
    }
    EXPECT_EQ(losses, g.losses) << g.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, CriteoGoldenTest, ::testing::ValuesIn(kGoldens),
                         [](const ::testing::TestParamInfo<Golden>& info) {
                           std::string n = info.param.name;
                           for (char& c : n) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

}  // namespace
