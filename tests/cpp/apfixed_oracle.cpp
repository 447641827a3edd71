// Oracle for hetero/fixed.py: what real ap_fixed assignment produces, bit for bit.
//
// Built by tests/test_fixed.py with g++ against the ap_types headers of the installed hls4ml
// package (found with importlib, passed with -isystem; never copied into this repository).
//
// ap_fixed types are template arguments, so the cases are fixed at compile time: the test writes
// case files (plain C++ generated from a small template) and compiles this file once per case
// file with -DORACLE_CASES='"path"' (split only to use several cores), one of them also with
// -DORACLE_MAIN for main(), and links the objects. A case file holds entries such as
//
//   namespace c17 { typedef ap_fixed<6,2> S; typedef ap_ufixed<4,1,AP_RND,AP_SAT> D;
//                   ORACLE_PAIR(17, true, false) }
//   namespace d3  { typedef ap_fixed<8,3,AP_RND_CONV,AP_SAT_SYM> D; ORACLE_DOUBLE(3, true) }
//
// (the booleans say whether S and D are signed). Each entry registers itself, from a static
// initialiser, in a registry shared by all translation units. Usage of the linked program:
//
//   apfixed_oracle pairs [ID...]      for each pair case (all, or those listed), one line
//                                     "P <id> <y0> <y1> ...": the raw value of `D y = x;` for
//                                     every raw value x of S, from the most negative upwards
//   apfixed_oracle doubles [ID...]    reads doubles from stdin (one per line, any strtod spelling:
//                                     C99 hex floats for exactness, inf and -inf allowed); for each
//                                     double case one line "D <id> <y0> <y1> ...": the raw value
//                                     of `D y = (double)v;` for every input v
//
// Raw values are printed as signed integers: the W bits of the result, sign-extended when the
// type is signed.
//
// Compile with -DNDEBUG: ap_private's debug assertions abort on a bit ap_fixed's own assignment
// code reads past the source MSB (get_bit(F2 - F - 1) when F2 - F > W2) and then discards.

#include <ap_fixed.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace oracle {

typedef void (*PairFn)();
typedef void (*DoubleFn)(const std::vector<double>&);

struct Case {
  int id;
  char kind;  // 'P' fixed -> fixed, 'D' double -> fixed
  PairFn pair;
  DoubleFn dbl;
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

struct Register {
  Register(int id, PairFn fn) { registry().push_back(Case{id, 'P', fn, nullptr}); }
  Register(int id, DoubleFn fn) { registry().push_back(Case{id, 'D', nullptr, fn}); }
};

// Signed raw value of y: its W stored bits (y.V, the ap_private<W, S> that holds them; the same
// bits y.range(W - 1, 0) returns, read without instantiating a range reference per type),
// sign-extended when the type is signed.
template <class T>
inline long long raw_of(const T& y, bool is_signed) {
  const int w = T::width;
  unsigned long long bits = y.V.to_uint64();
  if (w < 64) bits &= (1ULL << w) - 1ULL;
  if (is_signed && w < 64 && ((bits >> (w - 1)) & 1ULL)) bits |= ~0ULL << w;
  return (long long)bits;
}

// The conversions under test; one instantiation per case, kept small (compile time is per
// instantiation). ap_fixed_base::setBits sign-extends the bits for a signed source.
template <class S, class D, bool DST_SIGNED>
long long from_fixed(long long r) {
  S x;
  x.setBits((ap_ulong)r);
  D y = x;
  return raw_of(y, DST_SIGNED);
}

template <class D, bool DST_SIGNED>
long long from_double(double v) {
  D y = v;
  return raw_of(y, DST_SIGNED);
}

template <class S, bool SRC_SIGNED>
long long source_raw(long long r) {
  S x;
  x.setBits((ap_ulong)r);
  return raw_of(x, SRC_SIGNED);
}

typedef long long (*FixedFn)(long long);
typedef long long (*DoubleValFn)(double);

inline void run_pair(int id, int src_width, bool src_signed, FixedFn source, FixedFn conv) {
  const long long lo = src_signed ? -(1LL << (src_width - 1)) : 0;
  const long long hi = src_signed ? (1LL << (src_width - 1)) - 1 : (1LL << src_width) - 1;
  std::string line = "P " + std::to_string(id);
  for (long long r = lo; r <= hi; ++r) {
    if (source(r) != r) {
      fprintf(stderr, "case %d: source raw %lld does not round-trip\n", id, r);
      exit(2);
    }
    line += ' ';
    line += std::to_string(conv(r));
  }
  puts(line.c_str());
}

inline void run_double(int id, DoubleValFn conv, const std::vector<double>& xs) {
  std::string line = "D " + std::to_string(id);
  for (double v : xs) {
    line += ' ';
    line += std::to_string(conv(v));
  }
  puts(line.c_str());
}

}  // namespace oracle

#define ORACLE_CAT2(a, b) a##b
#define ORACLE_CAT(a, b) ORACLE_CAT2(a, b)
#define ORACLE_PAIR(ID, SRC_SIGNED, DST_SIGNED)                                          \
  static void ORACLE_CAT(pair_, ID)() {                                                   \
    oracle::run_pair(ID, S::width, SRC_SIGNED, &oracle::source_raw<S, SRC_SIGNED>,        \
                     &oracle::from_fixed<S, D, DST_SIGNED>);                              \
  }                                                                                       \
  static oracle::Register ORACLE_CAT(reg_, ID)(ID, &ORACLE_CAT(pair_, ID));
#define ORACLE_DOUBLE(ID, DST_SIGNED)                                                     \
  static void ORACLE_CAT(dbl_, ID)(const std::vector<double>& xs) {                      \
    oracle::run_double(ID, &oracle::from_double<D, DST_SIGNED>, xs);                      \
  }                                                                                       \
  static oracle::Register ORACLE_CAT(reg_, ID)(ID, &ORACLE_CAT(dbl_, ID));

#ifdef ORACLE_CASES
#include ORACLE_CASES
#endif

#ifdef ORACLE_MAIN
static bool wanted(int id, int argc, char** argv) {
  if (argc <= 2) return true;
  for (int i = 2; i < argc; ++i)
    if (atoi(argv[i]) == id) return true;
  return false;
}

int main(int argc, char** argv) {
  if (argc < 2 || (strcmp(argv[1], "pairs") != 0 && strcmp(argv[1], "doubles") != 0)) {
    fprintf(stderr, "usage: %s pairs|doubles [ID...]   (doubles: values on stdin)\n", argv[0]);
    return 1;
  }
  const char kind = argv[1][0] == 'p' ? 'P' : 'D';
  std::vector<oracle::Case> cases = oracle::registry();
  std::sort(cases.begin(), cases.end(),
            [](const oracle::Case& a, const oracle::Case& b) { return a.id < b.id; });
  std::vector<double> xs;
  if (kind == 'D') {
    char buf[256];
    while (fgets(buf, sizeof buf, stdin)) {
      char* end = nullptr;
      double v = strtod(buf, &end);
      if (end == buf) continue;  // blank line
      xs.push_back(v);
    }
  }
  for (const oracle::Case& c : cases) {
    if (c.kind != kind || !wanted(c.id, argc, argv)) continue;
    if (kind == 'P')
      c.pair();
    else
      c.dbl(xs);
  }
  return 0;
}
#endif
