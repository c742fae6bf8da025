// A minimal test harness for the engine's C++ tests (no framework to install or vendor).
//
//   TEST(layout_matches_deepspeed) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-5); }
//   int main() { return testing::run_all(); }
//
// A failed check prints file:line and the values, and the test goes on (so one run shows every
// mismatch). Each test prints one PASS/FAIL line; the last line is "N passed, N failed", and
// main returns non-zero when anything failed. An lcx::Error escaping a test fails it with its
// status and message.
//
// CHECK(cond) is also an expression (true when it held), and a main may make checks itself
// outside any TEST and end with `return testing::finish();` (alias lcxtest::finish): those
// checks then count as one more case, "checks in main".
#pragma once
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace testing {

struct Registry {
  std::vector<std::pair<const char*, void (*)()>> tests;
  int checks = 0;
  int failed_checks = 0;
};

inline Registry& registry() {
  static Registry r;
  return r;
}

struct Register {
  Register(const char* name, void (*fn)()) { registry().tests.emplace_back(name, fn); }
};

inline void fail_check(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "    %s:%d: %s\n", file, line, what.c_str());
  registry().checks++;
  registry().failed_checks++;
}

inline bool check(bool ok, const char* file, int line, const char* what) {
  if (ok)
    registry().checks++;
  else
    fail_check(file, line, what);
  return ok;
}

// Informational line under the current test (measured errors, timings).
inline void note(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void note(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::printf("    ");
  std::vprintf(fmt, ap);
  std::printf("\n");
  va_end(ap);
}

template <class A, class B>
std::string describe(const char* expr, const A& a, const B& b) {
  std::ostringstream os;
  os.precision(9);
  os << expr << "  (" << a << " vs " << b << ")";
  return os.str();
}

inline int run_all() {
  int passed = 0, failed = 0;
  // Checks a main made before calling us, outside any TEST.
  const int main_checks = registry().checks, main_failed = registry().failed_checks;
  if (main_checks > 0) {
    std::printf("%s checks in main\n", main_failed ? "FAIL" : "PASS");
    (main_failed ? failed : passed)++;
  }
  for (auto& [name, fn] : registry().tests) {
    const int before = registry().failed_checks;
    try {
      fn();
    } catch (const lcx::Error& e) {
      fail_check(name, 0, std::string("unexpected lcx::Error (") +
                              std::to_string((int)e.status()) + "): " + e.what());
    } catch (const std::exception& e) {
      fail_check(name, 0, std::string("unexpected exception: ") + e.what());
    }
    const bool ok = registry().failed_checks == before;
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", name);
    std::fflush(stdout);
    (ok ? passed : failed)++;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

inline int finish() { return run_all(); }

}  // namespace testing

namespace lcxtest = testing;

#define TEST(name)                                                \
  static void name();                                             \
  static const testing::Register name##_registered(#name, name); \
  static void name()

#define CHECK(cond) testing::check(static_cast<bool>(cond), __FILE__, __LINE__, "CHECK(" #cond ") failed")

#define CHECK_EQ(a, b)                                                                   \
  do {                                                                                   \
    const auto& va_ = (a);                                                               \
    const auto& vb_ = (b);                                                               \
    if (!(va_ == vb_))                                                                   \
      testing::fail_check(__FILE__, __LINE__, testing::describe(#a " == " #b, va_, vb_)); \
    else                                                                                 \
      testing::registry().checks++;                                                      \
  } while (0)

// |a - b| <= tol (NaN fails).
#define CHECK_NEAR(a, b, tol)                                                         \
  do {                                                                                \
    const double va_ = (a), vb_ = (b);                                                \
    if (!(std::fabs(va_ - vb_) <= (tol)))                                             \
      testing::fail_check(__FILE__, __LINE__,                                         \
                          testing::describe("|" #a " - " #b "| <= " #tol, va_, vb_)); \
    else                                                                              \
      testing::registry().checks++;                                                   \
  } while (0)

// expr must throw lcx::Error with the given status and a message containing `substring`.
#define CHECK_THROWS(status_, substring, expr)                                               \
  do {                                                                                       \
    bool thrown_ = false;                                                                    \
    try {                                                                                    \
      expr;                                                                                  \
    } catch (const lcx::Error& e_) {                                                         \
      thrown_ = true;                                                                        \
      if (e_.status() != (status_))                                                          \
        testing::fail_check(__FILE__, __LINE__,                                              \
                            std::string(#expr " threw status ") +                            \
                                std::to_string((int)e_.status()) + ": " + e_.what());        \
      else if (std::string(e_.what()).find(substring) == std::string::npos)                  \
        testing::fail_check(__FILE__, __LINE__,                                              \
                            std::string(#expr ": message lacks \"") + (substring) +          \
                                "\": " + e_.what());                                         \
    }                                                                                        \
    if (!thrown_) testing::fail_check(__FILE__, __LINE__, #expr " did not throw");           \
    testing::registry().checks++;                                                            \
  } while (0)
