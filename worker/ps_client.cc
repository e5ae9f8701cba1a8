#include "worker/ps_client.h"

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "common/bytes.h"
#include "common/wire_values.h"
#include "obs/timeline.h"

namespace deepfm {
namespace {

Status FromGrpc(const grpc::Status& s, const std::string& prefix) {
  return Status(static_cast<Code>(s.error_code()), prefix + s.error_message());
}

size_t ElemSize(ps::DType t) { return WireElemSize(t == ps::BF16); }

void CountBytes(int shard, uint64_t sent, uint64_t received, uint64_t dense, WireBytes* bytes) {
  bytes->sent += sent;
  bytes->received += received;
  if (bytes->shard.size() <= static_cast<size_t>(shard)) {
    bytes->shard.resize(shard + 1, 0);
    bytes->shard_dense.resize(shard + 1, 0);
  }
  bytes->shard[shard] += sent + received;
  bytes->shard_dense[shard] += dense;
}

}  // namespace

namespace {
uint64_t RandomSession() {
  std::random_device rd;
  uint64_t s = 0;
  while (s == 0) s = (uint64_t{rd()} << 32) ^ rd();  // 0 means "no session"
  return s;
}
}  // namespace

void WireBytes::Add(const WireBytes& other) {
  sent += other.sent;
  received += other.received;
  if (shard.size() < other.shard.size()) {
    shard.resize(other.shard.size(), 0);
    shard_dense.resize(other.shard.size(), 0);
  }
  for (size_t i = 0; i < other.shard.size(); ++i) {
    shard[i] += other.shard[i];
    shard_dense[i] += other.shard_dense[i];
  }
}

PsClient::PsClient(const PsClientOptions& options)
    : options_(options),
      router_(static_cast<uint32_t>(options.hosts.size()), options.num_slots),
      session_(RandomSession()) {}

Status PsClient::Connect(const PsClientOptions& options, std::unique_ptr<PsClient>* out) {
  if (options.hosts.empty()) return InvalidArgument("no parameter servers given (--ps_hosts)");
  if (options.num_slots < options.hosts.size()) {
    return InvalidArgument("num_slots " + std::to_string(options.num_slots) + " is below the " +
                           std::to_string(options.hosts.size()) + " parameter servers given");
  }
  std::unique_ptr<PsClient> c(new PsClient(options));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // Reconnect quickly while the launcher is still starting shards.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // The job defines no gRPC service config: skip the DNS TXT lookup for one.
  args.SetInt(GRPC_ARG_SERVICE_CONFIG_DISABLE_RESOLUTION, 1);
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::milliseconds(options.connect_timeout_ms);
  for (const std::string& host : options.hosts) {
    auto ch = grpc::CreateCustomChannel(host, options.security.ChannelCredentials(), args);
    if (!ch->WaitForConnected(deadline)) {
      return Status(Code::kUnavailable, "parameter server " + host + " did not accept a connection within " +
                                            std::to_string(options.connect_timeout_ms) +
                                            " ms; is ps_server running there?");
    }
    c->shards_.push_back(GrpcShardEndpoint(std::move(ch)));
  }
  *out = std::move(c);
  return Status::Ok();
}

Status PsClient::Attach(const PsClientOptions& options,
                        std::vector<std::unique_ptr<ShardEndpoint>> shards,
                        std::unique_ptr<PsClient>* out) {
  if (shards.empty() || shards.size() != options.hosts.size()) {
    return InvalidArgument("PsClient::Attach: " + std::to_string(shards.size()) +
                           " shards for " + std::to_string(options.hosts.size()) + " names");
  }
  if (options.num_slots < shards.size()) {
    return InvalidArgument("num_slots " + std::to_string(options.num_slots) + " is below the " +
                           std::to_string(shards.size()) + " shards given");
  }
  std::unique_ptr<PsClient> c(new PsClient(options));
  c->shards_ = std::move(shards);
  *out = std::move(c);
  return Status::Ok();
}

std::vector<int> PsClient::AllShards() const {
  std::vector<int> all(shards_.size());
  for (size_t s = 0; s < all.size(); ++s) all[s] = static_cast<int>(s);
  return all;
}

std::unique_ptr<grpc::ClientContext> PsClient::NewContext(int deadline_ms) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(deadline_ms > 0 ? deadline_ms : options_.rpc_deadline_ms));
  options_.security.Authorize(ctx.get());
  return ctx;
}

