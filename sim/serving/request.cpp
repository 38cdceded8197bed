#include "sim/serving/request.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "models/errors.h"
#include "models/random_stream.h"

namespace epsim::serving {

namespace {

// A length of mean `mean` drawn uniform in mean x [1 - spread, 1 + spread], rounded, at least 1.
std::int64_t draw_length(RandomStream& rng, std::int64_t mean, double spread) {
  if (spread == 0) return mean;
  const double m = static_cast<double>(mean);
  const double v = m * (1.0 - spread) + 2.0 * m * spread * rng.uniform();
  return std::max<std::int64_t>(1, std::llround(v));
}

std::vector<Request> poisson(const ServingSpec& s) {
  std::vector<Request> out;
  out.reserve(static_cast<std::size_t>(s.requests));
  RandomStream gaps(derive_seed(s.seed, {0}));
  RandomStream lengths(derive_seed(s.seed, {1}));
  double t = 0.0;  // seconds
  for (std::int64_t i = 0; i < s.requests; ++i) {
    t += -std::log(1.0 - gaps.uniform()) / s.rate;
    Request r;
    r.id = static_cast<int>(i);
    r.arrival = Time::seconds(t);
    r.input = draw_length(lengths, s.input_tokens, s.length_spread);
    r.output = draw_length(lengths, s.output_tokens, s.length_spread);
    out.push_back(r);
  }
  return out;
}

}  // namespace

std::vector<Request> parse_trace(const std::string& text, const std::string& name) {
  std::vector<Request> out;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  double last = 0.0;
  bool header_seen = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    auto fail = [&](const std::string& rule) {
      throw InputError(fmt::format("{}:{}: \"{}\": {}", name, line_no, line, rule));
    };
    if (cells.size() != 3) fail("must be arrival_s,input_tokens,output_tokens");
    double arrival = 0;
    long long input = 0, output = 0;
    try {
      std::size_t n0 = 0, n1 = 0, n2 = 0;
      arrival = std::stod(cells[0], &n0);
      input = std::stoll(cells[1], &n1);
      output = std::stoll(cells[2], &n2);
      auto rest_blank = [](const std::string& c, std::size_t n) { return c.find_first_not_of(" \t", n) == std::string::npos; };
      if (!rest_blank(cells[0], n0) || !rest_blank(cells[1], n1) || !rest_blank(cells[2], n2)) throw std::invalid_argument("");
    } catch (const std::exception&) {
      // One header row (not starting like a number) is allowed before the first request.
      const char c0 = line[first];
      if (out.empty() && !header_seen && !std::isdigit(static_cast<unsigned char>(c0)) && c0 != '.' && c0 != '-' && c0 != '+') {
        header_seen = true;
        continue;
      }
      fail("must be a number (seconds), an integer and an integer");
    }
    if (!std::isfinite(arrival) || arrival < 0) fail("arrival_s must be >= 0");
    if (arrival < last) fail(fmt::format("arrival_s must not decrease (previous row: {})", last));
    if (input < 1) fail("input_tokens must be >= 1");
    if (output < 1) fail("output_tokens must be >= 1");
    last = arrival;
    Request r;
    r.id = static_cast<int>(out.size());
    r.arrival = Time::seconds(arrival);
    r.input = input;
    r.output = output;
    out.push_back(r);
  }
  if (out.empty()) throw InputError(name + ": no requests (rows arrival_s,input_tokens,output_tokens)");
  return out;
}

std::vector<Request> make_requests(const ServingSpec& spec) {
  if (spec.arrivals == Arrivals::Poisson) return poisson(spec);
  std::ifstream in(spec.trace);
  if (!in) throw InputError(spec.trace + ": cannot open file (serving.trace)");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_trace(ss.str(), spec.trace);
}

}  // namespace epsim::serving
