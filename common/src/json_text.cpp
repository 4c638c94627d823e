#include "tally/common/json_text.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

namespace tally {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one (overlong forms,
// surrogates and code points above U+10FFFF included).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  std::size_t n;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

// True when none of the 8 bytes at `p` needs a look: all are ASCII from the space up and none
// is '"' or '\\'. (A false "no" is harmless: the bytes then go through the loop one by one.)
bool plain_json_text8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  constexpr uint64_t kOnes = 0x0101010101010101;
  constexpr uint64_t kHigh = 0x8080808080808080;
  const auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint64_t below_space = (w - 0x20 * kOnes) & ~w & kHigh;
  return ((w & kHigh) | below_space | has_zero(w ^ ('"' * kOnes)) | has_zero(w ^ ('\\' * kOnes))) ==
         0;
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t run = 0;  // start of the bytes not yet copied
  std::size_t i = 0;
  while (i < s.size()) {
    // Most text (names, label values) is plain: skip it eight bytes at a time.
    while (i + 8 <= s.size() && plain_json_text8(s.data() + i)) i += 8;
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (const std::size_t n = utf8_sequence_length(s, i); n != 0) {
        i += n;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20) {
      const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      out.append(escape, sizeof escape);
    } else {
      out += "\xEF\xBF\xBD";
    }
    run = ++i;
  }
  out.append(s.data() + run, s.size() - run);
}

void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  append_json_escaped(out, text);
  out.push_back('"');
}

namespace {

// 10^k, exact in a double for every k here.
constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// Writes digits × 10^exp10 (digits > 0, its fewest digits already found) as std::to_chars'
// shortest form does: fixed unless scientific ("d.ddde±XX", at least two exponent digits) is
// shorter.
char* write_shortest_form(char* p, uint64_t digits, int exp10) {
  using number_text_detail::kDigitPairs;
  // Trailing zeros go to the exponent, 8, 4, 2 and 1 at a time (a 15-digit n·10^-k from
  // write_shortest_fast has up to 15).
  for (const auto& [power, zeros] :
       {std::pair<uint64_t, int>{100'000'000, 8}, {10'000, 4}, {100, 2}, {10, 1}}) {
    if (digits % power == 0) {
      digits /= power;
      exp10 += zeros;
    }
  }
  while (digits % 10 == 0) {
    digits /= 10;
    ++exp10;
  }
  const int n = static_cast<int>(number_text_detail::decimal_length(digits));
  const int exponent = n - 1 + exp10;  // of the scientific form
  const int abs_exponent = exponent < 0 ? -exponent : exponent;
  const int scientific_length = n + (n > 1 ? 1 : 0) + 2 + (abs_exponent >= 100 ? 3 : 2);
  int fixed_length;
  if (exp10 >= 0) {
    fixed_length = n + exp10;  // ddd000
  } else if (exponent >= 0) {
    fixed_length = n + 1;  // dd.ddd
  } else {
    fixed_length = 1 - exponent + n;  // 0.000ddd
  }
  if (fixed_length <= scientific_length) {
    if (exp10 >= 0) {  // ddd000
      p = write_decimal(p, digits);
      std::memset(p, '0', exp10);
      return p + exp10;
    }
    if (exponent >= 0) {  // dd.ddd: the digits, then the fraction moved right for the point
      const int whole = exponent + 1;
      write_decimal(p, digits);
      for (int i = n; i > whole; --i) p[i] = p[i - 1];
      p[whole] = '.';
      return p + n + 1;
    }
    *p++ = '0';  // 0.000ddd
    *p++ = '.';
    std::memset(p, '0', -exponent - 1);
    return write_decimal(p + (-exponent - 1), digits);
  }
  // d.ddde±XX: the digits one place on, then the first moved back before the point.
  write_decimal(p + 1, digits);
  p[0] = p[1];
  if (n > 1) {
    p[1] = '.';
    p += n + 1;
  } else {
    p += 1;
  }
  *p++ = 'e';
  *p++ = exponent < 0 ? '-' : '+';
  if (abs_exponent >= 100) *p++ = static_cast<char>('0' + abs_exponent / 100);
  std::memcpy(p, kDigitPairs + (abs_exponent % 100) * 2, 2);
  return p + 2;
}

// The shortest digits of `a` (finite, not negative) when they are easy to find: `a` is an
// integer below 2^digits (every integer there is exact, so its own digits are the shortest), or,
// for doubles, a decimal of at most 15 significant digits from about 1e-8 up. Such a
// decimal n·10^-k reads back as fl(n / 10^k) (n and 10^k are exact, one division rounds
// correctly), which is checked; and no shorter text reads back as `a` then, since any two
// decimals of at most 15 digits (DBL_DIG) are different doubles. Returns nullptr otherwise.
template <class T>
char* write_shortest_fast(char* p, T a) {
  constexpr T kExactIntegers = std::is_same_v<T, double> ? 0x1p53 : 0x1p24f;
  if (!(a < kExactIntegers)) return nullptr;
  const auto whole = static_cast<uint64_t>(a);
  if (static_cast<T>(whole) == a) {
    if (whole == 0) {
      *p = '0';
      return p + 1;
    }
    return write_shortest_form(p, whole, 0);
  }
  if constexpr (std::is_same_v<T, double>) {
    // n·10^-k with k the largest that keeps n under 10^15: if `a`'s shortest text has at most
    // 15 digits, n is those digits followed by zeros (|a·10^k - n| is under 0.2: half an ulp of
    // `a` scaled, plus the product's rounding), which write_shortest_form strips.
    if (a < 1e-8) return nullptr;  // k past 22
    const int exponent2 = static_cast<int>(std::bit_cast<uint64_t>(a) >> 52) - 1023;
    // floor(exponent2·log10(2)): floor(log10(a)) or one less.
    int k = 14 - ((exponent2 * 78913) >> 18);
    if (k < 0 || k > 22) return nullptr;
    double scaled = a * kPow10[k];
    if (scaled >= 1e15) {
      if (--k < 0) return nullptr;
      scaled = a * kPow10[k];
    }
    const auto n = static_cast<uint64_t>(scaled + 0.5);
    if (static_cast<double>(n) / kPow10[k] == a) return write_shortest_form(p, n, -k);
  }
  return nullptr;
}

template <class T>
char* write_shortest_impl(char* first, T value) {
  char* p = first;
  if (std::signbit(value)) *p++ = '-';
  if (char* last = write_shortest_fast(p, std::fabs(value))) return last;
  // 24 characters at most ("-2.2250738585072014e-308"), so kShortestRoom is enough.
  return std::to_chars(first, first + kShortestRoom, value).ptr;
}

}  // namespace

char* write_shortest(char* first, double value) { return write_shortest_impl(first, value); }
char* write_shortest(char* first, float value) { return write_shortest_impl(first, value); }

void append_shortest(std::string& out, double value) {
  char text[kShortestRoom];
  out.append(text, static_cast<std::size_t>(write_shortest(text, value) - text));
}
void append_shortest(std::string& out, float value) {
  char text[kShortestRoom];
  out.append(text, static_cast<std::size_t>(write_shortest(text, value) - text));
}

}  // namespace tally
