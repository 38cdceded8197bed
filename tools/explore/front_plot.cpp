#include "tools/explore/front_plot.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace epsim::explore {

namespace {

// A tick step of 1, 2 or 5 x 10^k giving about 5 ticks over [0, top].
double tick_step(double top) {
  const double raw = top / 5.0;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

struct Panel {
  double x0, y0, w, h;      // plot area in px
  double xmax, ymax;        // data range from 0
  double px(double x) const { return x0 + w * std::min(x, xmax) / xmax; }
  double py(double y) const { return y0 + h - h * std::min(y, ymax) / ymax; }
};

void axes(std::string& s, const Panel& p, const std::string& xlabel, const std::string& ylabel) {
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n", p.x0, p.y0, p.w, p.h);
  const double xs = tick_step(p.xmax), ys = tick_step(p.ymax);
  for (double x = 0; x <= p.xmax * 1.0001; x += xs)
    s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#eee\"/><text x=\"{0:.1f}\" y=\"{3}\" "
                     "text-anchor=\"middle\">{4:g}</text>\n",
                     p.px(x), p.y0, p.y0 + p.h, p.y0 + p.h + 15, x);
  for (double y = 0; y <= p.ymax * 1.0001; y += ys)
    s += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#eee\"/><text x=\"{3}\" y=\"{4:.1f}\" "
                     "text-anchor=\"end\">{5:g}</text>\n",
                     p.x0, p.py(y), p.x0 + p.w, p.x0 - 5, p.py(y) + 4, y);
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", p.x0 + p.w / 2, p.y0 + p.h + 34, esc(xlabel));
  s += fmt::format("<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n", p.x0 - 42,
                   p.y0 + p.h / 2, esc(ylabel));
}

}  // namespace

std::string front_svg(const FrontPlot& plot, const std::vector<SearchPoint>& pruned, const std::vector<SearchPoint>& confirmed) {
  const double width = 1000, height = 480;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height, width, height);
  s += fmt::format("<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n", width / 2, esc(plot.title));
  // Latency axes reach 1.5 x the target or the confirmed points (pruned points beyond sit on the
  // right edge); throughput reaches every point.
  double ymax = 0, tpot_max = plot.tpot_target * 1.5, ttft_max = plot.ttft_target * 1.5;
  for (const SearchPoint& p : pruned)
    if (p.error.empty()) {
      ymax = std::max(ymax, p.throughput);
      if (plot.tpot_target <= 0) tpot_max = std::max(tpot_max, p.tpot);
      if (plot.ttft_target <= 0) ttft_max = std::max(ttft_max, p.ttft);
    }
  for (const SearchPoint& p : confirmed)
    if (p.error.empty()) {
      ymax = std::max(ymax, p.throughput);
      tpot_max = std::max(tpot_max, p.tpot);
      ttft_max = std::max(ttft_max, p.ttft);
    }
  ymax = ymax > 0 ? ymax * 1.1 : 1;
  const Panel left{80, 50, 380, 320, tpot_max > 0 ? tpot_max * 1.05 : 1, ymax};
  const Panel right{580, 50, 380, 320, ttft_max > 0 ? ttft_max * 1.05 : 1, ymax};
  const std::string pct = fmt::format("p{}", plot.percentile);
  axes(s, left, "TPOT " + pct + " (ms)", "output tokens/s per GPU");
  axes(s, right, "TTFT " + pct + " (ms)", "output tokens/s per GPU");
  for (int side = 0; side < 2; ++side) {
    const Panel& p = side == 0 ? left : right;
    auto lat = [&](const SearchPoint& q) { return side == 0 ? q.tpot : q.ttft; };
    const double target = side == 0 ? plot.tpot_target : plot.ttft_target;
    if (target > 0)
      s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#d62728\" stroke-dasharray=\"5,4\"/>"
                       "<text x=\"{3:.1f}\" y=\"{4}\" fill=\"#d62728\">target</text>\n",
                       p.px(target), p.y0, p.y0 + p.h, p.px(target) + 3, p.y0 + 12);
    for (const SearchPoint& q : pruned)
      if (q.error.empty())
        s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"#bbb\"/>\n", p.px(lat(q)), p.py(q.throughput));
    std::vector<std::pair<double, double>> line;
    // Off the front first, so that a front point is drawn over an equal one.
    std::vector<std::size_t> order;
    for (int pass = 0; pass < 2; ++pass)
      for (std::size_t i = 0; i < confirmed.size(); ++i)
        if ((side == 0 ? confirmed[i].front_tpot : confirmed[i].front_ttft) == (pass == 1)) order.push_back(i);
    for (std::size_t i : order) {
      const SearchPoint& q = confirmed[i];
      if (!q.error.empty()) continue;
      const bool front = side == 0 ? q.front_tpot : q.front_ttft;
      const double x = p.px(lat(q)), y = p.py(q.throughput);
      if (front) line.push_back({x, y});
      s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4.5\" fill=\"{}\" stroke=\"{}\"/>\n", x, y, front ? "#d62728" : "white",
                       front ? "#d62728" : "#1f77b4");
      if (i < plot.numbers.size() && plot.numbers[i] > 0)
        s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\">{}</text>\n", x + 6, y - 5, plot.numbers[i]);
    }
    std::sort(line.begin(), line.end());
    if (line.size() > 1) {
      std::string pts;
      for (const auto& [x, y] : line) pts += fmt::format("{:.1f},{:.1f} ", x, y);
      s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"#d62728\"/>\n", pts);
    }
  }
  // Legend, two lines.
  const double l1 = height - 42, l2 = height - 20;
  s += fmt::format("<circle cx=\"90\" cy=\"{0}\" r=\"2.5\" fill=\"#bbb\"/><text x=\"98\" y=\"{1}\">pruning pass (analytical "
                   "network, layers extrapolated; points beyond an axis sit on its edge)</text>\n",
                   l1, l1 + 4);
  s += fmt::format("<circle cx=\"90\" cy=\"{0}\" r=\"4.5\" fill=\"white\" stroke=\"#1f77b4\"/><text x=\"98\" y=\"{1}\">"
                   "confirmed (flow network, every layer)</text>\n",
                   l2, l2 + 4);
  s += fmt::format("<circle cx=\"400\" cy=\"{0}\" r=\"4.5\" fill=\"#d62728\"/><text x=\"408\" y=\"{1}\">confirmed, on a "
                   "Pareto front within the targets (numbered as printed)</text>\n",
                   l2, l2 + 4);
  s += "</svg>\n";
  return s;
}

}  // namespace epsim::explore
