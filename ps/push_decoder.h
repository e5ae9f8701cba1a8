// A Push request decoded and checked whole before any of it is applied, so
// a bad request leaves the shard unchanged: its dtype and steps, each
// table's keys (whole uint64s, every one this shard's) and finite gradients
// of the table's dimension, each dense variable's finite gradient of its
// size, and the trainer's index. A refusal names the table or variable and
// what is wrong (INVALID_ARGUMENT; a key of another shard is the ownership
// check's own error).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/ps.pb.h"
#include "ps/dense_store.h"
#include "ps/embedding_table.h"

namespace deepfm::ps {

// Decoding into the same DecodedPush again reuses its buffers: a request's
// gradients are hundreds of KiB, and allocating and freeing them each push
// costs a mapping and unmapping of fresh pages when malloc serves them with
// mmap (an unmap once took 24 ms on a 2-core VM).
struct DecodedPush {
  struct Sparse {
    EmbeddingTable* table = nullptr;
    std::vector<uint64_t> keys;
    std::vector<float> grads;  // keys.size() * table->dim()
  };
  std::vector<Sparse> sparse;             // req.sparse(i)'s
  std::vector<std::vector<float>> dense;  // req.dense(i)'s
  uint64_t keys = 0;                      // over every table
};

class PushDecoder {
 public:
  using TableLookup = std::function<EmbeddingTable*(uint32_t id)>;  // null: no such table
  using OwnershipCheck =
      std::function<Status(const std::vector<uint64_t>& keys, const std::string& table)>;

  // num_trainers 0: any trainer index. The lookups must outlive Decode.
  PushDecoder(TableLookup tables, const DenseStore* dense, uint32_t num_trainers,
              OwnershipCheck owned);

  Status Decode(const PushRequest& req, DecodedPush* out) const;

 private:
  TableLookup tables_;
  const DenseStore* dense_;
  uint32_t num_trainers_;
  OwnershipCheck owned_;
};

}  // namespace deepfm::ps
