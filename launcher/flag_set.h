// A small command-line flag table for the `deepfm` launcher. Unlike gflags it
// knows which flags belong to which subcommand, rejects unknown ones with the
// list of valid ones, and can hand the set values on to child processes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace deepfm::launcher {

class FlagSet {
 public:
  enum Kind { kString, kInt, kDouble, kBool };

  explicit FlagSet(std::string command) : command_(std::move(command)) {}

  void Add(const std::string& name, Kind kind, const std::string& default_value,
           const std::string& help);
  // Parses argv-style arguments: --name=value, --name value, --flag,
  // --noflag (booleans). Anything else is an error naming the valid flags.
  Status Parse(const std::vector<std::string>& args);

  std::string Get(const std::string& name) const;
  long long GetInt(const std::string& name) const;
  double GetDouble(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  bool WasSet(const std::string& name) const { return set_.count(name) > 0; }
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  void Set(const std::string& name, const std::string& value);

  std::string Usage() const;
  // Every flag's current value, by name.
  std::map<std::string, std::string> Values() const;

 private:
  struct Flag {
    Kind kind;
    std::string value;
    std::string default_value;
    std::string help;
  };
  Status Assign(const std::string& name, const std::string& value);
  std::string ValidNames() const;

  std::string command_;
  std::map<std::string, Flag> flags_;
  std::vector<std::string> order_;
  std::map<std::string, bool> set_;
};

}  // namespace deepfm::launcher
