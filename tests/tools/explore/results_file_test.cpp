#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "models/errors.h"
#include "tools/explore/results_file.h"

using namespace epsim;
using namespace epsim::explore;
using nlohmann::json;

namespace {
std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("epsim-results-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}
std::string text_of(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("results are appended a line each and read back on reopening") {
  const std::string path = temp_path("append.jsonl");
  std::filesystem::remove(path);
  {
    ResultsFile f(path);
    CHECK(f.records().empty());
    f.append({{"id", "a"}, {"x", 1}});
    f.append({{"id", "b"}, {"x", 2}});
    CHECK(f.ids() == std::set<std::string>{"a", "b"});
  }
  CHECK(text_of(path) == "{\"id\":\"a\",\"x\":1}\n{\"id\":\"b\",\"x\":2}\n");
  ResultsFile again(path);
  REQUIRE(again.records().size() == 2);
  CHECK(again.records()[1]["x"] == 2);
  again.append({{"id", "c"}});
  CHECK(again.ids().size() == 3);
}

TEST_CASE("a line cut short by a kill is dropped; a damaged complete line is an error") {
  const std::string path = temp_path("torn.jsonl");
  { std::ofstream(path) << "{\"id\":\"a\"}\n{\"id\":\"b\",\"x\":"; }
  {
    ResultsFile f(path);
    CHECK(f.dropped_bytes() == 14);  // {"id":"b","x":
    CHECK(f.ids() == std::set<std::string>{"a"});
    f.append({{"id", "b"}});
  }
  CHECK(text_of(path) == "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
  { std::ofstream(path) << "{\"id\":\"a\"}\nnot json\n"; }
  CHECK_THROWS_WITH_AS(ResultsFile{path}, (path + ":2: not a sweep record (a JSON object with a string \"id\")").c_str(), InputError);
}

TEST_CASE("one sweep at a time writes a results file") {
  const std::string path = temp_path("locked.jsonl");
  std::filesystem::remove(path);
  ResultsFile first(path);
  CHECK_THROWS_WITH_AS(ResultsFile{path}, (path + ": another epsim sweep is writing this file").c_str(), InputError);
}

TEST_CASE("an unwritable place is an input error naming the file") {
  CHECK_THROWS_AS(ResultsFile{"/nonexistent-dir/results.jsonl"}, InputError);
}
