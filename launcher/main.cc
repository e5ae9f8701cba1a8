// deepfm: the launcher. `deepfm train` runs a whole local job; `deepfm
// gen-data` writes Criteo-schema data from a planted model.
#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "launcher/flag_set.h"
#include "launcher/local_job.h"
#include "tools/datagen.h"

namespace {

using deepfm::launcher::FlagSet;

std::string SelfPath(const char* argv0) {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) return std::string(buf, n);
  return argv0;
}

int GenData(const std::vector<std::string>& args) {
  FlagSet f("gen-data");
  f.Add("rows", FlagSet::kInt, "500000", "training rows");
  f.Add("eval_rows", FlagSet::kInt, "-1", "evaluation rows; -1 = rows / 5");
  f.Add("out", FlagSet::kString, "./data", "output folder");
  f.Add("seed", FlagSet::kInt, "2026", "generator seed");
  f.Add("format", FlagSet::kString, "csv", "csv (train.csv) or tsv (train.txt, Criteo's layout)");
  if (std::find(args.begin(), args.end(), std::string("--help")) != args.end()) {
    fputs(f.Usage().c_str(), stdout);
    return 0;
  }
  deepfm::Status s = f.Parse(args);
  if (!s.ok()) {
    fprintf(stderr, "%s\n\n%s", s.message().c_str(), f.Usage().c_str());
    return 2;
  }
  deepfm::DataGenOptions o;
  o.train_rows = f.GetInt("rows");
  o.eval_rows = f.GetInt("eval_rows") >= 0 ? f.GetInt("eval_rows") : o.train_rows / 5;
  o.out_dir = f.Get("out");
  o.seed = f.GetInt("seed");
  if (f.Get("format") == "tsv") o.format = deepfm::DataGenOptions::kTsv;
  else if (f.Get("format") != "csv") {
    fprintf(stderr, "deepfm gen-data: --format must be csv or tsv\n");
    return 2;
  }
  deepfm::DataGenReport r;
  s = deepfm::GenerateCriteoData(o, &r);
  if (!s.ok()) {
    fprintf(stderr, "deepfm gen-data: %s\n", s.message().c_str());
    return 1;
  }
  printf("wrote %s (%lld rows, ctr %.4f) and %s (%lld rows, ctr %.4f) in %.1f s\n",
         r.train_path.c_str(), static_cast<long long>(r.train_rows), r.train_ctr, r.eval_path.c_str(),
         static_cast<long long>(r.eval_rows), r.eval_ctr, r.seconds);
  printf("oracle eval AUC %.4f, oracle logloss %.4f (the planted model's own scores)\n", r.oracle_auc,
         r.oracle_logloss);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  const std::string usage =
      "usage: deepfm train [flags]     run a local job (shards + workers), like DeepRec's train.py\n"
      "       deepfm gen-data [flags]  write Criteo-schema train/eval data from a planted model\n"
      "       deepfm COMMAND --help    list a command's flags\n";
  if (argc < 2) {
    fputs(usage.c_str(), stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  const bool help = std::find(args.begin(), args.end(), std::string("--help")) != args.end();
  if (cmd == "gen-data") return GenData(args);
  if (cmd == "train") {
    FlagSet f("train");
    deepfm::launcher::AddTrainFlags(&f);
    if (help) {
      fputs(f.Usage().c_str(), stdout);
      return 0;
    }
    deepfm::Status s = f.Parse(args);
    if (!s.ok()) {
      fprintf(stderr, "%s\n", s.message().c_str());
      return 2;
    }
    return deepfm::launcher::RunLocalJob(f, SelfPath(argv[0]));
  }
  fputs(usage.c_str(), stderr);
  return 2;
}
