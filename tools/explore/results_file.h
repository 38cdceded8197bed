// The sweep's results: one JSON line per finished point, appended and flushed to disk (fsync) one
// at a time, so that a sweep killed at any moment (SIGKILL included) loses at most the line being
// written, which the next open cuts off. Reopening reads the records already there: the sweep
// skips their points.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace epsim::explore {

class ResultsFile {
 public:
  // Opens `path` for appending, creating it, and locks it (flock) against a second sweep; reads its lines. A last line without its newline (a
  // write cut short by a kill) is cut off the file. Throws InputError if the file cannot be opened
  // or a complete line is not JSON with a string "id".
  explicit ResultsFile(std::string path);
  ~ResultsFile();
  ResultsFile(const ResultsFile&) = delete;
  ResultsFile& operator=(const ResultsFile&) = delete;

  const std::vector<nlohmann::json>& records() const { return records_; }
  const std::set<std::string>& ids() const { return ids_; }
  std::size_t dropped_bytes() const { return dropped_; }  // of a torn last line, cut off on open
  // Writes `record` (with a string "id") as one line and waits for it to reach the disk.
  void append(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<nlohmann::json> records_;
  std::set<std::string> ids_;
  std::size_t dropped_ = 0;
};

}  // namespace epsim::explore
