// The one flag table: which command takes which flag, up-front checks naming
// the flag, what the launcher forwards to each task, and the task options
// built from flags and a cluster spec.
#include "launcher/job_flags.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/checkpoint_manifest.h"
#include "launcher/local_cluster.h"
#include "launcher/task_command.h"
#include "worker/dnn_kernels.h"

namespace deepfm::launcher {
namespace {

namespace fs = std::filesystem;

FlagSet Parsed(unsigned commands, const std::vector<std::string>& args) {
  FlagSet f = FlagsOf(commands, "test");
  Status s = f.Parse(args);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return f;
}

ClusterSpec Spec(const std::string& json) {
  ClusterSpec spec;
  Status s = ParseClusterJson(json, "spec", &spec);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return spec;
}

class JobFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = fs::path(::testing::TempDir()) / ("job_flags_" + std::to_string(getpid()));
    fs::create_directories(data_);
    // One Criteo-layout line (40 columns), so --feature_spec=auto finds the criteo preset.
    ASSERT_TRUE(WriteFileAtomic((data_ / "train.csv").string(), "1" + std::string(39, ',') + "\n").ok());
    ASSERT_TRUE(WriteFileAtomic((data_ / "eval.txt").string(), "").ok());
  }
  void TearDown() override { fs::remove_all(data_); }
  fs::path data_;
};

TEST_F(JobFlagsTest, EachCommandTakesItsOwnFlags) {
  EXPECT_TRUE(FlagsOf(kWorker, "w").Has("batch_size"));
  EXPECT_FALSE(FlagsOf(kPs, "p").Has("batch_size"));
  EXPECT_TRUE(FlagsOf(kPs, "p").Has("beta1"));
  EXPECT_FALSE(FlagsOf(kWorker, "w").Has("beta1"));
  EXPECT_TRUE(FlagsOf(kTrain, "t").Has("ps_num"));
  EXPECT_FALSE(FlagsOf(kWorker, "w").Has("ps_num"));
  EXPECT_TRUE(FlagsOf(kStatus, "s").Has("auth_token_file"));
  FlagSet ps = FlagsOf(kPs, "ps");
  Status s = ps.Parse({"--batch_size=5"});
  EXPECT_NE(s.message().find("unknown flag --batch_size"), std::string::npos) << s.message();
}

TEST_F(JobFlagsTest, BadValuesNameTheFlagAndWhatItAccepts) {
  struct Case {
    unsigned command;
    std::vector<std::string> args;
    std::string expect;
  } cases[] = {
      {kTrain, {"--beta1=1"}, "--beta1=1: must lie in [0, 1)"},
      // One past each end of an integer range.
      {kTrain, {"--batch_size=1048577"}, "--batch_size=1048577: must lie in [1, 1048576]"},
      {kTrain, {"--batch_size=0"}, "--batch_size=0: must lie in [1, 1048576]"},
      {kTrain, {"--decay_rate=0"}, "--decay_rate=0: must lie in (0, 1]"},
      {kTrain, {"--data_format=json"}, "--data_format=json: must be one of auto, csv, tsv"},
      {kTrain, {"--max_bad_fraction=2"}, "--max_bad_fraction=2: must lie in [0, 1]"},
      {kTrain, {"--learning_rate=nan"}, "--learning_rate=nan: must be a positive number"},
      {kTrain, {"--hidden_units=64,,32"}, "'' is not a layer width"},
      {kTrain, {"--hidden_units=0"}, "'0' is not a layer width"},
      {kTrain, {"--hang_timeout=0"}, "--hang_timeout=0: must lie in"},
      {kTrain, {"--launch_prefix=ssh {host}"}, "--launch_prefix needs --cluster_spec"},
      {kTrain,
       {"--cluster_spec=x.json", "--ps_num=3"},
       "--ps_num and --worker_num shape a local job"},
      {kPs, {"--ps_threads=0"}, "--ps_threads=0: must lie in [1, 1024]"},
      {kGenData, {"--format=parquet"}, "--format=parquet: must be one of csv, tsv"},
      {kTrain, {"--min_frequency=3"}, "--min_frequency shapes the export at the job's end"},
      {kTrain, {"--export_values=bf16"}, "--export_values shapes the export"},
      {kExport, {"--checkpoint=j", "--export_values=fp16"}, "--export_values=fp16: must be one of"},
      {kExport, {"--out=x"}, "--checkpoint is required"},
      {kPredict, {"--forward=fp64", "--model=m"}, "--forward=fp64: must be one of auto, fp32"},
      {kServe, {"--port=8500"}, "--model is required"},
      {kServe, {"--batch_wait_us=-1", "--model=m"}, "--batch_wait_us=-1: must lie in [0, 1000000]"},
      {kServe, {"--max_batch_rows=0", "--model=m"}, "--max_batch_rows=0: must lie in [1, 65536]"},
  };
  for (const Case& c : cases) {
    const FlagSet f = Parsed(c.command, c.args);
    Status s = ValidateFlags(f, static_cast<Command>(c.command));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.args[0];
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << c.args[0] << ": " << s.message();
  }
  // Defaults are valid for every command that does not need data.
  for (Command c : {kPs, kGenData, kStatus})
    EXPECT_TRUE(ValidateFlags(FlagsOf(c, "x"), c).ok()) << c;
  EXPECT_TRUE(ValidateFlags(FlagsOf(kTrain, "x"), kTrain).ok())
      << "the default data folder may be empty";
  EXPECT_TRUE(ValidateFlags(Parsed(kTrain, {"--export", "--min_frequency=3"}), kTrain).ok());
  // A worker needs its data where the flag says.
  const FlagSet worker = Parsed(kWorker, {"--data_location=" + (data_ / "nope").string()});
  Status s = ValidateFlags(worker, kWorker);
  EXPECT_NE(s.message().find("looked for train.csv, train.txt, train.tsv"), std::string::npos)
      << s.message();
  EXPECT_TRUE(ValidateFlags(Parsed(kWorker, {"--data_location=" + data_.string()}), kWorker).ok());
  fs::remove(data_ / "eval.txt");
  s = ValidateFlags(Parsed(kWorker, {"--data_location=" + data_.string()}), kWorker);
  EXPECT_NE(s.message().find("no evaluation data"), std::string::npos) << s.message();
  EXPECT_TRUE(
      ValidateFlags(Parsed(kWorker, {"--data_location=" + data_.string(), "--no_eval"}), kWorker)
          .ok());
}

