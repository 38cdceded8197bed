#include "topology/cluster.h"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/filtered_graph.hpp>
#include <boost/range/iterator_range.hpp>

#include <algorithm>
#include <array>
#include <unordered_map>

#include "models/errors.h"

namespace epsim {

const char* to_string(LinkKind kind) {
  switch (kind) {
    case LinkKind::NvlinkUp: return "nvlink-up";
    case LinkKind::NvlinkDown: return "nvlink-down";
    case LinkKind::NicUp: return "nic-up";
    case LinkKind::NicDown: return "nic-down";
    case LinkKind::LeafUp: return "leaf-up";
    case LinkKind::SpineDown: return "spine-down";
    case LinkKind::Kernel: return "kernel";
  }
  return "?";
}

bool is_nvlink(LinkKind kind) { return kind == LinkKind::NvlinkUp || kind == LinkKind::NvlinkDown; }

namespace {

// Vertices: GPUs [0, G), NVSwitches (one per NVLink domain), leaves, one spine vertex (the spine
// layer, ideal ECMP).
// Edge property: the LinkId of the directed link the edge stands for.
using BoostGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, boost::no_property,
                                         boost::property<boost::edge_index_t, LinkId>>;
using Vertex = boost::graph_traits<BoostGraph>::vertex_descriptor;
using Edge = boost::graph_traits<BoostGraph>::edge_descriptor;

struct Layout {
  int gpus, domains, gpn, leaves_per_rail;
  Vertex nvswitch(int domain) const { return static_cast<Vertex>(gpus + domain); }
  Vertex leaf(int index) const { return static_cast<Vertex>(gpus + domains + index); }
  Vertex spine() const { return static_cast<Vertex>(gpus + domains + gpn * leaves_per_rail); }
  int vertex_count() const { return gpus + domains + gpn * leaves_per_rail + 1; }
  int leaf_index(int gpu) const { return (gpu % gpn) * leaves_per_rail + (gpu / gpn) / nodes_per_leaf_; }
  int nodes_per_leaf_;
};

// Only the source GPU may send onward: every edge leaving another GPU is filtered out.
struct NoTransitGpu {
  const BoostGraph* g = nullptr;
  Vertex source = 0;
  int gpus = 0;
  bool operator()(const Edge& e) const {
    const Vertex u = boost::source(e, *g);
    return static_cast<int>(u) >= gpus || u == source;
  }
};

// Edges a route may take: live links only; out of a GPU only when it is the source, or (detours)
// when it is a live GPU that forwards.
struct RouteEdges {
  const BoostGraph* g = nullptr;
  const std::vector<Link>* links = nullptr;
  const std::vector<char>* failed_gpu = nullptr;
  Vertex source = 0;
  int gpus = 0;
  bool transit = false;
  bool operator()(const Edge& e) const {
    if ((*links)[static_cast<std::size_t>(boost::get(boost::edge_index, *g, e))].failed) return false;
    const Vertex u = boost::source(e, *g);
    if (static_cast<int>(u) >= gpus || u == source) return true;
    return transit && !(*failed_gpu)[u];
  }
};

// Records, for every vertex the search reaches, the tree edge that reached it.
struct TreeRecorder : boost::default_bfs_visitor {
  std::vector<Edge>* pred;
  std::vector<char>* reached;
  TreeRecorder(std::vector<Edge>* p, std::vector<char>* r) : pred(p), reached(r) {}
  template <class E, class FG>
  void tree_edge(E e, const FG& fg) const {
    const auto t = boost::target(e, fg);
    (*pred)[t] = e;
    (*reached)[t] = 1;
  }
};

// The builder's link numbering: GPU g owns links 4g .. 4g+3 (NVLink up, down, NIC up, down), then
// leaf i owns 4G + 2i (to the spine) and 4G + 2i + 1 (from it). The fewest-hop route, which is
// unique: NVLink inside an NVLink domain (also where a NIC route would be as short: same rail, same
// leaf, other node of the domain); else the NICs, through the spine when the leaves differ. With
// `pxn` (topology rail_pxn), between different rails of different domains: NVLink to the source
// node's GPU on the destination's rail, then that GPU's (same-rail) route.
class FatTreeRoutes final : public RouteRule {
 public:
  FatTreeRoutes(const ClusterSpec& spec, int leaves_per_rail, bool pxn)
      : gpus_(spec.gpu_count()), gpn_(spec.gpus_per_node), domain_(spec.domain_size()), nodes_per_leaf_(spec.nodes_per_leaf),
        leaves_per_rail_(leaves_per_rail), pxn_(pxn), nvlink_(spec.nvlink_latency), nic_(spec.nic_latency),
        spine_(spec.spine_latency) {
    // Per GPU, its NVLink domain and leaf (a route asks for both ends' on every call).
    domain_of_.resize(static_cast<std::size_t>(gpus_));
    leaf_of_.resize(static_cast<std::size_t>(gpus_));
    for (GpuId g = 0; g < gpus_; ++g) {
      domain_of_[static_cast<std::size_t>(g)] = g / domain_;
      leaf_of_[static_cast<std::size_t>(g)] = leaf(g);
    }
  }
  // rail_pxn's relay for the pair (the source node's GPU on the destination's rail), or -1.
  GpuId relay(GpuId src, GpuId dst) const {
    if (!pxn_ || src / domain_ == dst / domain_ || src % gpn_ == dst % gpn_) return -1;
    return (src / gpn_) * gpn_ + dst % gpn_;
  }
  Route route(GpuId src, GpuId dst) const override {
    Route r;
    route_into(src, dst, r);
    return r;
  }
  void route_into(GpuId src, GpuId dst, Route& r) const override {
    r = Route{};
    if (src == dst) return;
    if (domain_of_[static_cast<std::size_t>(src)] == domain_of_[static_cast<std::size_t>(dst)]) {
      r.append(4 * src, nvlink_);
      r.append(4 * dst + 1, nvlink_);
      return;
    }
    if (const GpuId via = relay(src, dst); via >= 0) {
      r = route(src, via);
      for (LinkId id : route(via, dst)) r.append(id, latency_of(id));
      return;
    }
    r.append(4 * src + 2, nic_);
    const int from = leaf_of_[static_cast<std::size_t>(src)], to = leaf_of_[static_cast<std::size_t>(dst)];
    if (from != to) {
      r.append(4 * gpus_ + 2 * from, spine_);
      r.append(4 * gpus_ + 2 * to + 1, spine_);
    }
    r.append(4 * dst + 3, nic_);
  }

