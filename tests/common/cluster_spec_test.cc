// The cluster spec from each source (TF_CONFIG, a file, TF1 flags), and bad
// input answered with an error that names the field.
#include "common/cluster_spec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/checkpoint_manifest.h"

namespace deepfm {
namespace {

// What Kubeflow's TFJob operator writes for a chief, two workers and two ps.
const char* kTfJob = R"({"cluster":{"chief":["job-chief-0.ns.svc:2222"],
  "worker":["job-worker-0.ns.svc:2222","job-worker-1.ns.svc:2222"],
  "ps":["job-ps-0.ns.svc:2222","job-ps-1.ns.svc:2222"]},
  "task":{"type":"worker","index":1},"environment":"cloud"})";

TEST(ClusterSpecTest, ReadsTfConfigAsTfJobWritesIt) {
  ClusterSources src;
  src.tf_config = kTfJob;
  ClusterSpec spec;
  std::string origin;
  Status s = ResolveClusterSpec(src, true, &spec, &origin);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(origin, "TF_CONFIG");
  EXPECT_EQ(spec.ps, (std::vector<std::string>{"job-ps-0.ns.svc:2222", "job-ps-1.ns.svc:2222"}));
  EXPECT_EQ(spec.chief.size(), 1u);
  EXPECT_EQ(spec.task_type, "worker");
  EXPECT_EQ(spec.task_index, 1);
  EXPECT_EQ(spec.num_trainers(), 3);
  EXPECT_EQ(spec.trainer_index(), 2);  // the chief is trainer 0
  EXPECT_FALSE(spec.is_chief());
  EXPECT_EQ(spec.task_address(), "job-worker-1.ns.svc:2222");
  EXPECT_EQ(spec.task_name(), "worker:1");
}

TEST(ClusterSpecTest, ChiefIsTheChiefTaskElseWorkerZero) {
  ClusterSpec spec;
  ASSERT_TRUE(ParseClusterJson(kTfJob, "t", &spec).ok());
  spec.task_type = "chief";
  spec.task_index = 0;
  EXPECT_TRUE(spec.is_chief());
  EXPECT_EQ(spec.trainer_index(), 0);
  spec.task_type = "worker";
  EXPECT_FALSE(spec.is_chief()) << "worker 0 is not the chief when there is a chief task";
  spec.chief.clear();
  EXPECT_TRUE(spec.is_chief());
  EXPECT_EQ(spec.trainer_index(), 0);
  spec.task_type = "ps";
  EXPECT_FALSE(spec.is_chief());
  EXPECT_EQ(spec.trainer_index(), -1);
  // "master" (older TFJobs) is the chief.
  ASSERT_TRUE(
      ParseClusterJson(
          R"({"cluster":{"master":["m:1"],"ps":["p:2"]},"task":{"type":"master","index":0}})", "t",
          &spec)
          .ok());
  EXPECT_EQ(spec.chief, std::vector<std::string>{"m:1"});
  EXPECT_TRUE(spec.is_chief());
}

TEST(ClusterSpecTest, RoundTripsThroughJson) {
  ClusterSpec spec;
  ASSERT_TRUE(ParseClusterJson(kTfJob, "t", &spec).ok());
  ClusterSpec back;
  ASSERT_TRUE(ParseClusterJson(ClusterJson(spec), "t", &back).ok());
  EXPECT_EQ(back.chief, spec.chief);
  EXPECT_EQ(back.worker, spec.worker);
  EXPECT_EQ(back.ps, spec.ps);
  EXPECT_EQ(back.task_type, spec.task_type);
  EXPECT_EQ(back.task_index, spec.task_index);
  spec.task_type.clear();
  EXPECT_EQ(ClusterJson(spec).find("task"), std::string::npos);
}