Status PsClient::Error(int shard, const char* what, const grpc::Status& s) const {
  std::string prefix = std::string(what) + " to parameter server " + std::to_string(shard) + " (" +
                       options_.hosts[shard] + ") failed: ";
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    prefix += "no answer within " + std::to_string(options_.rpc_deadline_ms) + " ms: ";
  }
  return FromGrpc(s, prefix);
}

template <typename Call>
Status PsClient::ParallelCall(const char* what, const std::vector<int>& shards, Call call,
                              int deadline_ms) {
  std::vector<int> pending = shards;
  int backoff_ms = options_.initial_backoff_ms;
  for (int attempt = 0;; ++attempt) {
    const size_t n = pending.size();
    std::vector<grpc::Status> status(n);
    std::vector<std::unique_ptr<grpc::ClientContext>> ctx(n);
    std::mutex mu;
    std::condition_variable cv;
    size_t done = 0;
    for (size_t i = 0; i < n; ++i) {
      ctx[i] = NewContext(deadline_ms);
      call(pending[i], ctx[i].get(), [&, i](grpc::Status s) {
        status[i] = std::move(s);
        std::lock_guard<std::mutex> lock(mu);
        if (++done == n) cv.notify_one();
      });
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done == n; });
    }
    std::vector<int> retry;
    for (size_t i = 0; i < n; ++i) {
      if (status[i].ok()) continue;
      if (status[i].error_code() == grpc::StatusCode::UNAVAILABLE && attempt < options_.max_retries) {
        retry.push_back(pending[i]);
      } else {
        return Error(pending[i], what, status[i]);
      }
    }
    if (retry.empty()) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms *= 2;
    pending = std::move(retry);
  }
}

Status PsClient::RegisterTable(const ps::TableSpec& spec, int* handle) {
  TableInfo info;
  info.dim = static_cast<int>(spec.dim());
  info.ids.resize(shards_.size());
  ps::RegisterTableRequest req;
  *req.mutable_spec() = spec;
  std::vector<ps::RegisterTableResponse> resp(shards_.size());
  Status st = ParallelCall("RegisterTable", AllShards(),
                           [&](int s, grpc::ClientContext* ctx, auto done) {
                             shards_[s]->RegisterTable(ctx, &req, &resp[s], done);
                           });
  if (!st.ok()) return st;
  for (size_t s = 0; s < resp.size(); ++s) info.ids[s] = resp[s].table_id();
  *handle = static_cast<int>(tables_.size());
  tables_.push_back(std::move(info));
  return Status::Ok();
}

Status PsClient::RegisterDense(const std::string& name, const std::vector<int64_t>& shape,
                               const std::vector<float>& init, int* handle, bool moving_average,
                               float momentum) {
  DenseInfo info;
  info.name = name;
  info.size = 1;
  for (int64_t d : shape) info.size *= d;
  if (!init.empty() && static_cast<int64_t>(init.size()) != info.size) {
    return InvalidArgument("dense variable '" + name + "' needs " + std::to_string(info.size) +
                           " initial values, got " + std::to_string(init.size()));
  }
  const int S = num_shards();
  std::vector<ps::RegisterDenseRequest> req(S);
  std::vector<ps::RegisterDenseResponse> resp(S);
  std::vector<int> shards;
  for (const DenseSlice& slice : PartitionDense(router_, name, shape, options_.dense_slice_bytes)) {
    ps::RegisterDenseRequest& r = req[slice.shard];
    r.mutable_spec()->set_name(name);
    for (int64_t d : shape) r.mutable_spec()->add_shape(d);
    r.mutable_spec()->set_slice_offset(slice.offset);
    r.mutable_spec()->set_slice_size(slice.size);
    r.mutable_spec()->set_moving_average(moving_average);
    r.mutable_spec()->set_momentum(moving_average ? momentum : 0.0f);
    if (!init.empty()) AssignBytes(init.data() + slice.offset, slice.size, r.mutable_init_values());
    shards.push_back(static_cast<int>(slice.shard));
    info.parts.push_back({slice, 0});
  }
  Status st = ParallelCall("RegisterDense", shards, [&](int s, grpc::ClientContext* ctx, auto done) {
    shards_[s]->RegisterDense(ctx, &req[s], &resp[s], done);
  });
  if (!st.ok()) return st;
  for (DensePart& p : info.parts) p.id = resp[p.slice.shard].dense_id();
  *handle = static_cast<int>(dense_.size());
  dense_.push_back(std::move(info));
  return Status::Ok();
}

