#include "tools/explore/results_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/errors.h"

namespace epsim::explore {

namespace {
std::string os_error(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

std::string read_all(int fd, const std::string& path) {
  std::string text;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) throw InputError(os_error(path, "cannot read"));
    if (n == 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
  }
}
}  // namespace

ResultsFile::ResultsFile(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw InputError(os_error(path_, "cannot open results file"));
  try {
    // Two sweeps appending to one file would both run the points neither has finished.
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) throw InputError(path_ + ": another epsim sweep is writing this file");
    const std::string text = read_all(fd_, path_);
    const std::size_t complete = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    if (complete < text.size()) {
      dropped_ = text.size() - complete;
      if (::ftruncate(fd_, static_cast<off_t>(complete)) != 0) throw InputError(os_error(path_, "cannot cut its torn last line"));
    }
    std::size_t line = 0, start = 0;
    while (start < complete) {
      const std::size_t end = text.find('\n', start);
      ++line;
      const nlohmann::json j = nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(start),
                                                     text.begin() + static_cast<std::ptrdiff_t>(end), nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string())
        throw InputError(path_ + ":" + std::to_string(line) + ": not a sweep record (a JSON object with a string \"id\")");
      ids_.insert(j["id"].get<std::string>());
      records_.push_back(j);
      start = end + 1;
    }
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

ResultsFile::~ResultsFile() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultsFile::append(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw InputError(os_error(path_, "cannot write"));
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd_) != 0) throw InputError(os_error(path_, "cannot flush to disk"));
  ids_.insert(record.at("id").get<std::string>());
  records_.push_back(record);
}

}  // namespace epsim::explore