 private:
  int leaf(GpuId g) const { return (g % gpn_) * leaves_per_rail_ + (g / gpn_) / nodes_per_leaf_; }
  Time latency_of(LinkId id) const {
    if (id >= 4 * gpus_) return spine_;
    return id % 4 < 2 ? nvlink_ : nic_;
  }
  int gpus_, gpn_, domain_, nodes_per_leaf_, leaves_per_rail_;
  bool pxn_;
  Time nvlink_, nic_, spine_;
  std::vector<int> domain_of_, leaf_of_;  // per GPU
};

// One breadth-first search from `src` over the edges `keep` allows; the BFS tree gives the
// fewest-hop route to every GPU it reaches. Fills routes[dst] and found[dst] for the GPUs reached
// whose found[dst] is still 0.
template <class Keep>
void search_routes(const BoostGraph& g, Keep keep, GpuId src, int gpus, const std::vector<Link>& links, Route* routes,
                   char* found) {
  boost::filtered_graph<BoostGraph, Keep> fg(g, keep);
  std::vector<Edge> pred(boost::num_vertices(g));
  std::vector<char> reached(pred.size(), 0);
  reached[static_cast<std::size_t>(src)] = 1;
  TreeRecorder vis{&pred, &reached};
  boost::breadth_first_search(fg, static_cast<Vertex>(src), boost::visitor(vis));
  auto edge_id = boost::get(boost::edge_index, g);
  for (GpuId dst = 0; dst < gpus; ++dst) {
    if (dst == src || found[dst] || !reached[static_cast<std::size_t>(dst)]) continue;
    std::array<LinkId, Route::kMaxHops> rev{};
    int n = 0;
    for (Vertex v = static_cast<Vertex>(dst); v != static_cast<Vertex>(src); v = boost::source(pred[v], g)) {
      if (n == Route::kMaxHops) throw SimulationError("cluster graph: route too long");
      rev[static_cast<std::size_t>(n++)] = edge_id[pred[v]];
    }
    Route& r = routes[dst];
    for (int i = n - 1; i >= 0; --i) {
      const LinkId id = rev[static_cast<std::size_t>(i)];
      r.append(id, links[static_cast<std::size_t>(id)].latency);
    }
    found[dst] = 1;
  }
}

// With failed links or GPUs: the fault-free rule's route where it is whole (every link live, a
// rail_pxn relay alive); nothing from or to a failed GPU; else a detour, the fewest-hop path over
// live links on which live GPUs may forward (one search per source that needs one). Only the
// detours are stored.
class DetourRoutes final : public RouteRule {
 public:
  DetourRoutes(std::unique_ptr<const FatTreeRoutes> base, const BoostGraph& g, const std::vector<Link>& links,
               const std::vector<char>& failed_gpu)
      : base_(std::move(base)), failed_(failed_gpu), gpus_(static_cast<GpuId>(failed_gpu.size())) {
    const auto G = static_cast<std::size_t>(gpus_);
    std::vector<Route> routes(G);
    std::vector<char> found(G);
    for (GpuId src = 0; src < gpus_; ++src) {
      if (failed_[static_cast<std::size_t>(src)]) continue;
      std::fill(found.begin(), found.end(), 1);
      bool any = false;
      for (GpuId dst = 0; dst < gpus_; ++dst) {
        if (dst == src || failed_[static_cast<std::size_t>(dst)]) continue;
        const GpuId via = base_->relay(src, dst);
        bool whole = via < 0 || !failed_[static_cast<std::size_t>(via)];
        for (LinkId l : base_->route(src, dst)) whole = whole && !links[static_cast<std::size_t>(l)].failed;
        found[static_cast<std::size_t>(dst)] = whole;
        any = any || !whole;
      }
      if (!any) continue;
      std::fill(routes.begin(), routes.end(), Route{});
      std::vector<char> searched = found;
      search_routes(g, RouteEdges{&g, &links, &failed_, static_cast<Vertex>(src), gpus_, true}, src, gpus_, links,
                    routes.data(), searched.data());
      for (GpuId dst = 0; dst < gpus_; ++dst) {
        if (found[static_cast<std::size_t>(dst)]) continue;
        if (!searched[static_cast<std::size_t>(dst)])
          throw ConfigError("faults.link_bandwidth", "(the failed links)",
                            "GPU " + std::to_string(src) + " cannot reach GPU " + std::to_string(dst) +
                                " over the live links, even through other GPUs");
        detours_.emplace(key(src, dst), routes[static_cast<std::size_t>(dst)]);
      }
    }
  }
  Route route(GpuId src, GpuId dst) const override {
    if (failed_[static_cast<std::size_t>(src)] || failed_[static_cast<std::size_t>(dst)]) return Route{};
    if (const auto it = detours_.find(key(src, dst)); it != detours_.end()) return it->second;
    return base_->route(src, dst);
  }

