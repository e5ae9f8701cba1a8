#include "launcher/flag_set.h"

#include <cstdlib>

namespace deepfm::launcher {

void FlagSet::Add(const std::string& name, Kind kind, const std::string& default_value,
                  const std::string& help) {
  flags_[name] = Flag{kind, default_value, default_value, help};
  order_.push_back(name);
}

std::string FlagSet::ValidNames() const {
  std::string s;
  for (const std::string& n : order_) s += (s.empty() ? "--" : ", --") + n;
  return s;
}

Status FlagSet::Assign(const std::string& name, const std::string& value) {
  auto it = flags_.find(name);
  if (it == flags_.end()) {
    return InvalidArgument("deepfm " + command_ + ": unknown flag --" + name + "; valid flags: " +
                           ValidNames());
  }
  Flag& f = it->second;
  char* end = nullptr;
  switch (f.kind) {
    case kInt:
      std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0') {
        return InvalidArgument("deepfm " + command_ + ": --" + name + " needs an integer, got '" + value + "'");
      }
      break;
    case kDouble:
      std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0') {
        return InvalidArgument("deepfm " + command_ + ": --" + name + " needs a number, got '" + value + "'");
      }
      break;
    case kBool:
      if (value != "true" && value != "false" && value != "1" && value != "0") {
        return InvalidArgument("deepfm " + command_ + ": --" + name + " needs true or false, got '" + value + "'");
      }
      break;
    case kString:
      break;
  }
  f.value = (f.kind == kBool) ? ((value == "true" || value == "1") ? "true" : "false") : value;
  set_[name] = true;
  return Status::Ok();
}

Status FlagSet::Parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      return InvalidArgument("deepfm " + command_ + ": unexpected argument '" + a +
                             "'; flags look like --name=value");
    }
    std::string body = a.substr(2);
    const size_t eq = body.find('=');
    if (eq != std::string::npos) {
      Status s = Assign(body.substr(0, eq), body.substr(eq + 1));
      if (!s.ok()) return s;
      continue;
    }
    auto it = flags_.find(body);
    if (it != flags_.end() && it->second.kind == kBool) {
      Status s = Assign(body, "true");
      if (!s.ok()) return s;
      continue;
    }
    if (it == flags_.end() && body.rfind("no", 0) == 0) {
      auto neg = flags_.find(body.substr(2));
      if (neg != flags_.end() && neg->second.kind == kBool) {
        Status s = Assign(body.substr(2), "false");
        if (!s.ok()) return s;
        continue;
      }
    }
    if (it == flags_.end()) return Assign(body, "");  // reports the unknown flag
    if (i + 1 >= args.size()) {
      return InvalidArgument("deepfm " + command_ + ": --" + body + " needs a value");
    }
    Status s = Assign(body, args[++i]);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

std::string FlagSet::Get(const std::string& name) const { return flags_.at(name).value; }
long long FlagSet::GetInt(const std::string& name) const { return std::atoll(Get(name).c_str()); }
double FlagSet::GetDouble(const std::string& name) const { return std::atof(Get(name).c_str()); }
bool FlagSet::GetBool(const std::string& name) const { return Get(name) == "true"; }
void FlagSet::Set(const std::string& name, const std::string& value) { flags_.at(name).value = value; }

std::string FlagSet::Usage() const {
  std::string s = "usage: deepfm " + command_ + " [flags]\n";
  for (const std::string& n : order_) {
    const Flag& f = flags_.at(n);
    s += "  --" + n + " (default: " + (f.default_value.empty() ? "\"\"" : f.default_value) + ")\n      " +
         f.help + "\n";
  }
  return s;
}

std::map<std::string, std::string> FlagSet::Values() const {
  std::map<std::string, std::string> out;
  for (const auto& [name, flag] : flags_) out[name] = flag.value;
  return out;
}

}  // namespace deepfm::launcher
