#include "common/cluster_spec.h"

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/checkpoint_manifest.h"

namespace deepfm {
namespace {

using json = nlohmann::json;

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// "master" is what older TFJobs call the chief.
std::string CanonicalType(const std::string& type) { return type == "master" ? "chief" : type; }

Status ReadTaskList(const json& cluster, const std::string& key, const std::string& origin,
                    std::vector<std::string>* out) {
  out->clear();
  if (!cluster.contains(key)) return Status::Ok();
  const json& list = cluster.at(key);
  if (!list.is_array())
    return InvalidArgument(origin + ": cluster." + key + " must be a list of \"host:port\"");
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_string()) {
      return InvalidArgument(origin + ": cluster." + key + "[" + std::to_string(i) +
                             "] must be a \"host:port\" string");
    }
    out->push_back(list[i].get<std::string>());
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> ClusterSpec::trainers() const {
  std::vector<std::string> out = chief;
  out.insert(out.end(), worker.begin(), worker.end());
  return out;
}

int ClusterSpec::trainer_index() const {
  if (task_type == "chief") return task_index;
  if (task_type == "worker") return static_cast<int>(chief.size()) + task_index;
  return -1;
}

bool ClusterSpec::is_chief() const {
  return task_type == "chief" || (chief.empty() && task_type == "worker" && task_index == 0);
}

std::string ClusterSpec::task_address() const {
  const std::vector<std::string>* list = task_type == "ps"       ? &ps
                                         : task_type == "chief"  ? &chief
                                         : task_type == "worker" ? &worker
                                                                 : nullptr;
  if (!list || task_index < 0 || task_index >= static_cast<int>(list->size())) return "";
  return (*list)[task_index];
}

std::string ClusterSpec::task_name() const { return task_type + ":" + std::to_string(task_index); }

Status SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return InvalidArgument("\"" + address + "\" is not host:port");
  }
  std::string h = address.substr(0, colon);
  if (h.front() == '[') {
    if (h.back() != ']' || h.size() < 3)
      return InvalidArgument("\"" + address + "\" is not [v6-address]:port");
    h = h.substr(1, h.size() - 2);
  }
  const std::string p = address.substr(colon + 1);
  if (p.find_first_not_of("0123456789") != std::string::npos || p.size() > 5 || std::stoi(p) < 1 ||
      std::stoi(p) > 65535) {
    return InvalidArgument("\"" + address + "\": the port must be a number in 1..65535");
  }
  if (h.find_first_of(" \t/,") != std::string::npos) {
    return InvalidArgument("\"" + address + "\": \"" + h + "\" is not a host name or address");
  }
  *host = h;
  *port = std::stoi(p);
  return Status::Ok();
}

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Status ParseClusterJson(const std::string& text, const std::string& origin, ClusterSpec* out) {
  *out = ClusterSpec();
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return InvalidArgument(origin + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object())
    return InvalidArgument(origin + ": must be a JSON object with \"cluster\" and \"task\"");
  for (const auto& [key, value] : doc.items()) {
    if (key != "cluster" && key != "task" && key != "environment" && key != "rpc_layer") {
      return InvalidArgument(origin + ": unknown key \"" + key + "\" (expected cluster, task)");
    }
  }
  if (!doc.contains("cluster") || !doc["cluster"].is_object()) {
    return InvalidArgument(origin +
                           ": \"cluster\" must be an object of task lists (ps, worker, chief)");
  }
  const json& cluster = doc["cluster"];
  for (const auto& [key, value] : cluster.items()) {
    if (key != "ps" && key != "worker" && key != "chief" && key != "master") {
      return InvalidArgument(origin + ": cluster." + key +
                             ": task type not supported (ps, worker, chief)");
    }
  }
  if (cluster.contains("chief") && cluster.contains("master")) {
    return InvalidArgument(origin + ": cluster has both \"chief\" and \"master\"; give one");
  }
  Status s = ReadTaskList(cluster, "ps", origin, &out->ps);
  if (s.ok()) s = ReadTaskList(cluster, "worker", origin, &out->worker);
  if (s.ok())
    s = ReadTaskList(cluster, cluster.contains("master") ? "master" : "chief", origin, &out->chief);
  if (!s.ok()) return s;
  if (doc.contains("task")) {
    const json& task = doc["task"];
    if (!task.is_object() || !task.contains("type") || !task["type"].is_string()) {
      return InvalidArgument(origin + ": task.type must be a string (ps, worker or chief)");
    }
    out->task_type = CanonicalType(task["type"].get<std::string>());
    if (task.contains("index")) {
      if (!task["index"].is_number_integer())
        return InvalidArgument(origin + ": task.index must be an integer");
      out->task_index = task["index"].get<int>();
    }
  }
  return Status::Ok();
}