void PsClient::Route(const uint64_t* uniq, size_t n, std::vector<std::vector<uint32_t>>* idx) const {
  idx->resize(shards_.size());
  for (auto& v : *idx) v.clear();
  if (shards_.size() == 1) {
    (*idx)[0].resize(n);
    for (size_t i = 0; i < n; ++i) (*idx)[0][i] = static_cast<uint32_t>(i);
    return;
  }
  for (size_t i = 0; i < n; ++i) (*idx)[router_.ShardOfKey(uniq[i])].push_back(static_cast<uint32_t>(i));
}

namespace {

// A call on a traced step (--timeline): when each shard's request left and
// its answer came, as spans on a track per shard ("pull ps:1"), and the spans
// each shard sent back, under its task name. Inert when no recorder is
// current on the calling thread.
class ShardCallTrace {
 public:
  explicit ShardCallTrace(int shards)
      : recorder_(obs::CurrentTrace()), sent_(shards), answered_(shards) {}
  bool on() const { return recorder_ != nullptr; }

  // Stamps the send now and the answer when `done` runs (on gRPC's thread).
  ShardEndpoint::Done Wrap(int s, ShardEndpoint::Done done) {
    if (!recorder_) return done;
    sent_[s] = obs::WallMicros();
    return [this, s, done = std::move(done)](grpc::Status st) {
      answered_[s] = obs::WallMicros();
      done(std::move(st));
    };
  }

  template <class Response>
  void Finish(const char* method, const char* track, const std::vector<Response>& resp) {
    if (!recorder_) return;
    for (size_t s = 0; s < resp.size(); ++s) {
      const std::string shard = "ps:" + std::to_string(s);
      recorder_->Add(std::string(track) + " " + shard, method, sent_[s], answered_[s]);
      recorder_->AddRemote(shard, resp[s].trace());
    }
  }

 private:
  obs::TraceRecorder* recorder_;
  std::vector<int64_t> sent_, answered_;
};

}  // namespace

void PsClient::RouteParts(const std::vector<SparsePart>& parts,
                          std::vector<std::vector<std::vector<uint32_t>>>* idx) const {
  idx->resize(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) Route(parts[p].keys, parts[p].n, &(*idx)[p]);
}

Status PsClient::Pull(int table, const uint64_t* uniq, size_t n, float* rows,
                      const std::vector<float*>& dense_out, bool read_only, int64_t* global_step,
                      WireBytes* bytes) {
  SparsePart part;
  part.table = table;
  part.keys = uniq;
  part.n = n;
  part.rows = rows;
  return Pull(std::vector<SparsePart>{part}, dense_out, read_only, global_step, bytes);
}

