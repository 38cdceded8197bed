#include "topology/cluster.h"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/filtered_graph.hpp>

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
using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, boost::no_property,
                                    boost::property<boost::edge_index_t, LinkId>>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;
using Edge = boost::graph_traits<Graph>::edge_descriptor;

struct Layout {
  int gpus, domains, gpn, leaves_per_rail;
  Vertex nvswitch(int domain) const { return static_cast<Vertex>(gpus + domain); }
  Vertex leaf(int index) const { return static_cast<Vertex>(gpus + domains + index); }
  Vertex spine() const { return static_cast<Vertex>(gpus + domains + gpn * leaves_per_rail); }
  int vertex_count() const { return gpus + domains + gpn * leaves_per_rail + 1; }
  int leaf_index(int gpu) const { return (gpu % gpn) * leaves_per_rail + (gpu / gpn) / nodes_per_leaf_; }
  int nodes_per_leaf_;
};

// Edges a route may take: live links only; out of a GPU only when it is the source, or (detours)
// when it is a live GPU that forwards.
struct RouteEdges {
  const Graph* g = nullptr;
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


// One breadth-first search from `src` over the edges `keep` allows; the BFS tree gives the
// fewest-hop route to every GPU it reaches. Fills routes[dst] and found[dst] for the GPUs reached
// whose found[dst] is still 0.
template <class Keep>
void search_routes(const Graph& g, Keep keep, GpuId src, int gpus, const std::vector<Link>& links, Route* routes,
                   char* found) {
  boost::filtered_graph<Graph, Keep> fg(g, keep);
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

}  // namespace

int Cluster::leaf_of(GpuId g) const {
  return rail_of(g) * spec_.leaves_per_rail() + node_of(g) / spec_.nodes_per_leaf;
}

Cluster::Cluster(const ClusterSpec& spec) : spec_(spec) {
  const int leaves_per_rail = spec.leaves_per_rail();
  const Layout lay{spec.gpu_count(), spec.gpu_count() / spec.domain_size(), spec.gpus_per_node, leaves_per_rail, spec.nodes_per_leaf};
  Graph g(static_cast<std::size_t>(lay.vertex_count()));
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
    }
  }
  apply_link_factors();
  failed_.assign(static_cast<std::size_t>(lay.gpus), 0);
  for (GpuId f : spec.failed_gpus) failed_[static_cast<std::size_t>(f)] = 1;

  // The route rule. Inside an NVLink domain: NVLink (the GPU's up link to the NVSwitch, the
  // destination's down link), also where a NIC route would be as short (same rail, same leaf, other
  // node of the domain). Elsewhere one BFS per source over live links without GPU transit (the
  // fewest-hop route is unique there), then rail_pxn's composition. Last, detours (transit through
  // live GPUs) for the pairs a failed link left without a route; pairs with a failed end need none.
  const auto G = static_cast<std::size_t>(lay.gpus);
  routes_.assign(G * G, Route{});
  std::vector<char> found(G * G, 0);
  auto row = [&](GpuId src) { return static_cast<std::size_t>(src) * G; };
  for (GpuId src = 0; src < lay.gpus; ++src) {
    search_routes(g, RouteEdges{&g, &links_, &failed_, static_cast<Vertex>(src), lay.gpus, false}, src, lay.gpus, links_,
                  &routes_[row(src)], &found[row(src)]);
    for (GpuId dst = domain_of(src) * domain_size(); dst < (domain_of(src) + 1) * domain_size(); ++dst) {
      if (dst == src) continue;
      Route& r = routes_[row(src) + static_cast<std::size_t>(dst)];
      const LinkId up = nvlink_up[static_cast<std::size_t>(src)], down = nvlink_down[static_cast<std::size_t>(dst)];
      r = Route{};
      found[row(src) + static_cast<std::size_t>(dst)] = !link(up).failed && !link(down).failed;
      if (!found[row(src) + static_cast<std::size_t>(dst)]) continue;
      for (const LinkId id : {up, down}) r.append(id, link(id).latency);
    }
  }
  if (spec.topology == "rail_pxn") pxn_routes(found);
  for (GpuId f : spec.failed_gpus)
    for (GpuId other = 0; other < lay.gpus; ++other) routes_[row(f) + static_cast<std::size_t>(other)] = routes_[row(other) + static_cast<std::size_t>(f)] = Route{};
  for (GpuId src = 0; src < lay.gpus; ++src) {
    if (failed(src)) continue;
    auto missing = [&](GpuId dst) { return dst != src && !failed(dst) && !found[row(src) + static_cast<std::size_t>(dst)]; };
    GpuId first = 0;
    while (first < lay.gpus && !missing(first)) ++first;
    if (first == lay.gpus) continue;
    search_routes(g, RouteEdges{&g, &links_, &failed_, static_cast<Vertex>(src), lay.gpus, true}, src, lay.gpus, links_,
                  &routes_[row(src)], &found[row(src)]);
    for (GpuId dst = first; dst < lay.gpus; ++dst)
      if (missing(dst))
        throw ConfigError("faults.link_bandwidth", "(the failed links)",
                          "GPU " + std::to_string(src) + " cannot reach GPU " + std::to_string(dst) +
                              " over the live links, even through other GPUs");
  }
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

// Between different rails of different NVLink domains: NVLink to the source node's GPU on the
// destination's rail, then that GPU's (same-rail) route. A pair whose relay is down or whose parts
// a failed link broke keeps found = 0 and gets a detour.
void Cluster::pxn_routes(std::vector<char>& found) {
  const auto G = static_cast<std::size_t>(gpu_count());
  auto at = [G](GpuId a, GpuId b) { return static_cast<std::size_t>(a) * G + static_cast<std::size_t>(b); };
  for (GpuId src = 0; src < gpu_count(); ++src)
    for (GpuId dst = 0; dst < gpu_count(); ++dst) {
      if (same_domain(src, dst) || rail_of(src) == rail_of(dst)) continue;
      const GpuId relay = gpu(node_of(src), rail_of(dst));
      Route r;
      found[at(src, dst)] = !failed(relay) && found[at(src, relay)] && found[at(relay, dst)];
      if (!found[at(src, dst)]) {
        routes_[at(src, dst)] = Route{};
        continue;
      }
      for (const Route* part : {&route(src, relay), &route(relay, dst)})
        for (LinkId id : *part) r.append(id, link(id).latency);
      routes_[at(src, dst)] = r;
    }
}

Cluster::~Cluster() = default;
Cluster::Cluster(Cluster&&) noexcept = default;
Cluster& Cluster::operator=(Cluster&&) noexcept = default;

const Route& Cluster::route(GpuId src, GpuId dst) const {
  const auto G = static_cast<std::size_t>(gpu_count());
  return routes_[static_cast<std::size_t>(src) * G + static_cast<std::size_t>(dst)];
}

}  // namespace epsim
