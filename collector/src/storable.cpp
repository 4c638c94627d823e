#include <chrono>
#include <cstring>
#include <limits>

#include "tally/collector/copy_writer.h"

namespace tally::collector {
namespace {

// Postgres timestamps reach further, but four-digit years keep the COPY text and the partition
// names simple, and anything outside them is a broken clock.
constexpr Timestamp kMinTimestamp{std::chrono::sys_days{std::chrono::year{1} / 1 / 1}};
constexpr Timestamp kEndTimestamp{std::chrono::sys_days{std::chrono::year{10000} / 1 / 1}};

constexpr uint64_t kMaxBigint = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// True when none of the 8 bytes at `p` is NUL or above 0x7f (plain ASCII text).
bool ascii_without_nul8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  constexpr uint64_t kHigh = 0x8080808080808080;
  constexpr uint64_t kOnes = 0x0101010101010101;
  return ((w | ((w - kOnes) & ~w)) & kHigh) == 0;
}

bool valid_utf8_without_nul(std::string_view s) {
  std::size_t i = 0;
  while (i + 8 <= s.size() && ascii_without_nul8(s.data() + i)) i += 8;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c != 0 && c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;  // continuation bytes
    uint32_t cp;    // the code point, built up from the lead and continuation bytes
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;  // NUL, a continuation byte, an overlong lead or beyond U+10FFFF
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3f);
    }
    // Overlong three/four-byte forms, UTF-16 surrogates, above U+10FFFF.
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

Status unstorable(std::string_view what) { return Status::error(std::string(what), "unstorable"); }

Status check_time(Timestamp t, std::string_view what) {
  if (t < kMinTimestamp || t >= kEndTimestamp) {
    return unstorable(std::string(what) + " " + format_rfc3339(t) + " is outside years 1-9999");
  }
  return {};
}

Status check_fields(const Fields& fields) {
  for (const Field& f : fields) {
    const auto* text = std::get_if<std::string>(&f.value);
    if (text && !valid_utf8_without_nul(*text)) {
      return unstorable("field '" + f.name + "' is not UTF-8 text without NUL");
    }
  }
  return {};
}

Status check_datum(const Datum& d) {
  return std::visit(
      [](const auto& x) -> Status {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (!valid_utf8_without_nul(x)) {
            return unstorable("string datum is not UTF-8 without NUL");
          }
        } else if constexpr (requires { x.bins; }) {
          if (x.n_samples > kMaxBigint) return unstorable("histogram n_samples above 2^63-1");
          for (const auto& bin : x.bins) {
            if (bin.count > kMaxBigint) return unstorable("histogram count above 2^63-1");
          }
        }
        return {};
      },
      d);
}

}  // namespace

Status check_storable(const Sample& s) {
  if (Status st = check_time(s.timestamp, "timestamp"); !st.ok()) return st;
  if (auto start = start_time(s.datum)) {
    if (Status st = check_time(*start, "start_time"); !st.ok()) return st;
  }
  if (Status st = check_fields(s.target().fields); !st.ok()) return st;
  if (Status st = check_fields(s.metric().fields); !st.ok()) return st;
  return check_datum(s.datum);
}

}  // namespace tally::collector
