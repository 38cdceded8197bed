// Physical quantities as types, so that unit slips do not compile.
//
// Time:      integer picoseconds (int64: +-106 days). Exact, totally ordered, deterministic.
// Bytes:     integer bytes (int64).
// Bandwidth: bytes per second (double); Bytes / Bandwidth -> Time, rounded to the nearest ps.
// Flops:     floating-point operations (double; counts reach 1e17 per step).
// FlopRate:  operations per second (double); Flops / FlopRate -> Time.
//
// Overflow: every operation that can leave a type's range is checked and throws UnitOverflow
// (models/errors.h) naming the operation: Time and Bytes addition, subtraction and multiplication
// (the compiler's overflow builtins: one flag test each) and every conversion of a double into
// Time or Bytes (NaN, infinities and magnitudes of 2^63 or more are refused, so no double is ever
// cast to an integer out of range). The double-valued quantities are checked where they become an
// integer quantity, not at each double operation: an infinite or NaN Flops or Bandwidth can only
// reach the simulation through such a conversion. Time::infinity() is a sentinel for comparisons
// (a task that has not ended); arithmetic on it overflows and throws like any other.
//
// Hot loops that keep raw integers (picoseconds, byte counts) convert through the same checked
// entry points: Time::from_ps / Time::ceil_ps for doubles, checked_int64 for anything else.
#pragma once

#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>

namespace epsim {

// Throws UnitOverflow("op", ...) naming the operands; out of line, so that the checked operations
// inline to a compare and a branch.
[[noreturn]] void throw_unit_overflow(const char* op, double value);
[[noreturn]] void throw_unit_overflow(const char* op, std::int64_t a, std::int64_t b);

namespace unit_detail {
// 2^63 as a double: the first magnitude an int64 cannot hold.
inline constexpr double kInt64Limit = 9223372036854775808.0;
// True when `v` is finite and |v| < 2^63 (false for NaN).
constexpr bool fits_int64(double v) { return v < kInt64Limit && v > -kInt64Limit; }
constexpr std::int64_t add(std::int64_t a, std::int64_t b, const char* op) {
  std::int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw_unit_overflow(op, a, b);
  return r;
}
constexpr std::int64_t sub(std::int64_t a, std::int64_t b, const char* op) {
  std::int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) throw_unit_overflow(op, a, b);
  return r;
}
constexpr std::int64_t mul(std::int64_t a, std::int64_t b, const char* op) {
  std::int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw_unit_overflow(op, a, b);
  return r;
}
// `v` rounded half away from zero, checked.
constexpr std::int64_t round_checked(double v, const char* op) {
  const double r = v < 0 ? v - 0.5 : v + 0.5;
  if (!fits_int64(r)) throw_unit_overflow(op, v);
  return static_cast<std::int64_t>(r);
}
}  // namespace unit_detail

// `v` truncated toward zero into an int64; throws UnitOverflow naming `op` when v is NaN,
// infinite or |v| >= 2^63. The one way to turn a double into an integer count.
constexpr std::int64_t checked_int64(double v, const char* op) {
  if (!unit_detail::fits_int64(v)) throw_unit_overflow(op, v);
  return static_cast<std::int64_t>(v);
}

class Time {
 public:
  constexpr Time() = default;
  static constexpr Time ps(std::int64_t v) { return Time(v); }
  static constexpr Time ns(double v) { return from_seconds(v * 1e-9); }
  static constexpr Time us(double v) { return from_seconds(v * 1e-6); }
  static constexpr Time ms(double v) { return from_seconds(v * 1e-3); }
  static constexpr Time seconds(double v) { return from_seconds(v); }
  // Picoseconds held as a double, rounded to the nearest / up to the next integer, checked.
  // `op` names the conversion in the UnitOverflow message.
  static constexpr Time from_ps(double v, const char* op = "picoseconds (double) -> Time") {
    return Time(unit_detail::round_checked(v, op));
  }
  static Time ceil_ps(double v) { return Time(checked_int64(std::ceil(v), "picoseconds (double) -> Time")); }
  static constexpr Time zero() { return Time(0); }
  static constexpr Time infinity() { return Time(std::numeric_limits<std::int64_t>::max()); }

  constexpr std::int64_t picoseconds() const { return ps_; }
  constexpr double to_seconds() const { return static_cast<double>(ps_) * 1e-12; }
  constexpr double to_us() const { return static_cast<double>(ps_) * 1e-6; }
  constexpr double to_ms() const { return static_cast<double>(ps_) * 1e-9; }

