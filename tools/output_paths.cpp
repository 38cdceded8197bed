#include "tools/output_paths.h"

#include <filesystem>
#include <fstream>

#include "models/errors.h"

namespace epsim::cli {

namespace fs = std::filesystem;

void require_writable_dir(const std::string& option, const std::string& dir) {
  if (dir.empty()) throw InputError(option + " \"\": must name a directory");
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) throw InputError(option + " " + dir + ": exists and is not a directory");
  fs::create_directories(dir, ec);
  if (ec) throw InputError(option + " " + dir + ": cannot create the directory: " + ec.message());
  const fs::path probe = fs::path(dir) / ".epsim-write-probe";
  {
    std::ofstream f(probe);
    if (!f) throw InputError(option + " " + dir + ": cannot write files there");
  }
  fs::remove(probe, ec);
}

void require_writable_file(const std::string& option, const std::string& file) {
  if (file.empty()) throw InputError(option + " \"\": must name a file");
  std::error_code ec;
  if (fs::is_directory(file, ec)) throw InputError(option + " " + file + ": is a directory");
  const bool existed = fs::exists(file, ec);
  {
    std::ofstream f(file, std::ios::app);
    if (!f) throw InputError(option + " " + file + ": cannot write the file (does its directory exist and is it writable?)");
  }
  if (!existed) fs::remove(file, ec);
}

}  // namespace epsim::cli
