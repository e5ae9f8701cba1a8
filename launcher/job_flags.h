// Every flag of the `deepfm` commands, defined once in one table that says
// which commands read it (train, ps, worker, gen-data, status, report,
// export, predict, serve). A command
// accepts only its own flags; the launcher hands each task exactly the flags
// that task reads and the user set. Values are checked here, up front, before
// any process starts, with a message naming the flag and what it accepts.
#pragma once

#include <string>
#include <vector>

#include "common/cluster_spec.h"
#include "common/status.h"
#include "launcher/flag_set.h"
#include "ps/ps_task.h"
#include "rpc/security.h"
#include "serving/batch_predict.h"
#include "serving/exporter.h"
#include "serving/predict_server.h"
#include "worker/worker_task.h"

namespace deepfm::launcher {

enum Command : unsigned {
  kTrain = 1u << 0,    // the launcher: a whole job
  kPs = 1u << 1,       // one parameter-server task
  kWorker = 1u << 2,   // one trainer task (chief or worker)
  kGenData = 1u << 3,  // data generation
  kStatus = 1u << 4,   // ask a running job how its trainers are doing
  kReport = 1u << 5,   // report.html of one or more job folders
  kExport = 1u << 6,   // a serving model from a checkpoint
  kPredict = 1u << 7,  // batch scoring with an export
  kServe = 1u << 8,    // the online Predict service
};

const char* CommandName(Command c);

// The flags of every command in the `commands` mask, with their defaults and
// help; `name` is how errors and usage call the command ("train").
FlagSet FlagsOf(unsigned commands, const std::string& name);

// Checks every value `command` reads. The first bad one is an error naming
// the flag, the value, and what the flag accepts.
Status ValidateFlags(const FlagSet& flags, Command command);

// The default data folder is the only one the launcher may fill with
// generated data; an explicit --data_location must already hold data.
bool IsDefaultDataLocation(const FlagSet& flags);
// The train and eval files under --data_location (train.csv/.txt/.tsv, the
// same for eval). NotFound names the folder and the names it looked for.
Status FindDataFiles(const std::string& folder, bool need_eval, std::string* train,
                     std::string* eval);

// The spec this task reads: --cluster_spec, else TF_CONFIG (from `tf_config`,
// the environment's value), else --ps_hosts/--worker_hosts/--job_name/
// --task_index. `command` must match the spec's task type: kPs for `deepfm
// ps`, kWorker for `deepfm worker` (worker or chief); 0 accepts any (`deepfm
// task`, which runs whatever the spec says).
Status ResolveTaskSpec(const FlagSet& flags, const std::string& tf_config, unsigned command,
                       ClusterSpec* spec, std::string* origin);

Status LoadSecurity(const FlagSet& flags, rpc::Security* security);

// The job's feature spec: --feature_spec resolved against the training file
// (spec/feature_spec.h ResolveFeatureSpec), every table resized when
// --embedding_dim is given.
Status LoadJobFeatureSpec(const FlagSet& flags, const std::string& train_file, FeatureSpecPtr* out);

Status MakePsTask(const FlagSet& flags, const ClusterSpec& spec, const rpc::Security& security,
                  ps::PsTaskOptions* out);
Status MakeWorkerTask(const FlagSet& flags, const ClusterSpec& spec, const rpc::Security& security,
                      WorkerTaskOptions* out);

// "--name=value" for every flag the user set on `from` that a task run by
// `to` reads, minus those in `except` (the launcher sets them itself).
std::vector<std::string> ForwardedFlags(const FlagSet& from, Command to,
                                        const std::vector<std::string>& except);

// The serving commands' options from their flags (the same for `deepfm
// export` and `deepfm train --export`).
serving::ExportOptions ExportOptionsFromFlags(const FlagSet& flags);
// --data_location a file, or a folder whose eval file is scored.
Status MakePredictOptions(const FlagSet& flags, serving::PredictOptions* out);
Status MakeServeOptions(const FlagSet& flags, serving::ServeOptions* out);

}  // namespace deepfm::launcher