std::string ClusterJson(const ClusterSpec& spec) {
  json cluster = json::object();
  if (!spec.chief.empty()) cluster["chief"] = spec.chief;
  if (!spec.worker.empty()) cluster["worker"] = spec.worker;
  cluster["ps"] = spec.ps;
  json doc = {{"cluster", cluster}};
  if (!spec.task_type.empty()) doc["task"] = {{"type", spec.task_type}, {"index", spec.task_index}};
  return doc.dump();
}

Status ValidateClusterSpec(const ClusterSpec& spec, const std::string& origin, bool need_task) {
  if (spec.ps.empty())
    return InvalidArgument(origin +
                           ": cluster.ps is empty: a job needs at least one parameter server");
  if (spec.num_trainers() == 0) {
    return InvalidArgument(origin +
                           ": cluster has no worker and no chief: a job needs a task that trains");
  }
  if (spec.chief.size() > 1) {
    return InvalidArgument(origin + ": cluster.chief lists " + std::to_string(spec.chief.size()) +
                           " tasks; there is at most one chief");
  }
  std::set<std::string> seen;
  for (const auto* list : {&spec.chief, &spec.worker, &spec.ps}) {
    const std::string name = list == &spec.chief ? "chief" : list == &spec.worker ? "worker" : "ps";
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string field = origin + ": cluster." + name + "[" + std::to_string(i) + "]";
      std::string host;
      int port;
      Status s = SplitHostPort((*list)[i], &host, &port);
      if (!s.ok()) return InvalidArgument(field + ": " + s.message());
      if (!seen.insert((*list)[i]).second) {
        return InvalidArgument(field + ": \"" + (*list)[i] +
                               "\" is listed twice; every task needs its own port");
      }
    }
  }
  if (!need_task) return Status::Ok();
  if (spec.task_type.empty())
    return InvalidArgument(origin +
                           ": no task: say which task this process is (task.type, task.index)");
  if (spec.task_type != "ps" && spec.task_type != "worker" && spec.task_type != "chief") {
    return InvalidArgument(origin + ": task.type \"" + spec.task_type +
                           "\" is not ps, worker or chief");
  }
  if (spec.task_address().empty()) {
    const size_t n = spec.task_type == "ps"      ? spec.ps.size()
                     : spec.task_type == "chief" ? spec.chief.size()
                                                 : spec.worker.size();
    return InvalidArgument(origin + ": task.index " + std::to_string(spec.task_index) +
                           " is outside cluster." + spec.task_type + " (" + std::to_string(n) +
                           " tasks)");
  }
  return Status::Ok();
}

Status ResolveClusterSpec(const ClusterSources& src, bool need_task, ClusterSpec* out,
                          std::string* origin) {
  Status s;
  if (!src.spec_file.empty()) {
    *origin = src.spec_file;
    std::string text;
    s = ReadFile(src.spec_file, &text);
    if (!s.ok()) return InvalidArgument("--cluster_spec: " + s.message());
    s = ParseClusterJson(text, src.spec_file, out);
  } else if (!src.tf_config.empty()) {
    *origin = "TF_CONFIG";
    s = ParseClusterJson(src.tf_config, "TF_CONFIG", out);
  } else if (!src.ps_hosts.empty() || !src.worker_hosts.empty()) {
    *origin = "--ps_hosts/--worker_hosts";
    *out = ClusterSpec();
    out->ps = SplitList(src.ps_hosts);
    out->worker = SplitList(src.worker_hosts);
    out->task_type = CanonicalType(src.job_name);
    out->task_index = src.task_index;
    if (out->task_type == "chief") {
      return InvalidArgument(
          "--job_name=chief: TF1 flags have no chief list; worker 0 is the chief");
    }
  } else {
    return NotFound(
        "no cluster spec: give --cluster_spec=FILE, set TF_CONFIG, or pass --ps_hosts, "
        "--worker_hosts, --job_name and --task_index");
  }
  if (!s.ok()) return s;
  return ValidateClusterSpec(*out, *origin, need_task);
}

}  // namespace deepfm