 private:
  std::int64_t key(GpuId src, GpuId dst) const { return static_cast<std::int64_t>(src) * gpus_ + dst; }
  std::unique_ptr<const FatTreeRoutes> base_;
  std::vector<char> failed_;
  GpuId gpus_;
  std::unordered_map<std::int64_t, Route> detours_;
};

}  // namespace

struct Cluster::Graph {
  explicit Graph(std::size_t vertices) : g(vertices) {}
  BoostGraph g;
};

int Cluster::leaf_of(GpuId g) const {
  return rail_of(g) * spec_.leaves_per_rail() + node_of(g) / spec_.nodes_per_leaf;
}

Cluster::Cluster(const ClusterSpec& spec) : spec_(spec) {
  const int leaves_per_rail = spec.leaves_per_rail();
  const Layout lay{spec.gpu_count(), spec.gpu_count() / spec.domain_size(), spec.gpus_per_node, leaves_per_rail, spec.nodes_per_leaf};
  graph_ = std::make_unique<Graph>(static_cast<std::size_t>(lay.vertex_count()));
  BoostGraph& g = graph_->g;
  auto add = [&](Vertex u, Vertex v, LinkKind kind, Bandwidth bw, Time lat, int owner, std::string name) {
    const auto id = static_cast<LinkId>(links_.size());
    links_.push_back(Link{kind, bw, lat, owner, std::move(name)});
    boost::add_edge(u, v, id, g);
  };
  std::vector<LinkId> nvlink_up, nvlink_down;  // per GPU
  for (GpuId gpu = 0; gpu < lay.gpus; ++gpu) {
    const auto v = static_cast<Vertex>(gpu);
    const std::string n = "gpu" + std::to_string(gpu);
    nvlink_up.push_back(static_cast<LinkId>(links_.size()));
    nvlink_down.push_back(static_cast<LinkId>(links_.size() + 1));
    add(v, lay.nvswitch(domain_of(gpu)), LinkKind::NvlinkUp, spec.nvlink, spec.nvlink_latency, gpu, n + ".nvlink.up");
    add(lay.nvswitch(domain_of(gpu)), v, LinkKind::NvlinkDown, spec.nvlink, spec.nvlink_latency, gpu, n + ".nvlink.down");
    add(v, lay.leaf(leaf_of(gpu)), LinkKind::NicUp, spec.nic, spec.nic_latency, gpu, n + ".nic.up");
    add(lay.leaf(leaf_of(gpu)), v, LinkKind::NicDown, spec.nic, spec.nic_latency, gpu, n + ".nic.down");
  }
  if (leaves_per_rail * spec.gpus_per_node > 1) {
    for (int leaf = 0; leaf < spec.gpus_per_node * leaves_per_rail; ++leaf) {
      const int nodes_here = std::min(spec.nodes_per_leaf, spec.nodes - (leaf % leaves_per_rail) * spec.nodes_per_leaf);
      const Bandwidth up = spec.nic * (nodes_here / spec.oversubscription);
      const std::string n = "leaf" + std::to_string(leaf);
      add(lay.leaf(leaf), lay.spine(), LinkKind::LeafUp, up, spec.spine_latency, leaf, n + ".up");
      add(lay.spine(), lay.leaf(leaf), LinkKind::SpineDown, up, spec.spine_latency, leaf, n + ".down");
      // Fed by (draining into) the NICs of its nodes_here GPUs: dominated unless oversubscribed.
      const bool dominated = spec.oversubscription <= 1.0;
      links_[links_.size() - 2].dominated = links_[links_.size() - 1].dominated = dominated;
    }
  }
  apply_link_factors();
  if (!spec.link_factors.empty() && leaves_per_rail * spec.gpus_per_node > 1) {
    // A leaf's spine links stay dominated only while the NICs under it (at their factors) cannot
    // fill them.
    const auto leaves = static_cast<std::size_t>(spec.gpus_per_node * leaves_per_rail);
    std::vector<double> up(leaves, 0.0), down(leaves, 0.0);
    for (GpuId gpu = 0; gpu < lay.gpus; ++gpu) {
      up[static_cast<std::size_t>(leaf_of(gpu))] += link(4 * gpu + 2).bandwidth.bytes_per_second();
      down[static_cast<std::size_t>(leaf_of(gpu))] += link(4 * gpu + 3).bandwidth.bytes_per_second();
    }
    for (std::size_t leaf = 0; leaf < leaves; ++leaf) {
      Link& to_spine = links_[4 * static_cast<std::size_t>(lay.gpus) + 2 * leaf];
      Link& from_spine = links_[4 * static_cast<std::size_t>(lay.gpus) + 2 * leaf + 1];
      to_spine.dominated = to_spine.bandwidth.bytes_per_second() >= up[leaf];
      from_spine.dominated = from_spine.bandwidth.bytes_per_second() >= down[leaf];
    }
  }
  failed_.assign(static_cast<std::size_t>(lay.gpus), 0);
  for (GpuId f : spec.failed_gpus) failed_[static_cast<std::size_t>(f)] = 1;
  auto rule = std::make_unique<FatTreeRoutes>(spec, leaves_per_rail, spec.topology == "rail_pxn");
  const bool faulty = !spec.failed_gpus.empty() || std::any_of(links_.begin(), links_.end(), [](const Link& l) { return l.failed; });
  if (faulty) rule_ = std::make_unique<DetourRoutes>(std::move(rule), g, links_, failed_);
  else rule_ = std::move(rule);
  if (spec.kernel_rate.bytes_per_second() > 0)
    for (GpuId gpu = 0; gpu < lay.gpus; ++gpu) {
      kernel_links_.push_back(static_cast<LinkId>(links_.size()));
      links_.push_back(Link{LinkKind::Kernel, spec.kernel_rate, Time::zero(), gpu, "gpu" + std::to_string(gpu) + ".kernel"});
    }
}

// Each factor scales its link's bandwidth; 0 marks it failed (its bandwidth stays nominal, unused).
void Cluster::apply_link_factors() {
  if (spec_.link_factors.empty()) return;
  for (Link& l : links_) {
    const auto it = spec_.link_factors.find(l.name);
    if (it == spec_.link_factors.end()) continue;
    if (it->second <= 0) l.failed = true;
    else l.bandwidth = l.bandwidth * it->second;
  }
}

Cluster::~Cluster() = default;
Cluster::Cluster(Cluster&&) noexcept = default;
Cluster& Cluster::operator=(Cluster&&) noexcept = default;

// Inside an NVLink domain: the NVLink path through the domain's NVSwitch (also where a NIC route
// would be as short). Elsewhere one breadth-first search from src over the graph without GPU
// transit; the BFS tree gives the fewest-hop route.
Route Cluster::searched_route(GpuId src, GpuId dst) const {
  Route r;
  if (src == dst) return r;
  const BoostGraph& g = graph_->g;
  auto edge_id = boost::get(boost::edge_index, g);
  if (same_domain(src, dst)) {
    for (const Edge up : boost::make_iterator_range(boost::out_edges(static_cast<Vertex>(src), g))) {
      if (link(edge_id[up]).kind != LinkKind::NvlinkUp) continue;
      for (const Edge down : boost::make_iterator_range(boost::out_edges(boost::target(up, g), g)))
        if (boost::target(down, g) == static_cast<Vertex>(dst)) {
          r.append(edge_id[up], link(edge_id[up]).latency);
          r.append(edge_id[down], link(edge_id[down]).latency);
          return r;
        }
    }
    throw SimulationError("cluster graph: no NVLink path inside a domain");
  }
  std::vector<Edge> pred(boost::num_vertices(g));
  std::vector<char> reached(pred.size(), 0);
  NoTransitGpu keep{&g, static_cast<Vertex>(src), gpu_count()};
  boost::filtered_graph<BoostGraph, NoTransitGpu> fg(g, keep);
  reached[static_cast<std::size_t>(src)] = 1;
  TreeRecorder vis{&pred, &reached};
  boost::breadth_first_search(fg, static_cast<Vertex>(src), boost::visitor(vis));
  if (!reached[static_cast<std::size_t>(dst)]) throw SimulationError("cluster graph: GPU unreachable");
  std::array<LinkId, Route::kMaxHops> rev{};
  int n = 0;
  for (Vertex v = static_cast<Vertex>(dst); v != static_cast<Vertex>(src); v = boost::source(pred[v], g)) {
    if (n == Route::kMaxHops) throw SimulationError("cluster graph: route too long");
    rev[static_cast<std::size_t>(n++)] = edge_id[pred[v]];
  }
  for (int i = n - 1; i >= 0; --i) {
    const LinkId id = rev[static_cast<std::size_t>(i)];
    r.append(id, link(id).latency);
  }
  return r;
}

}  // namespace epsim