Status PsClient::Pull(const std::vector<SparsePart>& sparse, const std::vector<float*>& dense_out,
                      bool read_only, int64_t* global_step, WireBytes* bytes) {
  const int S = num_shards();
  std::vector<std::vector<std::vector<uint32_t>>> idx;
  RouteParts(sparse, &idx);
  std::vector<ps::PullRequest> req(S);
  std::vector<ps::PullResponse> resp(S);
  std::vector<std::vector<DenseRef>> dense_of(S);  // what each shard's dense answers are, in order
  for (int s = 0; s < S; ++s) {
    req[s].set_dtype(options_.wire_dtype);
    req[s].set_read_only(read_only);
    for (size_t p = 0; p < sparse.size(); ++p) {
      const std::vector<uint32_t>& ix = idx[p][s];
      auto* sp = req[s].add_sparse();
      sp->set_table_id(tables_[sparse[p].table].ids[s]);
      std::string* kb = sp->mutable_keys();
      kb->resize(ix.size() * sizeof(uint64_t));
      uint64_t* kp = reinterpret_cast<uint64_t*>(kb->data());
      for (size_t i = 0; i < ix.size(); ++i) kp[i] = sparse[p].keys[ix[i]];
    }
  }
  for (size_t d = 0; d < dense_.size() && d < dense_out.size(); ++d) {
    if (!dense_out[d]) continue;
    for (size_t p = 0; p < dense_[d].parts.size(); ++p) {
      const DensePart& part = dense_[d].parts[p];
      req[part.slice.shard].add_dense_ids(part.id);
      dense_of[part.slice.shard].emplace_back(static_cast<int>(d), static_cast<int>(p));
    }
  }
  ShardCallTrace trace(S);
  for (int s = 0; s < S; ++s) req[s].set_trace(trace.on());
  Status st = ParallelCall("Pull", AllShards(), [&](int s, grpc::ClientContext* ctx, auto done) {
    resp[s].Clear();
    shards_[s]->Pull(ctx, &req[s], &resp[s], trace.Wrap(s, done));
  });
  if (!st.ok()) return st;
  trace.Finish("Pull", "pull", resp);
  const size_t es = ElemSize(options_.wire_dtype);
  const bool bf16 = options_.wire_dtype == ps::BF16;
  for (int s = 0; s < S; ++s) {
    const ps::PullResponse& r = resp[s];
    bool shape_ok = r.sparse_size() == static_cast<int>(sparse.size()) &&
                    r.dense_size() == static_cast<int>(dense_of[s].size());
    for (size_t p = 0; shape_ok && p < sparse.size(); ++p) {
      const int dim = tables_[sparse[p].table].dim;
      shape_ok = r.sparse(p).values().size() == idx[p][s].size() * dim * es;
    }
    if (!shape_ok) {
      return Internal("Pull from parameter server " + std::to_string(s) + " (" + options_.hosts[s] +
                      ") returned a response of the wrong shape");
    }
    for (size_t p = 0; p < sparse.size(); ++p) {
      const int dim = tables_[sparse[p].table].dim;
      const std::vector<uint32_t>& ix = idx[p][s];
      const std::string& values = r.sparse(p).values();
      float* rows = sparse[p].rows;
      for (size_t i = 0; i < ix.size(); ++i) {
        DecodeWireValues(values.data() + i * dim * es, dim, bf16, rows + size_t{ix[i]} * dim);
      }
    }
    uint64_t dense_bytes = 0;
    for (size_t j = 0; j < dense_of[s].size(); ++j) {
      const auto [d, p] = dense_of[s][j];
      const DenseInfo& di = dense_[d];
      const DenseSlice& slice = di.parts[p].slice;
      if (r.dense(j).values().size() != static_cast<size_t>(slice.size) * es) {
        return Internal("Pull of dense '" + di.name + "' from parameter server " +
                        std::to_string(s) + " returned the wrong size");
      }
      DecodeWireValues(r.dense(j).values().data(), slice.size, bf16, dense_out[d] + slice.offset);
      dense_bytes += r.dense(j).values().size();
    }
    if (bytes) CountBytes(s, req[s].ByteSizeLong(), r.ByteSizeLong(), dense_bytes, bytes);
  }
  if (global_step) *global_step = resp[0].global_step();
  return Status::Ok();
}

Status PsClient::Push(int table, const uint64_t* uniq, size_t n, const float* grads,
                      const std::vector<const float*>& dense_grads, bool advance_step,
                      int64_t* global_step, WireBytes* bytes, const ps::DataPosition* position) {
  SparsePart part;
  part.table = table;
  part.keys = uniq;
  part.n = n;
  part.grads = grads;
  return Push(std::vector<SparsePart>{part}, dense_grads, advance_step, global_step, bytes,
              position);
}

