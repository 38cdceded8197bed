#include "sim/chrome_trace.h"

#include <algorithm>

#include <fmt/format.h>

namespace epsim {

namespace {

std::int64_t to_ns(Time t) { return (t.picoseconds() + 500) / 1000; }
std::string us(std::int64_t ns) { return fmt::format("{}.{:03}", ns / 1000, ns % 1000); }

bool shown(const std::vector<int>& wanted, int v) {
  return wanted.empty() || std::binary_search(wanted.begin(), wanted.end(), v);
}

struct Slice {
  TaskId task;
  std::int64_t start, end;  // ns
};

// Communication lanes of one GPU: each slice goes to the first lane whose last slice has ended.
std::vector<int> lanes(const std::vector<Slice>& slices) {
  std::vector<std::int64_t> lane_end;
  std::vector<int> out;
  for (const Slice& s : slices) {
    std::size_t l = 0;
    while (l < lane_end.size() && lane_end[l] > s.start) ++l;
    if (l == lane_end.size()) lane_end.push_back(0);
    lane_end[l] = s.end;
    out.push_back(static_cast<int>(l));
  }
  return out;
}

class TraceWriter {
 public:
  void event(const std::string& json) {
    if (!first_) fmt::format_to(std::back_inserter(out_), ",\n");
    first_ = false;
    fmt::format_to(std::back_inserter(out_), "{}", json);
  }
  std::string finish() {
    return "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n" + fmt::to_string(out_) + "\n]}\n";
  }

