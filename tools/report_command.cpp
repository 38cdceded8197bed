// epsim report INPUT [-o report.html]: one self-contained HTML page of a run, a compare or a sweep.
#include <filesystem>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "sim/report.h"
#include "tools/commands.h"
#include "tools/report/html_report.h"
#include "tools/report/report_data.h"

namespace po = boost::program_options;

namespace epsim::cli {

int report_command(const Args& args) {
  std::string input, out;
  po::options_description desc;
  desc.add_options()("input", po::value(&input))("output,o", po::value(&out));
  po::positional_options_description pos;
  pos.add("input", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
  po::notify(vm);
  if (input.empty()) throw UsageError("report needs a run, compare or sweep directory, or a results.jsonl (epsim report DIR -o report.html)");
  namespace fs = std::filesystem;
  if (out.empty()) out = ((fs::is_directory(input) ? fs::path(input) : fs::path(input).parent_path()) / "report.html").string();
  const nlohmann::json data = report::load_report_data(input);
  const std::string kind = data["kind"].get<std::string>();
  write_file(out, report::html_report(data, "epsim " + kind + ": " + input));
  fmt::print("epsim report: the {} in {} -> {} ({:.0f} KB, self-contained: open it in a browser)\n", kind, input, out,
             static_cast<double>(fs::file_size(out)) / 1024.0);
  return 0;
}

}  // namespace epsim::cli