TEST_F(JobFlagsTest, ForwardsOnlyWhatTheUserSetAndTheTaskReads) {
  const FlagSet f = Parsed(kTrain, {"--batch_size=64", "--beta1=0.5", "--ps_num=3",
                                    "--checkpoint=/j", "--learning_rate=0.01"});
  EXPECT_EQ(ForwardedFlags(f, kWorker, {"checkpoint"}),
            (std::vector<std::string>{"--batch_size=64", "--learning_rate=0.01"}));
  EXPECT_EQ(ForwardedFlags(f, kPs, {"checkpoint"}),
            (std::vector<std::string>{"--learning_rate=0.01", "--beta1=0.5"}));
  EXPECT_EQ(ForwardedFlags(f, kPs, {}),
            (std::vector<std::string>{"--learning_rate=0.01", "--beta1=0.5", "--checkpoint=/j"}));
}

// --restore_checkpoint is checked up front, forwarded to the shards only, and
// reaches their task options; --fall_back_to_good_checkpoint is the
// launcher's to set on a ps task it restarts.
TEST_F(JobFlagsTest, RestoreCheckpointIsCheckedAndReachesThePsTask) {
  const fs::path job = data_ / "job";
  fs::create_directories(job / "ckpt-20");
  const std::string at = "--checkpoint=" + job.string();
  EXPECT_TRUE(
      ValidateFlags(Parsed(kTrain, {at, "--restore_checkpoint=ckpt-20"}), kTrain).ok());
  Status s = ValidateFlags(Parsed(kTrain, {at, "--restore_checkpoint=ckpt-30"}), kTrain);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find((job / "ckpt-30").string()), std::string::npos) << s.message();
  s = ValidateFlags(Parsed(kTrain, {"--restore_checkpoint=ckpt-20"}), kTrain);
  EXPECT_NE(s.message().find("needs --checkpoint"), std::string::npos) << s.message();
  for (const char* bad : {"../ckpt-20", "ckpt-20.tmp", "20", "ckpt-"}) {
    s = ValidateFlags(Parsed(kPs, {std::string("--restore_checkpoint=") + bad}), kPs);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("ckpt-<step>"), std::string::npos) << s.message();
  }
  EXPECT_FALSE(FlagsOf(kWorker, "w").Has("restore_checkpoint"));
  EXPECT_FALSE(FlagsOf(kTrain, "t").Has("fall_back_to_good_checkpoint"));

  const FlagSet f = Parsed(kTrain, {at, "--restore_checkpoint=ckpt-20"});
  EXPECT_EQ(ForwardedFlags(f, kPs, {"checkpoint"}),
            std::vector<std::string>{"--restore_checkpoint=ckpt-20"});
  EXPECT_TRUE(ForwardedFlags(f, kWorker, {"checkpoint"}).empty());

  const ClusterSpec spec = Spec(
      R"({"cluster":{"ps":["127.0.0.1:7001"],"worker":["127.0.0.1:7003"]},"task":{"type":"ps","index":0}})");
  ps::PsTaskOptions o;
  ASSERT_TRUE(MakePsTask(Parsed(kPs, {"--restore_checkpoint=ckpt-20"}), spec, rpc::Security(), &o)
                  .ok());
  EXPECT_EQ(o.restore_checkpoint, "ckpt-20");
  EXPECT_FALSE(o.fall_back_to_good_checkpoint);
  ASSERT_TRUE(
      MakePsTask(Parsed(kPs, {"--fall_back_to_good_checkpoint"}), spec, rpc::Security(), &o).ok());
  EXPECT_EQ(o.restore_checkpoint, "");
  EXPECT_TRUE(o.fall_back_to_good_checkpoint);
}