Status PsClient::Push(const std::vector<SparsePart>& sparse,
                      const std::vector<const float*>& dense_grads, bool advance_step,
                      int64_t* global_step, WireBytes* bytes, const ps::DataPosition* position) {
  const int S = num_shards();
  const ps::DType dt = options_.wire_dtype;
  const size_t es = ElemSize(dt);
  std::vector<std::vector<std::vector<uint32_t>>> idx;
  RouteParts(sparse, &idx);
  std::vector<ps::PushRequest> req(S);
  std::vector<ps::PushResponse> resp(S);
  for (int s = 0; s < S; ++s) {
    req[s].set_dtype(dt);
    req[s].set_global_step(*global_step);
    if (s == 0 && advance_step) req[s].set_increment_global_step(1);
    for (size_t p = 0; p < sparse.size(); ++p) {
      const int dim = tables_[sparse[p].table].dim;
      const std::vector<uint32_t>& ix = idx[p][s];
      auto* sg = req[s].add_sparse();
      sg->set_table_id(tables_[sparse[p].table].ids[s]);
      std::string* kb = sg->mutable_keys();
      std::string* gb = sg->mutable_grads();
      kb->resize(ix.size() * sizeof(uint64_t));
      gb->resize(ix.size() * dim * es);
      uint64_t* kp = reinterpret_cast<uint64_t*>(kb->data());
      for (size_t i = 0; i < ix.size(); ++i) {
        kp[i] = sparse[p].keys[ix[i]];
        EncodeWireValues(sparse[p].grads + size_t{ix[i]} * dim, dim, dt == ps::BF16,
                         gb->data() + i * dim * es);
      }
    }
  }
  std::vector<uint64_t> dense_bytes(S, 0);
  for (size_t d = 0; d < dense_.size() && d < dense_grads.size(); ++d) {
    if (!dense_grads[d]) continue;
    for (const DensePart& part : dense_[d].parts) {
      auto* dg = req[part.slice.shard].add_dense();
      dg->set_dense_id(part.id);
      std::string* gb = dg->mutable_grads();
      gb->resize(part.slice.size * es);
      EncodeWireValues(dense_grads[d] + part.slice.offset, part.slice.size, dt == ps::BF16,
                       gb->data());
      dense_bytes[part.slice.shard] += gb->size();
    }
  }
  const uint64_t seq = push_seq_.fetch_add(1) + 1;
  for (int s = 0; s < S; ++s) {
    req[s].set_session(session_);
    req[s].set_task_index(options_.task_index);
    req[s].set_seq(seq);
  }
  if (position) *req[0].mutable_position() = *position;
  ShardCallTrace trace(S);
  for (int s = 0; s < S; ++s) req[s].set_trace(trace.on());
  std::vector<int> rest = AllShards();
  if (advance_step && S > 1) {
    // Shard 0 numbers the step; the others learn it (and shard 0's newest
    // snapshot cut) from its answer, so each orders the push around a cut.
    Status st = ParallelCall("Push", {0}, [&](int s, grpc::ClientContext* ctx, auto done) {
      shards_[s]->Push(ctx, &req[s], &resp[s], trace.Wrap(s, done));
    });
    if (!st.ok()) return st;
    for (int s = 1; s < S; ++s) {
      req[s].set_global_step(resp[0].global_step());
      req[s].set_cut_step(resp[0].cut_step());
    }
    rest.erase(rest.begin());
  }
  Status st = ParallelCall("Push", rest, [&](int s, grpc::ClientContext* ctx, auto done) {
    shards_[s]->Push(ctx, &req[s], &resp[s], trace.Wrap(s, done));
  });
  if (!st.ok()) return st;
  trace.Finish("Push", "push", resp);
  if (bytes) {
    for (int s = 0; s < S; ++s) {
      CountBytes(s, req[s].ByteSizeLong(), resp[s].ByteSizeLong(), dense_bytes[s], bytes);
    }
  }
  *global_step = resp[0].global_step();
  return Status::Ok();
}

Status PsClient::CloseStep(int64_t step) {
  std::vector<int> others = AllShards();
  others.erase(others.begin());
  if (others.empty() || step <= 0) return Status::Ok();
  ps::PushRequest req;  // no rows, no dense variables: it only marks the step
  req.set_global_step(step);
  std::vector<ps::PushResponse> resp(num_shards());
  return ParallelCall("Push", others, [&](int s, grpc::ClientContext* ctx, auto done) {
    shards_[s]->Push(ctx, &req, &resp[s], done);
  });
}

