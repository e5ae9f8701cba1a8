#include "ps/push_decoder.h"

#include <cmath>
#include <utility>

#include "common/bytes.h"
#include "common/wire_values.h"

namespace deepfm::ps {
namespace {

// Decodes `bytes` (n values of `dtype`) into out[n], rejecting non-finite ones.
Status DecodeFinite(const std::string& bytes, DType dtype, size_t n, float* out,
                    const std::string& what) {
  DecodeWireValues(bytes.data(), n, dtype == BF16, out);
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) {
      return InvalidArgument(what + ": gradient " + std::to_string(i) + " is not finite (" +
                             std::to_string(out[i]) + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

PushDecoder::PushDecoder(TableLookup tables, const DenseStore* dense, uint32_t num_trainers,
                         OwnershipCheck owned)
    : tables_(std::move(tables)),
      dense_(dense),
      num_trainers_(num_trainers),
      owned_(std::move(owned)) {}

Status PushDecoder::Decode(const PushRequest& req, DecodedPush* out) const {
  // Keeps out's buffers (see DecodedPush): every field is overwritten below,
  // and resizing to this request's counts keeps the arrays already there.
  out->keys = 0;
  if (req.dtype() != F32 && req.dtype() != BF16) {
    return InvalidArgument("push: unknown dtype " + std::to_string(req.dtype()));
  }
  if (req.increment_global_step() < 0) return InvalidArgument("push: negative step increment");
  // A negative step would flip the sign of Adam's bias correction.
  if (req.global_step() < 0) {
    return InvalidArgument("push: global_step " + std::to_string(req.global_step()) +
                           " is negative");
  }
  const size_t esize = WireElemSize(req.dtype() == BF16);
  out->sparse.resize(req.sparse_size());
  for (int i = 0; i < req.sparse_size(); ++i) {
    const SparseGrad& sg = req.sparse(i);
    DecodedPush::Sparse& d = out->sparse[i];
    d.table = tables_(sg.table_id());
    if (!d.table) return InvalidArgument("push: unknown table id " + std::to_string(sg.table_id()));
    const std::string& name = d.table->options().name;
    if (!IsWholeArrayOf<uint64_t>(sg.keys())) {
      return InvalidArgument("push: table '" + name + "': keys has " +
                             std::to_string(sg.keys().size()) + " bytes, not a multiple of 8");
    }
    const size_t n = CountOf<uint64_t>(sg.keys());
    const size_t want = n * d.table->dim();
    if (sg.grads().size() != want * esize) {
      return InvalidArgument("push: table '" + name + "': " + std::to_string(n) + " keys of dim " +
                             std::to_string(d.table->dim()) + " need " + std::to_string(want) +
                             " gradient values, got " + std::to_string(sg.grads().size() / esize) +
                             (sg.grads().size() % esize ? " (and a partial value)" : ""));
    }
    CopyOut(sg.keys(), &d.keys);
    Status owned = owned_(d.keys, name);
    if (!owned.ok()) return owned;
    d.grads.resize(want);
    Status s =
        DecodeFinite(sg.grads(), req.dtype(), want, d.grads.data(), "push: table '" + name + "'");
    if (!s.ok()) return s;
    out->keys += n;
  }
  out->dense.resize(req.dense_size());
  for (int i = 0; i < req.dense_size(); ++i) {
    const DenseGrad& dg = req.dense(i);
    const int64_t n = dense_->NumElements(dg.dense_id());
    if (n < 0)
      return InvalidArgument("push: unknown dense variable id " + std::to_string(dg.dense_id()));
    const std::string name = dense_->Get(dg.dense_id())->name;
    if (dg.grads().size() != static_cast<size_t>(n) * esize) {
      return InvalidArgument("push: dense variable '" + name + "' has " + std::to_string(n) +
                             " elements, got " + std::to_string(dg.grads().size()) +
                             " bytes of gradient");
    }
    out->dense[i].resize(n);
    Status s = DecodeFinite(dg.grads(), req.dtype(), n, out->dense[i].data(),
                            "push: dense variable '" + name + "'");
    if (!s.ok()) return s;
  }
  if (num_trainers_ > 0 && req.task_index() >= num_trainers_) {
    return InvalidArgument("push: trainer " + std::to_string(req.task_index()) +
                           " is not in this job of " + std::to_string(num_trainers_) + " trainers");
  }
  return Status::Ok();
}

}  // namespace deepfm::ps
