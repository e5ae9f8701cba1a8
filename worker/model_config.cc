#include "worker/model_config.h"

namespace deepfm {

DeepFMConfig ModelConfigFor(const FeatureSpec& spec, DeepFMConfig config) {
  config.num_fields = spec.num_features();
  config.num_dense = spec.num_numeric();
  config.embedding_dim = spec.embedding_dim();
  const spec::Model& m = spec.model();
  config.final_hidden_units.assign(m.final_hidden_units().begin(), m.final_hidden_units().end());
  config.batch_norm = m.batch_norm();
  if (m.batch_norm_momentum() > 0) config.batch_norm_momentum = m.batch_norm_momentum();
  if (m.batch_norm_epsilon() > 0) config.batch_norm_epsilon = m.batch_norm_epsilon();
  config.fm = m.fm() == spec::Model::VECTOR ? DeepFMConfig::Fm::kVector : DeepFMConfig::Fm::kScalar;
  config.linear = m.linear() == spec::Model::WEIGHTLESS ? DeepFMConfig::Linear::kWeightless
                                                        : DeepFMConfig::Linear::kLearned;
  config.loss =
      m.loss() == spec::Model::MSE ? DeepFMConfig::Loss::kMse : DeepFMConfig::Loss::kLogloss;
  return config;
}

}  // namespace deepfm
