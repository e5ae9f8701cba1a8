// The network a feature spec describes (spec::Model) as a DeepFMConfig: the
// one translation every forward uses, so a trainer's evaluation and a
// served model run the same network.
#pragma once

#include "spec/feature_spec.h"
#include "worker/deepfm_model.h"

namespace deepfm {

// `base` with the spec's features, numeric inputs, dimension and network
// section filled in; its hidden_units, ISA, threads, bf16 and fusion kept.
DeepFMConfig ModelConfigFor(const FeatureSpec& spec, DeepFMConfig base);

}  // namespace deepfm