  constexpr Time operator+(Time o) const { return Time(unit_detail::add(ps_, o.ps_, "Time + Time (ps)")); }
  constexpr Time operator-(Time o) const { return Time(unit_detail::sub(ps_, o.ps_, "Time - Time (ps)")); }
  constexpr Time& operator+=(Time o) { return *this = *this + o; }
  constexpr Time& operator-=(Time o) { return *this = *this - o; }
  constexpr Time operator*(double f) const { return from_seconds(to_seconds() * f); }
  constexpr double operator/(Time o) const { return static_cast<double>(ps_) / static_cast<double>(o.ps_); }
  constexpr auto operator<=>(const Time&) const = default;

 private:
  constexpr explicit Time(std::int64_t v) : ps_(v) {}
  static constexpr Time from_seconds(double s) { return Time(unit_detail::round_checked(s * 1e12, "seconds -> Time")); }
  std::int64_t ps_ = 0;
};

constexpr Time max(Time a, Time b) { return a < b ? b : a; }
constexpr Time min(Time a, Time b) { return a < b ? a : b; }

class Bytes {
 public:
  constexpr Bytes() = default;
  constexpr explicit Bytes(std::int64_t v) : n_(v) {}
  static constexpr Bytes gib(double v) { return Bytes(checked_int64(v * 1073741824.0, "GiB -> Bytes")); }
  static constexpr Bytes gb(double v) { return Bytes(checked_int64(v * 1e9, "GB -> Bytes")); }
  constexpr std::int64_t count() const { return n_; }
  constexpr double to_gb() const { return static_cast<double>(n_) * 1e-9; }
  constexpr double to_mb() const { return static_cast<double>(n_) * 1e-6; }
  constexpr Bytes operator+(Bytes o) const { return Bytes(unit_detail::add(n_, o.n_, "Bytes + Bytes")); }
  constexpr Bytes operator-(Bytes o) const { return Bytes(unit_detail::sub(n_, o.n_, "Bytes - Bytes")); }
  constexpr Bytes& operator+=(Bytes o) { return *this = *this + o; }
  constexpr Bytes operator*(std::int64_t f) const { return Bytes(unit_detail::mul(n_, f, "Bytes x integer")); }
  constexpr auto operator<=>(const Bytes&) const = default;

 private:
  std::int64_t n_ = 0;
};

class Bandwidth {
 public:
  constexpr Bandwidth() = default;
  static constexpr Bandwidth bytes_per_s(double v) { return Bandwidth(v); }
  static constexpr Bandwidth gb_per_s(double v) { return Bandwidth(v * 1e9); }
  static constexpr Bandwidth gbit_per_s(double v) { return Bandwidth(v * 1e9 / 8.0); }
  constexpr double bytes_per_second() const { return bps_; }
  constexpr double to_gb_per_s() const { return bps_ * 1e-9; }
  constexpr Bandwidth operator*(double f) const { return Bandwidth(bps_ * f); }
  constexpr auto operator<=>(const Bandwidth&) const = default;

 private:
  constexpr explicit Bandwidth(double v) : bps_(v) {}
  double bps_ = 0.0;
};

class Flops {
 public:
  constexpr Flops() = default;
  constexpr explicit Flops(double v) : n_(v) {}
  constexpr double count() const { return n_; }
  constexpr Flops operator+(Flops o) const { return Flops(n_ + o.n_); }
  constexpr Flops& operator+=(Flops o) { n_ += o.n_; return *this; }
  constexpr Flops operator*(double f) const { return Flops(n_ * f); }
  constexpr auto operator<=>(const Flops&) const = default;

 private:
  double n_ = 0.0;
};

class FlopRate {
 public:
  constexpr FlopRate() = default;
  static constexpr FlopRate per_s(double v) { return FlopRate(v); }
  static constexpr FlopRate tflops(double v) { return FlopRate(v * 1e12); }
  constexpr double per_second() const { return r_; }
  constexpr double to_tflops() const { return r_ * 1e-12; }
  constexpr FlopRate operator*(double f) const { return FlopRate(r_ * f); }
  constexpr auto operator<=>(const FlopRate&) const = default;

 private:
  constexpr explicit FlopRate(double v) : r_(v) {}
  double r_ = 0.0;
};

// The conversions into Time: the quotient must be finite and fit (a zero or denormal rate throws).
constexpr Time operator/(Bytes b, Bandwidth bw) {
  return Time::from_ps(static_cast<double>(b.count()) / bw.bytes_per_second() * 1e12, "Bytes / Bandwidth -> Time");
}
constexpr Time operator/(Flops f, FlopRate r) {
  return Time::from_ps(f.count() / r.per_second() * 1e12, "Flops / FlopRate -> Time");
}
constexpr Bandwidth operator/(Bytes b, Time t) {
  return Bandwidth::bytes_per_s(static_cast<double>(b.count()) / t.to_seconds());
}

}  // namespace epsim
