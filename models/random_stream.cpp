#include "models/random_stream.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/units.h"

namespace epsim {

static std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t derive_seed(std::uint64_t seed, std::initializer_list<std::int64_t> keys) {
  std::uint64_t h = splitmix64(seed);
  for (const std::int64_t k : keys) h = splitmix64(h ^ static_cast<std::uint64_t>(k));
  return h;
}

double RandomStream::uniform() {
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

std::int64_t RandomStream::index(std::int64_t n) {
  // Rejection keeps every index equally likely.
  const std::uint64_t un = static_cast<std::uint64_t>(n);
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % un;
  std::uint64_t x = engine_();
  while (x >= limit) x = engine_();
  return static_cast<std::int64_t>(x % un);
}

double RandomStream::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_normal_;
  }
  // Marsaglia's polar method: two normals per accepted point of the unit disc (no trigonometry).
  double x = 0.0, y = 0.0, r2 = 0.0;
  do {
    x = 2.0 * uniform() - 1.0;
    y = 2.0 * uniform() - 1.0;
    r2 = x * x + y * y;
  } while (r2 >= 1.0 || r2 == 0.0);
  const double f = std::sqrt(-2.0 * std::log(r2) / r2);
  spare_normal_ = y * f;
  has_spare_ = true;
  return x * f;
}

Binomial::Binomial(std::int64_t n, double p) : n_(n) {
  if (n <= 0 || p <= 0.0) return;  // Zero
  if (p >= 1.0) {
    kind_ = Kind::All;
    return;
  }
  if (p > 0.5) {
    flip_ = true;
    p = 1.0 - p;
  }
  mean_ = static_cast<double>(n) * p;
  const double variance = mean_ * (1.0 - p);
  if (variance < 16.0) {
    kind_ = Kind::Inversion;
    pmf0_ = std::exp(static_cast<double>(n) * std::log1p(-p));
    ratio_ = p / (1.0 - p);
  } else {
    kind_ = Kind::Normal;
    sd_ = std::sqrt(variance);
  }
}

std::int64_t Binomial::operator()(RandomStream& rng) const {
  std::int64_t k = 0;
  switch (kind_) {
    case Kind::Zero: return 0;
    case Kind::All: return n_;
    case Kind::Inversion: {
      // Sequential search of the CDF from 0; p <= 1/2 and n p < 32, so a few dozen steps at most.
      double pmf = pmf0_;
      double u = rng.uniform();
      while (u >= pmf && k < n_) {
        u -= pmf;
        pmf *= ratio_ * static_cast<double>(n_ - k) / static_cast<double>(k + 1);
        ++k;
      }
      break;
    }
    case Kind::Normal:
      k = std::clamp(checked_int64(std::floor(mean_ + sd_ * rng.normal() + 0.5), "normal draw -> count"), std::int64_t{0}, n_);
      break;
  }
  return flip_ ? n_ - k : k;
}

std::int64_t RandomStream::binomial(std::int64_t n, double p) { return Binomial(n, p)(*this); }

}  // namespace epsim