TEST_F(JobFlagsTest, PsTaskFromTheSpec) {
  const ClusterSpec local =
      Spec(R"({"cluster":{"ps":["127.0.0.1:7001","127.0.0.1:7002"],"worker":["127.0.0.1:7003"],
    "chief":["127.0.0.1:7004"]},"task":{"type":"ps","index":1}})");
  ps::PsTaskOptions o;
  Status s =
      MakePsTask(Parsed(kPs, {"--checkpoint=/jobs/a", "--optimizer=adagrad", "--decay_period=7"}),
                 local, rpc::Security(), &o);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(o.name, "ps:1");
  EXPECT_EQ(o.shard.shard_index, 1u);
  EXPECT_EQ(o.shard.num_shards, 2u);
  EXPECT_EQ(o.shard.num_trainers, 2u);
  EXPECT_EQ(o.shard.optimizer.type, ps::OptimizerType::kAdagrad);
  EXPECT_EQ(o.shard.optimizer.decay_period, 7);
  EXPECT_EQ(o.server.bind, "127.0.0.1");
  EXPECT_EQ(o.server.port, 7002);
  EXPECT_EQ(o.server.checkpoint_root, "/jobs/a");

  const ClusterSpec remote =
      Spec(R"({"cluster":{"ps":["h1:7001"],"worker":["h2:7003"]},"task":{"type":"ps","index":0}})");
  s = MakePsTask(Parsed(kPs, {}), remote, rpc::Security(), &o);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("would listen on 0.0.0.0:7001 without a token"), std::string::npos)
      << s.message();
  EXPECT_TRUE(MakePsTask(Parsed(kPs, {"--insecure"}), remote, rpc::Security(), &o).ok());
  EXPECT_TRUE(
      MakePsTask(Parsed(kPs, {}), remote, rpc::Security::WithToken(rpc::RandomToken()), &o).ok());
  EXPECT_EQ(o.server.bind, "0.0.0.0");
  EXPECT_TRUE(o.server.security.has_token());
}

TEST_F(JobFlagsTest, WorkerTaskFromTheSpec) {
  const ClusterSpec spec =
      Spec(R"({"cluster":{"ps":["h1:1","h2:1"],"worker":["h3:1","h4:1"],"chief":["h5:1"]},
    "task":{"type":"worker","index":1}})");
  WorkerTaskOptions o;
  Status s =
      MakeWorkerTask(Parsed(kWorker, {"--data_location=" + data_.string(), "--checkpoint=/jobs/b",
                                      "--hidden_units=8,4", "--bf16", "--hang_timeout=9"}),
                     spec, rpc::Security(), &o);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(o.name, "worker:1");
  EXPECT_EQ(o.trainer.task_index, 2);  // chief 0, worker:0 1, worker:1 2
  EXPECT_EQ(o.trainer.num_workers, 3);
  EXPECT_EQ(o.trainer.train_data.part_index, 2);
  EXPECT_EQ(o.trainer.train_data.num_parts, 3);
  EXPECT_FALSE(o.trainer.is_chief);
  EXPECT_FALSE(o.evaluate) << "only the chief evaluates";
  EXPECT_EQ(o.trainer.model.hidden_units, (std::vector<int>{8, 4}));
  EXPECT_EQ(o.client.wire_dtype, ps::BF16);
  EXPECT_EQ(o.client.hosts, spec.ps);
  EXPECT_EQ(o.trainer.hang_timeout_s, 9);
  EXPECT_EQ(o.output_dir, "/jobs/b");
  EXPECT_EQ(o.trainer.checkpoint_dir, "/jobs/b");
  EXPECT_EQ(o.trainer.train_data.files, std::vector<std::string>{(data_ / "train.csv").string()});
  EXPECT_EQ(o.eval_data.files, std::vector<std::string>{(data_ / "eval.txt").string()});
}

