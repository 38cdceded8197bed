#include "placement/link_load_model.h"

#include <algorithm>
#include <cmath>

#include "models/errors.h"

namespace epsim {

namespace {
std::size_t z(int i) { return static_cast<std::size_t>(i); }
}  // namespace

bool LoadObjective::better_than(const LoadObjective& o) const {
  const double eps = 1e-9 * std::max(max_load, o.max_load);
  if (max_load < o.max_load - eps) return true;
  if (max_load > o.max_load + eps) return false;
  return sum_sq < o.sum_sq * (1 - 1e-12);
}

LinkLoadModel::LinkLoadModel(const ExpectedRouting& routing, const Cluster& cluster, LayerPlacement placement, Bytes token_bytes,
                             Time compute_per_token, ReplicaChoice choice)
    : routing_(routing), cluster_(cluster), placement_(std::move(placement)), gpus_(cluster.gpu_count()), ep_(placement_.ep()),
      compute_per_token_(compute_per_token.to_seconds()), choice_(choice) {
  if (routing.sources != gpus_) throw SimulationError("LinkLoadModel: routing sources differ from the GPU count");
  if (routing.experts != placement_.experts()) throw SimulationError("LinkLoadModel: routing and placement disagree on experts");
  if (gpus_ % ep_ != 0) throw SimulationError("LinkLoadModel: ep does not divide the GPU count");
  const auto& links = cluster.links();
  seconds_per_token_.resize(links.size());
  for (std::size_t l = 0; l < links.size(); ++l)
    seconds_per_token_[l] = static_cast<double>(token_bytes.count()) / links[l].bandwidth.bytes_per_second();
  link_tokens_.assign(links.size(), 0.0);
  unique_.assign(z(gpus_) * z(ep_), 0.0);
  gpu_load_.assign(z(gpus_), 0.0);
  for (int d = 0; d < ep_; ++d) update_gpu(d);
}

double LinkLoadModel::distinct(int s, int d_rel, double& pairs) const {
  const double T = routing_.tokens[z(s)];
  if (!(T > 0)) return 0.0;  // no tokens: no pairs either
  const int spg = placement_.slots_per_gpu();
  double miss = 1.0;
  for (int p = d_rel * spg; p < (d_rel + 1) * spg; ++p) {
    const int e = placement_.expert_at(p);
    if (e < 0) continue;
    bool seen = false;  // several replicas of e on this GPU count once, with their joint share
    for (int q = d_rel * spg; q < p; ++q) seen = seen || placement_.expert_at(q) == e;
    if (seen) continue;
    const double taken = routing_.at(s, e) * share_on(s, e, d_rel);
    pairs += taken;
    miss *= 1.0 - std::min(1.0, taken / T);
  }
  return T * (1.0 - miss);
}

double LinkLoadModel::share_on(int s, int e, int d_rel) const {
  if (choice_ == ReplicaChoice::even) return static_cast<double>(placement_.replicas_on(e, d_rel)) / placement_.replica_count(e);
  const int base = (s / ep_) * ep_;
  replica_gpus(placement_, e, base, rep_gpu_);
  replica_fractions(choice_, rep_gpu_, s, cluster_.gpus_per_node(), rep_frac_);
  double f = 0.0;
  for (std::size_t i = 0; i < rep_gpu_.size(); ++i)
    if (rep_gpu_[i] == base + d_rel) f += rep_frac_[i];
  return f;
}

// Recomputes everything that depends on the contents of GPU d_rel (in every EP group).
void LinkLoadModel::update_gpu(int d_rel) {
  for (int base = 0; base < gpus_; base += ep_) {
    const int d = base + d_rel;
    double load = 0.0;
    for (int s = base; s < base + ep_; ++s) {
      double& u = unique_[z(s) * z(ep_) + z(d_rel)];
      const double fresh = distinct(s, d_rel, load);
      if (s != d) {
        const double delta = fresh - u;
        if (delta != 0.0)
          for (LinkId l : cluster_.route(s, d)) link_tokens_[z(l)] += delta;
      }
      u = fresh;
    }
    gpu_load_[z(d)] = load;
  }
}

double LinkLoadModel::unique(int src, int dst) const {
  if (src / ep_ != dst / ep_) return 0.0;
  return unique_[z(src) * z(ep_) + z(dst % ep_)];
}

void LinkLoadModel::swap_slots(int a, int b) {
  const int ga = placement_.gpu_of_slot(a), gb = placement_.gpu_of_slot(b);
  const int ea = placement_.expert_at(a), eb = placement_.expert_at(b);
  placement_.swap_slots(a, b);
  if (ga == gb || ea == eb) return;
  update_gpu(ga);
  update_gpu(gb);
  // Under `even` loads of other GPUs change only through replica counts, which a swap keeps; under
  // `nearest` the GPUs holding the two experts' other replicas may win or lose sources.
  if (choice_ == ReplicaChoice::even) return;
  std::vector<int> others;
  for (int e : {ea, eb})
    if (e >= 0)
      for (int slot : placement_.replicas(e)) {
        const int g = placement_.gpu_of_slot(slot);
        if (g != ga && g != gb && std::find(others.begin(), others.end(), g) == others.end()) others.push_back(g);
      }
  for (int g : others) update_gpu(g);
}

LinkId LinkLoadModel::busiest_link() const {
  LinkId best = 0;
  for (LinkId l = 1; l < static_cast<LinkId>(link_tokens_.size()); ++l)
    if (link_load(l) > link_load(best)) best = l;
  return best;
}

LinkId LinkLoadModel::most_tokens_link() const {
  LinkId best = 0;
  for (LinkId l = 1; l < static_cast<LinkId>(link_tokens_.size()); ++l)
    if (link_tokens_[z(l)] > link_tokens_[z(best)]) best = l;
  return best;
}

int LinkLoadModel::busiest_gpu() const {
  return static_cast<int>(std::max_element(gpu_load_.begin(), gpu_load_.end()) - gpu_load_.begin());
}

LoadObjective LinkLoadModel::objective() const {
  LoadObjective o;
  for (int g = 0; g < gpus_; ++g) {
    const double t = gpu_time(g);
    o.max_load = std::max(o.max_load, t);
    o.sum_sq += t * t;
  }
  for (std::size_t l = 0; l < link_tokens_.size(); ++l) {
    const double t = link_tokens_[l] * seconds_per_token_[l];
    o.max_load = std::max(o.max_load, t);
    o.sum_sq += t * t;
  }
  return o;
}

}  // namespace epsim
