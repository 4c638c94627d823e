// Writing JSON text by hand: the one string escaper every encoder in Tally uses, and the number
// formatting of the encoders that write many numbers (collect responses, Prometheus text).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tally {

// Appends `text` as a JSON string literal, quotes included. Control characters become \u00XX,
// valid UTF-8 passes through, and an invalid byte becomes U+FFFD (one bad byte must not make a
// whole document unreadable).
void append_json_string(std::string& out, std::string_view text);
// The same escaping without the quotes, for a literal assembled from several pieces.
void append_json_escaped(std::string& out, std::string_view text);

// ---- numbers, byte for byte as std::to_chars writes them, but faster on the values that fill
// a collection (small counts, integral and short decimal floats). Thread-safe, no allocation
// beyond `out`'s.

namespace number_text_detail {
inline constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

inline unsigned decimal_length(uint64_t v) {
  unsigned n = 1;
  for (;;) {
    if (v < 10) return n;
    if (v < 100) return n + 1;
    if (v < 1000) return n + 2;
    if (v < 10000) return n + 3;
    v /= 10000;
    n += 4;
  }
}
}  // namespace number_text_detail

// Writes the decimal digits of `value` at `first` (room for 20 is enough) and returns their end.
inline char* write_decimal(char* first, uint64_t value) {
  using number_text_detail::kDigitPairs;
  char* const last = first + number_text_detail::decimal_length(value);
  char* p = last;
  while (value >= 100) {
    const auto pair = static_cast<std::size_t>(value % 100) * 2;
    value /= 100;
    p -= 2;
    std::memcpy(p, kDigitPairs + pair, 2);
  }
  if (value >= 10) {
    std::memcpy(p - 2, kDigitPairs + value * 2, 2);
  } else {
    p[-1] = static_cast<char>('0' + value);
  }
  return last;
}

// Appends `value` in decimal, as std::to_chars writes it.
inline void append_decimal(std::string& out, uint64_t value) {
  if (value < 10) {
    out.push_back(static_cast<char>('0' + value));
    return;
  }
  char text[20];
  out.append(text, static_cast<std::size_t>(write_decimal(text, value) - text));
}
inline void append_decimal(std::string& out, int64_t value) {
  if (value >= 0) return append_decimal(out, static_cast<uint64_t>(value));
  char text[21];
  text[0] = '-';
  // 0 - (unsigned)value is |value|, INT64_MIN included.
  char* const last = write_decimal(text + 1, 0 - static_cast<uint64_t>(value));
  out.append(text, static_cast<std::size_t>(last - text));
}

// Appends a finite `value` exactly as std::to_chars(first, last, value) writes it: the fewest
// significant digits that read back as the same value, in fixed or scientific form, whichever is
// shorter (fixed on a tie): "0", "-0", "3", "0.1", "1e+21", "1e-07", "123456789". NaN and ±Inf
// are the caller's to spell (JSON and Prometheus spell them differently); given them, this
// writes what std::to_chars does ("nan", "inf").
void append_shortest(std::string& out, double value);
void append_shortest(std::string& out, float value);
// The same text written at `first`, which has room for kShortestRoom bytes; returns its end.
inline constexpr std::size_t kShortestRoom = 32;
char* write_shortest(char* first, double value);
char* write_shortest(char* first, float value);

}  // namespace tally