Status PsClient::GlobalStep(int64_t* step) {
  ps::StepRequest req;
  ps::StepResponse resp;
  Status st = ParallelCall("GlobalStep", {0}, [&](int s, grpc::ClientContext* ctx, auto done) {
    shards_[s]->GlobalStep(ctx, &req, &resp, done);
  });
  if (st.ok()) *step = resp.global_step();
  return st;
}

Status PsClient::WorkerDone(uint32_t task_index, uint32_t* done) {
  ps::WorkerDoneRequest req;
  req.set_task_index(task_index);
  ps::WorkerDoneResponse resp;
  Status st = ParallelCall("WorkerDone", {0}, [&](int s, grpc::ClientContext* ctx, auto cb) {
    shards_[s]->WorkerDone(ctx, &req, &resp, cb);
  });
  if (st.ok()) *done = resp.done();
  return st;
}

Status PsClient::Heartbeat(const ps::HeartbeatRequest& req) {
  ps::HeartbeatResponse resp;
  return ParallelCall("Heartbeat", {0}, [&](int s, grpc::ClientContext* ctx, auto cb) {
    shards_[s]->Heartbeat(ctx, &req, &resp, cb);
  });
}

Status PsClient::JobStatus(ps::JobStatusResponse* status) {
  ps::JobStatusRequest req;
  return ParallelCall("JobStatus", {0}, [&](int s, grpc::ClientContext* ctx, auto cb) {
    status->Clear();
    shards_[s]->JobStatus(ctx, &req, status, cb);
  });
}

Status PsClient::Cut(int64_t* global_step) {
  ps::CutRequest req;
  std::vector<ps::CutResponse> resp(1);
  ShardCallTrace trace(1);
  req.set_trace(trace.on());
  Status st = ParallelCall("Cut", {0}, [&](int s, grpc::ClientContext* ctx, auto done) {
    shards_[s]->Cut(ctx, &req, &resp[0], trace.Wrap(s, done));
  });
  if (!st.ok()) return st;
  trace.Finish("Cut", "cut", resp);
  *global_step = resp[0].global_step();
  return st;
}

Status PsClient::Save(const std::string& dir, int64_t global_step, SaveResult* result,
                      int64_t since_step) {
  const int S = num_shards();
  ps::SaveRequest req;
  req.set_dir(dir);
  req.set_global_step(global_step);
  req.set_since_step(since_step);
  std::vector<ps::SaveResponse> resp(S);
  Status st = ParallelCall(
      "Save", AllShards(),
      [&](int s, grpc::ClientContext* ctx, auto done) {
        shards_[s]->Save(ctx, &req, &resp[s], done);
      },
      options_.save_deadline_ms);
  if (!st.ok()) return st;
  *result = SaveResult();
  for (const auto& r : resp) {
    result->files.push_back(CheckpointFile{r.file(), r.bytes(), r.crc32c()});
    result->rows += r.rows();
    result->max_cut_ms = std::max(result->max_cut_ms, r.cut_ms());
    result->max_write_ms = std::max(result->max_write_ms, r.write_ms());
  }
  result->positions.assign(resp[0].positions().begin(), resp[0].positions().end());
  return Status::Ok();
}

Status PsClient::Stats(std::vector<ps::StatsResponse>* stats) {
  const int S = num_shards();
  stats->assign(S, ps::StatsResponse());
  ps::StatsRequest req;
  return ParallelCall("Stats", AllShards(), [&](int s, grpc::ClientContext* ctx, auto done) {
    shards_[s]->Stats(ctx, &req, &(*stats)[s], done);
  });
}

Status PsClient::ShutdownAll() {
  const int S = num_shards();
  ps::ShutdownRequest req;
  std::vector<ps::ShutdownResponse> resp(S);
  return ParallelCall("Shutdown", AllShards(), [&](int s, grpc::ClientContext* ctx, auto done) {
    shards_[s]->Shutdown(ctx, &req, &resp[s], done);
  });
}

}  // namespace deepfm