 private:
  fmt::memory_buffer out_;
  bool first_ = true;
};

// Perfetto colours slices by name, so the micro-batch is in the name; chrome://tracing also reads cname.
constexpr const char* kColour[] = {"thread_state_running", "rail_response", "rail_animation", "good"};

std::string args(const Task& t, const TaskGraph& g) {
  std::string a = fmt::format("\"layer\":{},\"micro_batch\":{},\"phase\":\"{}\"", t.layer, t.micro_batch, to_string(t.phase));
  if (t.kind == TaskKind::Compute)
    return a + fmt::format(",\"flops\":{:.0f},\"bytes\":{},\"tokens\":{}", t.work.flops, t.work.bytes, t.work.tokens);
  const CollectiveTraffic& tr = g.info(t.collective).traffic;
  const auto at = [&](const std::shared_ptr<const std::vector<Bytes>>& v) {
    return v && static_cast<std::size_t>(t.gpu) < v->size() ? (*v)[static_cast<std::size_t>(t.gpu)].count() : 0;
  };
  a += fmt::format(",\"bytes_sent\":{},\"bytes_received\":{}", at(tr.sent), at(tr.received));
  if (t.phase == Phase::Dispatch || t.phase == Phase::Combine) a += fmt::format(",\"tokens\":{}", t.work.tokens);
  return a;
}

void gpu_slices(TraceWriter& w, const Simulation& sim, int gpu, const std::vector<TaskId>& tasks, const TraceOptions& o) {
  const TaskGraph& g = sim.graph();
  std::vector<Slice> compute, comm;
  for (TaskId id : tasks) {
    const Task& t = g.task(id);
    if (!shown(o.layers, t.layer)) continue;
    const Slice s{id, to_ns(t.start), to_ns(t.end)};
    if (s.end <= s.start) continue;  // shorter than half a nanosecond
    (t.kind == TaskKind::Compute ? compute : comm).push_back(s);
  }
  const auto by_time = [](const Slice& a, const Slice& b) { return std::tie(a.start, a.end, a.task) < std::tie(b.start, b.end, b.task); };
  std::sort(comm.begin(), comm.end(), by_time);
  const std::vector<int> lane = lanes(comm);
  const int comm_lanes = lane.empty() ? 1 : *std::max_element(lane.begin(), lane.end()) + 1;
  w.event(fmt::format(R"({{"ph":"M","pid":{},"name":"process_name","args":{{"name":"GPU {}"}}}})", gpu, gpu));
  w.event(fmt::format(R"({{"ph":"M","pid":{},"name":"process_sort_index","args":{{"sort_index":{}}}}})", gpu, gpu));
  w.event(fmt::format(R"({{"ph":"M","pid":{},"tid":0,"name":"thread_name","args":{{"name":"compute"}}}})", gpu));
  for (int l = 0; l < comm_lanes; ++l)
    w.event(fmt::format(R"({{"ph":"M","pid":{},"tid":{},"name":"thread_name","args":{{"name":"comm{}"}}}})", gpu, 1 + l,
                        l == 0 ? "" : fmt::format(" {}", l + 1)));
  auto slice = [&](const Slice& s, int tid) {
    const Task& t = g.task(s.task);
    // A compute slice is named by its op ("q_proj L3 mb0", "expert_up.wgrad L3 mb1"), with its phase in args.
    const std::string name = t.kind == TaskKind::Compute ? t.op.str() : to_string(t.phase);
    w.event(fmt::format(R"({{"ph":"X","pid":{},"tid":{},"ts":{},"dur":{},"name":"{} L{} mb{}","cat":"mb{}","cname":"{}","args":{{{}}}}})",
                        gpu, tid, us(s.start), us(s.end - s.start), name, t.layer, t.micro_batch, t.micro_batch,
                        kColour[t.micro_batch % 4], args(t, g)));
  };
  for (const Slice& s : compute) slice(s, 0);
  for (std::size_t i = 0; i < comm.size(); ++i) slice(comm[i], 1 + lane[i]);
}

// The utilisation of each collective's busiest link over the collective's lifetime
// (its bytes / (bandwidth x duration)).
void busiest_link_counters(TraceWriter& w, const Simulation& sim, int pid) {
  const TaskGraph& g = sim.graph();
  w.event(fmt::format(R"({{"ph":"M","pid":{},"name":"process_name","args":{{"name":"network: busiest link of each all-to-all"}}}})", pid));
  for (int c = 0; c < g.collective_count(); ++c) {
    const CollectiveInfo& info = g.info(c);
    const Task& t = g.task(g.collective_task(c));
    if (info.traffic.busiest_link < 0 || t.end <= t.start) continue;
    const Link& link = sim.cluster().link(info.traffic.busiest_link);
    const double util = static_cast<double>(info.traffic.busiest_bytes.count()) /
                        (link.bandwidth.bytes_per_second() * (t.end - t.start).to_seconds());
    const std::string kind = to_string(link.kind);
    w.event(fmt::format(R"({{"ph":"C","pid":{},"ts":{},"name":"{} utilisation","args":{{"{}":{:.4f}}}}})", pid, us(to_ns(t.start)),
                        kind, link.name, util));
    w.event(fmt::format(R"({{"ph":"C","pid":{},"ts":{},"name":"{} utilisation","args":{{"{}":0}}}})", pid, us(to_ns(t.end)), kind,
                        link.name));
  }
}

// A counter track per busy link: its utilisation in each bin of the step's link timeline.
void top_link_counters(TraceWriter& w, const Simulation& sim, int pid, int count) {
  const StepResult& r = sim.result();
  const LinkTimeline& tl = r.link_timeline;
  if (tl.empty() || count <= 0) return;
  w.event(fmt::format(R"j({{"ph":"M","pid":{},"name":"process_name","args":{{"name":"network: the {} busiest links (utilisation)"}}}})j",
                      pid, count));
  for (LinkId l : busiest_links(r, sim.cluster(), static_cast<std::size_t>(count))) {
    if (r.links[static_cast<std::size_t>(l)].bytes.count() == 0) continue;
    const Link& link = sim.cluster().link(l);
    const std::int64_t width = to_ns(tl.width());
    for (int b = 0; b < tl.bins_used(); ++b)
      w.event(fmt::format(R"({{"ph":"C","pid":{},"ts":{},"name":"{}","args":{{"utilisation":{:.4f}}}}})", pid, us(b * width), link.name,
                          tl.utilisation(l, b, link.bandwidth)));
    w.event(fmt::format(R"({{"ph":"C","pid":{},"ts":{},"name":"{}","args":{{"utilisation":0}}}})", pid, us(tl.bins_used() * width),
                        link.name));
  }
}

}  // namespace

std::vector<LinkId> busiest_links(const StepResult& r, const Cluster& cluster, std::size_t count) {
  std::vector<LinkId> order;
  for (std::size_t i = 0; i < r.links.size(); ++i)
    if (cluster.link(static_cast<LinkId>(i)).kind != LinkKind::Kernel) order.push_back(static_cast<LinkId>(i));
  std::stable_sort(order.begin(), order.end(), [&](LinkId a, LinkId b) {
    return r.links[static_cast<std::size_t>(a)].bytes > r.links[static_cast<std::size_t>(b)].bytes;
  });
  order.resize(std::min(count, order.size()));
  return order;
}

std::string chrome_trace(const Simulation& sim, const TraceOptions& o) {
  const TaskGraph& g = sim.graph();
  const int G = sim.cluster().gpu_count();
  std::vector<std::vector<TaskId>> by_gpu(static_cast<std::size_t>(G));
  for (std::size_t i = 0; i < g.tasks().size(); ++i) {
    const Task& t = g.tasks()[i];
    if (t.kind != TaskKind::Collective && t.gpu >= 0 && t.gpu < G) by_gpu[static_cast<std::size_t>(t.gpu)].push_back(static_cast<TaskId>(i));
  }
  TraceWriter w;
  for (int gpu = 0; gpu < G; ++gpu)
    if (shown(o.gpus, gpu)) gpu_slices(w, sim, gpu, by_gpu[static_cast<std::size_t>(gpu)], o);
  busiest_link_counters(w, sim, G);
  top_link_counters(w, sim, G + 1, o.top_links);
  return w.finish();
}

}  // namespace epsim
