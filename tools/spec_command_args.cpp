#include "tools/spec_command_args.h"

#include <boost/program_options.hpp>
#include <filesystem>

#include "tools/commands.h"

namespace po = boost::program_options;

namespace epsim::cli {

SpecCommandArgs parse_spec_command(const Args& args, const std::string& command) {
  SpecCommandArgs o;
  po::options_description desc;
  desc.add_options()("spec", po::value(&o.spec))("out", po::value(&o.out))("jobs,j", po::value(&o.jobs));
  po::positional_options_description pos;
  pos.add("spec", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
  po::notify(vm);
  if (o.spec.empty()) throw UsageError(command + " needs a specification file (epsim " + command + " SPEC.json)");
  if (o.out.empty()) o.out = "out/" + std::filesystem::path(o.spec).stem().string();
  return o;
}

}  // namespace epsim::cli