// train.py's flags, each with its effect on the task options.
TEST_F(JobFlagsTest, TrainPyFlagsReachTheTrainerAndTfIsStockTensorFlow) {
  const ClusterSpec spec = Spec(R"({"cluster":{"ps":["h1:1"],"worker":["h3:1"]},
    "task":{"type":"worker","index":0}})");
  const std::string data = "--data_location=" + data_.string();
  WorkerTaskOptions o;
  ASSERT_TRUE(MakeWorkerTask(Parsed(kWorker, {data}), spec, rpc::Security(), &o).ok());
  EXPECT_TRUE(o.trainer.smartstaged);
  EXPECT_TRUE(o.trainer.emb_fusion);
  EXPECT_TRUE(o.trainer.model.op_fusion);
  for (const auto& c : o.trainer.spec->columns()) EXPECT_EQ(c.hash_buckets, 0u) << c.name;
  EXPECT_EQ(o.optimizer, "adamasync");
  EXPECT_EQ(o.trainer.seed, 2021u) << "train.py's --seed default";
  ASSERT_TRUE(MakeWorkerTask(Parsed(kWorker, {data, "--smartstaged=false", "--emb_fusion=false",
                                              "--op_fusion=false", "--hash_buckets=77"}),
                             spec, rpc::Security(), &o)
                  .ok());
  EXPECT_FALSE(o.trainer.smartstaged);
  EXPECT_FALSE(o.trainer.emb_fusion);
  EXPECT_FALSE(o.trainer.model.op_fusion);
  for (const auto& c : o.trainer.spec->columns()) {
    if (c.table >= 0) {
      EXPECT_EQ(c.hash_buckets, 77u) << c.name;
    }
  }
  ASSERT_TRUE(MakeWorkerTask(Parsed(kWorker, {data, "--tf"}), spec, rpc::Security(), &o).ok());
  EXPECT_EQ(o.optimizer, "adam");
  EXPECT_EQ(o.trainer.optimizer_name, "adam");
  EXPECT_FALSE(o.trainer.model.bf16);
  EXPECT_FALSE(o.trainer.smartstaged);
  EXPECT_FALSE(o.trainer.emb_fusion);
  EXPECT_FALSE(o.trainer.model.op_fusion);
  for (const auto& c : o.trainer.spec->columns()) {
    if (c.table >= 0) {
      EXPECT_EQ(c.hash_buckets, 10000u) << c.name;
    }
  }
  ps::PsTaskOptions ps_options;
  ASSERT_TRUE(MakePsTask(Parsed(kPs, {"--tf"}), Spec(R"({"cluster":{"ps":["localhost:1"]},
    "task":{"type":"ps","index":0}})"), rpc::Security(), &ps_options).ok());
  EXPECT_EQ(ps_options.shard.optimizer.type, ps::OptimizerType::kAdam) << "the shards run adam too";

  // --tf is a fixed baseline: a flag asking for something else is refused.
  for (const char* contradiction : {"--bf16", "--optimizer=adagrad", "--smartstaged=true"}) {
    const Status s = ValidateFlags(Parsed(kTrain, {"--tf", contradiction}), kTrain);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << contradiction;
    EXPECT_NE(s.message().find("--tf"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(ValidateFlags(Parsed(kTrain, {"--tf", "--optimizer=adam"}), kTrain).ok());
  EXPECT_TRUE(ValidateFlags(Parsed(kTrain, {"--protocol=grpc"}), kTrain).ok());
  for (const char* other : {"grpc++", "star_server", "http"}) {
    const Status s = ValidateFlags(Parsed(kTrain, {std::string("--protocol=") + other}), kTrain);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << other;
    EXPECT_NE(s.message().find("supported protocol is grpc"), std::string::npos) << s.message();
  }
}

// --dnn_threads=0 (the default) gives each trainer the cores the process may
// use, shared among the job's trainers on its host; a number is kept.
TEST_F(JobFlagsTest, DnnThreadsFollowTheCoresAndTheTrainersOnTheHost) {
  const int cores = dnn::DefaultThreads();
  const ClusterSpec three_here = Spec(
      R"({"cluster":{"ps":["h1:1"],"worker":["h3:1","h3:2","h4:1"],"chief":["h3:3"]},
    "task":{"type":"worker","index":0}})");
  const ClusterSpec alone = Spec(
      R"({"cluster":{"ps":["h1:1"],"worker":["h3:1","h4:1"]},"task":{"type":"worker","index":1}})");
  const std::string data = "--data_location=" + data_.string();
  WorkerTaskOptions o;
  ASSERT_TRUE(MakeWorkerTask(Parsed(kWorker, {data}), three_here, rpc::Security(), &o).ok());
  EXPECT_EQ(o.trainer.model.dnn_threads, std::max(1, cores / 3));
  ASSERT_TRUE(MakeWorkerTask(Parsed(kWorker, {data}), alone, rpc::Security(), &o).ok());
  EXPECT_EQ(o.trainer.model.dnn_threads, cores);
  ASSERT_TRUE(
      MakeWorkerTask(Parsed(kWorker, {data, "--dnn_threads=3"}), three_here, rpc::Security(), &o)
          .ok());
  EXPECT_EQ(o.trainer.model.dnn_threads, 3);
}

TEST_F(JobFlagsTest, TaskSpecFollowsTheCommand) {
  // TF1 flags: the command names the job when --job_name is not given.
  const FlagSet f =
      Parsed(kPs | kWorker, {"--ps_hosts=a:1,b:1", "--worker_hosts=c:1", "--task_index=1"});
  ClusterSpec spec;
  std::string origin;
  ASSERT_TRUE(ResolveTaskSpec(f, "", kPs, &spec, &origin).ok());
  EXPECT_EQ(spec.task_name(), "ps:1");
  Status s = ResolveTaskSpec(f, "", kWorker, &spec, &origin);
  EXPECT_NE(s.message().find("task.index 1 is outside cluster.worker"), std::string::npos)
      << s.message();
  const std::string tf_config =
      R"({"cluster":{"ps":["a:1"],"worker":["c:1"]},"task":{"type":"ps","index":0}})";
  s = ResolveTaskSpec(Parsed(kWorker, {}), tf_config, kWorker, &spec, &origin);
  EXPECT_NE(s.message().find("says this task is ps:0, but the command is 'deepfm worker'"),
            std::string::npos)
      << s.message();
  EXPECT_TRUE(ResolveTaskSpec(Parsed(kPs | kWorker, {}), tf_config, 0, &spec, &origin).ok())
      << "deepfm task";
}

TEST_F(JobFlagsTest, TaskCommandRunsTheTaskOnItsHostWithItsPlace) {
  const ClusterSpec spec = Spec(R"({"cluster":{"ps":["h1:7001","h2:7002"],"worker":["h3:7003"]}})");
  const FlagSet f =
      Parsed(kTrain, {"--cluster_spec=/s.json", "--launch_prefix=ip netns exec {host}",
                      "--batch_size=64", "--beta1=0.5", "--checkpoint=/user/choice"});
  const JobPaths paths{"/opt/deepfm", "/jobs/j", "/jobs/j/auth_token"};
  const ChildSpec ps = TaskCommand(f, spec, "ps", 1, paths);
  EXPECT_EQ(ps.name, "ps1");
  EXPECT_EQ(ps.argv, (std::vector<std::string>{"ip", "netns", "exec", "h2", "/opt/deepfm", "ps",
                                               "--beta1=0.5", "--checkpoint=/jobs/j",
                                               "--auth_token_file=/jobs/j/auth_token"}));
  ASSERT_EQ(ps.env.size(), 1u);
  ClusterSpec told;
  ASSERT_TRUE(
      ParseClusterJson(ps.env[0].substr(std::string("TF_CONFIG=").size()), "env", &told).ok());
  EXPECT_EQ(told.task_name(), "ps:1");
  EXPECT_EQ(told.ps, spec.ps);
  EXPECT_EQ(ps.log_path, "/jobs/j/logs/ps1.log");
  const ChildSpec w = TaskCommand(f, spec, "worker", 0, paths);
  EXPECT_EQ(w.argv, (std::vector<std::string>{"ip", "netns", "exec", "h3", "/opt/deepfm", "worker",
                                              "--batch_size=64", "--checkpoint=/jobs/j",
                                              "--auth_token_file=/jobs/j/auth_token"}));
}

TEST(LocalClusterTest, DistinctLoopbackPorts) {
  ClusterSpec spec;
  ASSERT_TRUE(LocalClusterSpec(3, 2, &spec).ok());
  EXPECT_EQ(spec.ps.size(), 3u);
  EXPECT_EQ(spec.worker.size(), 2u);
  EXPECT_TRUE(spec.chief.empty());
  EXPECT_TRUE(ValidateClusterSpec(spec, "local", false).ok())
      << "every address distinct and well formed";
  for (const std::string& a : spec.ps) EXPECT_EQ(a.rfind("127.0.0.1:", 0), 0u) << a;
}

}  // namespace
}  // namespace deepfm::launcher