TEST(ClusterSpecTest, FileComesBeforeTfConfigBeforeFlags) {
  const std::string path = ::testing::TempDir() + "/spec_" + std::to_string(getpid()) + ".json";
  ASSERT_TRUE(
      WriteFileAtomic(
          path, R"({"cluster":{"worker":["f:1"],"ps":["f:2"]},"task":{"type":"ps","index":0}})")
          .ok());
  ClusterSources src;
  src.spec_file = path;
  src.tf_config = kTfJob;
  src.ps_hosts = "x:1";
  src.worker_hosts = "x:2";
  src.job_name = "worker";
  ClusterSpec spec;
  std::string origin;
  ASSERT_TRUE(ResolveClusterSpec(src, true, &spec, &origin).ok());
  EXPECT_EQ(origin, path);
  EXPECT_EQ(spec.ps, std::vector<std::string>{"f:2"});
  src.spec_file.clear();
  ASSERT_TRUE(ResolveClusterSpec(src, true, &spec, &origin).ok());
  EXPECT_EQ(origin, "TF_CONFIG");
  src.tf_config.clear();
  ASSERT_TRUE(ResolveClusterSpec(src, true, &spec, &origin).ok());
  EXPECT_EQ(spec.ps, std::vector<std::string>{"x:1"});
  EXPECT_EQ(spec.worker, std::vector<std::string>{"x:2"});
  EXPECT_EQ(spec.task_type, "worker");
  EXPECT_TRUE(spec.is_chief());
  std::filesystem::remove(path);
}

TEST(ClusterSpecTest, Tf1FlagsAsDeepRecScriptsPassThem) {
  ClusterSources src;
  src.ps_hosts = "h1:2220,h2:2220";
  src.worker_hosts = "h1:2230,h2:2230,h3:2230";
  src.job_name = "ps";
  src.task_index = 1;
  ClusterSpec spec;
  std::string origin;
  ASSERT_TRUE(ResolveClusterSpec(src, true, &spec, &origin).ok());
  EXPECT_EQ(spec.ps.size(), 2u);
  EXPECT_EQ(spec.worker.size(), 3u);
  EXPECT_EQ(spec.task_address(), "h2:2220");
}

