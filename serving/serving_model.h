// A loaded export (serving/export_format.h) ready to score: its file mapped
// and verified, its feature spec parsed, the network it describes checked
// against the file's dense variables. Immutable and shared by every thread
// that scores with it; a Scorer per thread holds the mutable buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "serving/export_format.h"
#include "spec/feature_spec.h"
#include "worker/batch.h"
#include "worker/deepfm_model.h"
#include "worker/key_dedup.h"
#include "worker/pooling.h"

namespace deepfm::serving {

struct ModelOptions {
  // The forward's precision: -1 as the job trained (the export's
  // trained_bf16), 0 fp32, 1 bf16.
  int bf16 = -1;
  std::string dnn_isa;  // empty: the process's path (DEEPFM_ISA, else the best the CPU has)
};

class ServingModel {
 public:
  // `path`: an export root (its newest numbered version), a version folder,
  // or a model.dfm file. A damaged file is DataLoss, a network the file's
  // dense variables do not fit FailedPrecondition.
  static Status Load(const std::string& path, const ModelOptions& options,
                     std::shared_ptr<const ServingModel>* out);

  const ExportFile& file() const { return *file_; }
  const FeatureSpecPtr& spec() const { return spec_; }
  const DeepFMConfig& config() const { return config_; }
  // The export's version: the global step it was trained to.
  int64_t version() const { return file_->meta().global_step(); }
  const std::string& path() const { return file_->path(); }

 private:
  ServingModel() = default;
  std::unique_ptr<const ExportFile> file_;
  FeatureSpecPtr spec_;
  DeepFMConfig config_;
  std::vector<int> dense_order_;  // file's dense index of each DeepFMDenseSpecs tensor
  friend class Scorer;
};

// The newest version folder under an export root: the largest numeric
// subfolder holding a model.dfm. NotFound when there is none.
Status FindNewestExport(const std::string& root, std::string* version_dir, int64_t* version);

// Scores batches with one model. Not thread-safe: one per thread. A row's
// probability is what the trainer's evaluation computes for it, bit for
// bit on the same ISA path, whatever rows it is batched with
// (DeepFMModel::PredictRowsFilled).
class Scorer {
 public:
  explicit Scorer(std::shared_ptr<const ServingModel> model);

  // probs[batch.size]: the click probability of each row.
  void Score(const Batch& batch, float* probs);
  const ServingModel& model() const { return *model_; }

 private:
  struct TableBuffers {
    std::vector<uint64_t> uniq;
    std::vector<int32_t> inverse;
    std::vector<float> rows;
  };
  std::shared_ptr<const ServingModel> model_;
  DeepFMModel net_;
  Pooling pooling_;
  KeyDedup dedup_;
  std::vector<TableBuffers> tables_;
  std::vector<TableRows<float>> table_rows_;
};

}  // namespace deepfm::serving