// Each bad input gets an error naming the source and the field.
TEST(ClusterSpecTest, BadInputNamesTheField) {
  struct Case {
    const char* json;
    const char* expect;
  } cases[] = {
      {"{", "TF_CONFIG: not valid JSON"},
      {"[1]", "must be a JSON object"},
      {R"({"task":{"type":"ps","index":0}})", "\"cluster\" must be an object"},
      {R"({"cluster":{"ps":"h:1","worker":["w:1"]}})", "cluster.ps must be a list"},
      {R"({"cluster":{"ps":["h:1",7],"worker":["w:1"]}})",
       "cluster.ps[1] must be a \"host:port\" string"},
      {R"({"cluster":{"ps":["h:1"],"worker":["w:1"],"evaluator":["e:1"]}})",
       "cluster.evaluator: task type not supported"},
      {R"({"cluster":{"ps":["h:1"],"worker":["w:1"]},"tsak":{}})", "unknown key \"tsak\""},
      {R"({"cluster":{"ps":["h:1"],"worker":["w:1"]},"task":{"index":0}})",
       "task.type must be a string"},
      {R"({"cluster":{"ps":["h:1"],"worker":["w:1"]},"task":{"type":"ps","index":"0"}})",
       "task.index must be an integer"},
      {R"({"cluster":{"ps":["h:1"],"worker":["w:1"]},"task":{"type":"evaluator","index":0}})",
       "task.type \"evaluator\" is not ps, worker or chief"},
      {R"({"cluster":{"ps":["h:1"],"worker":["w:1"]},"task":{"type":"ps","index":1}})",
       "task.index 1 is outside cluster.ps (1 tasks)"},
      {R"({"cluster":{"worker":["w:1"]},"task":{"type":"worker","index":0}})",
       "cluster.ps is empty"},
      {R"({"cluster":{"ps":["h:1"]},"task":{"type":"ps","index":0}})", "no worker and no chief"},
      {R"({"cluster":{"ps":["h:1"],"chief":["c:1","c:2"]},"task":{"type":"ps","index":0}})",
       "at most one chief"},
      {R"({"cluster":{"ps":["h1"],"worker":["w:1"]},"task":{"type":"ps","index":0}})",
       "cluster.ps[0]: \"h1\" is not host:port"},
      {R"({"cluster":{"ps":["h:99999"],"worker":["w:1"]},"task":{"type":"ps","index":0}})",
       "cluster.ps[0]: \"h:99999\": the port must be a number in 1..65535"},
      {R"({"cluster":{"ps":["h:0"],"worker":["w:1"]},"task":{"type":"ps","index":0}})",
       "the port must be a number"},
      {R"({"cluster":{"ps":["h:1"],"worker":["h:1"]},"task":{"type":"ps","index":0}})",
       "cluster.ps[0]: \"h:1\" is listed twice"},
      {R"({"cluster":{"ps":["h:1"],"worker":["w:1"]}})", "no task"},
  };
  for (const Case& c : cases) {
    ClusterSources src;
    src.tf_config = c.json;
    ClusterSpec spec;
    std::string origin;
    Status s = ResolveClusterSpec(src, true, &spec, &origin);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.json;
    EXPECT_NE(s.message().find(c.expect), std::string::npos)
        << c.json << "\n  got: " << s.message();
    EXPECT_EQ(s.message().rfind("TF_CONFIG: ", 0), 0u) << s.message();
  }
  ClusterSources none;
  ClusterSpec spec;
  std::string origin;
  EXPECT_EQ(ResolveClusterSpec(none, true, &spec, &origin).code(), Code::kNotFound);
  ClusterSources missing;
  missing.spec_file = "/nonexistent/spec.json";
  Status s = ResolveClusterSpec(missing, true, &spec, &origin);
  EXPECT_NE(s.message().find("--cluster_spec"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("/nonexistent/spec.json"), std::string::npos) << s.message();
  // A file's errors name the file.
  const std::string bad_file =
      ::testing::TempDir() + "/bad_spec_" + std::to_string(getpid()) + ".json";
  ASSERT_TRUE(WriteFileAtomic(bad_file, R"({"cluster":{"ps":["h:1"],"worker":["w"]}})").ok());
  ClusterSources file;
  file.spec_file = bad_file;
  s = ResolveClusterSpec(file, false, &spec, &origin);
  EXPECT_NE(s.message().find(bad_file + ": cluster.worker[0]: \"w\" is not host:port"),
            std::string::npos)
      << s.message();
  std::filesystem::remove(bad_file);
  // TF1 flags' errors name the flags' spec.
  ClusterSources bad_tf1;
  bad_tf1.ps_hosts = "a:1,b";
  bad_tf1.worker_hosts = "c:1";
  bad_tf1.job_name = "ps";
  s = ResolveClusterSpec(bad_tf1, true, &spec, &origin);
  EXPECT_NE(s.message().find("--ps_hosts/--worker_hosts: cluster.ps[1]: \"b\" is not host:port"),
            std::string::npos)
      << s.message();
  ClusterSources tf1;
  tf1.ps_hosts = "a:1";
  tf1.worker_hosts = "b:1";
  tf1.job_name = "chief";
  EXPECT_NE(ResolveClusterSpec(tf1, true, &spec, &origin).message().find("--job_name=chief"),
            std::string::npos);
}

TEST(ClusterSpecTest, HostPortAndLoopback) {
  std::string host;
  int port = 0;
  ASSERT_TRUE(SplitHostPort("[::1]:80", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 80);
  ASSERT_TRUE(SplitHostPort("10.0.0.2:2222", &host, &port).ok());
  EXPECT_FALSE(SplitHostPort(":80", &host, &port).ok());
  EXPECT_FALSE(SplitHostPort("h:", &host, &port).ok());
  EXPECT_FALSE(SplitHostPort("h:8o", &host, &port).ok());
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.9.9.9"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("host1"));
}

}  // namespace
}  // namespace deepfm
