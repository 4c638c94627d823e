#include "tally/common/field.h"

#include <arpa/inet.h>

#include <charconv>
#include <random>

namespace tally {
namespace {

constexpr std::string_view kFieldTypeNames[kFieldTypeCount] = {
    "string", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "ip_addr", "uuid", "bool"};

// A table, not comparisons: the digits of a random UUID defeat branch prediction, and UUIDs
// are parsed for nearly every decoded sample.
constexpr std::array<int8_t, 256> kHexValues = [] {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  for (int c = 0; c < 10; ++c) t['0' + c] = static_cast<int8_t>(c);
  for (int c = 0; c < 6; ++c) t['a' + c] = t['A' + c] = static_cast<int8_t>(10 + c);
  return t;
}();

int hex_value(char c) { return kHexValues[static_cast<unsigned char>(c)]; }

template <class Int>
Result<FieldValue> parse_integer(std::string_view text, FieldType type) {
  Int value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return Status::error(
        "'" + std::string(text) + "' is not a valid " + std::string(to_string(type)), "invalid");
  }
  return FieldValue(value);
}

}  // namespace

Result<Uuid> Uuid::parse(std::string_view text) {
  Uuid u;
  // 8-4-4-4-12 hex digits.
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
      text[23] != '-') {
    return Status::error("'" + std::string(text) + "' is not a hyphenated UUID", "invalid");
  }
  std::size_t byte = 0;
  for (std::size_t i = 0; i < text.size();) {
    // Skip only the hyphens checked above: a stray one elsewhere must fail the hex check,
    // or the pairs shift and text[i + 1] reads one past the end.
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      ++i;
      continue;
    }
    const int hi = hex_value(text[i]);
    const int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::error("'" + std::string(text) + "' is not a hyphenated UUID", "invalid");
    }
    u.bytes[byte++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return u;
}

Uuid Uuid::random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Uuid u;
  for (std::size_t i = 0; i < 16; i += 8) {
    const uint64_t r = rng();
    for (std::size_t j = 0; j < 8; ++j) u.bytes[i + j] = static_cast<uint8_t>(r >> (8 * j));
  }
  u.bytes[6] = static_cast<uint8_t>((u.bytes[6] & 0x0f) | 0x40);
  u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3f) | 0x80);
  return u;
}

std::string Uuid::to_string() const {
  std::string out;
  append_to(out);
  return out;
}

void Uuid::append_to(std::string& out) const {
  static constexpr char kHex[] = "0123456789abcdef";
  char text[36];
  char* p = text;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    *p++ = kHex[bytes[i] >> 4];
    *p++ = kHex[bytes[i] & 0xf];
  }
  out.append(text, sizeof text);
}

Result<IpAddr> IpAddr::parse(std::string_view text) {
  IpAddr ip;
  // inet_pton reads a C string: an embedded NUL would hide whatever follows it.
  if (text.find('\0') != std::string_view::npos) {
    return Status::error("'" + std::string(text) + "' is not an IPv4 or IPv6 address", "invalid");
  }
  const std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) return ip;
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
    ip.v6 = true;
    return ip;
  }
  return Status::error("'" + s + "' is not an IPv4 or IPv6 address", "invalid");
}

std::string IpAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::string_view to_string(FieldType t) { return kFieldTypeNames[static_cast<int>(t)]; }

std::optional<FieldType> parse_field_type(std::string_view name) {
  for (int i = 0; i < kFieldTypeCount; ++i) {
    if (kFieldTypeNames[i] == name) return static_cast<FieldType>(i);
  }
  return std::nullopt;
}

void append_field_value(std::string& out, const FieldValue& v) {
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          out += x;
        } else if constexpr (std::is_same_v<T, bool>) {
          out += x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, Uuid>) {
          x.append_to(out);  // every sample of a Prometheus target has one: no temporary
        } else if constexpr (std::is_same_v<T, IpAddr>) {
          out += x.to_string();
        } else {
          char buf[24];
          auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, x);
          out.append(buf, ptr);
        }
      },
      v);
}

std::string format_field_value(const FieldValue& v) {
  std::string out;
  append_field_value(out, v);
  return out;
}

Result<FieldValue> parse_field_value(FieldType type, std::string_view text) {
  switch (type) {
    case FieldType::kString:
      return FieldValue(std::string(text));
    case FieldType::kI8:
      return parse_integer<int8_t>(text, type);
    case FieldType::kU8:
      return parse_integer<uint8_t>(text, type);
    case FieldType::kI16:
      return parse_integer<int16_t>(text, type);
    case FieldType::kU16:
      return parse_integer<uint16_t>(text, type);
    case FieldType::kI32:
      return parse_integer<int32_t>(text, type);
    case FieldType::kU32:
      return parse_integer<uint32_t>(text, type);
    case FieldType::kI64:
      return parse_integer<int64_t>(text, type);
    case FieldType::kU64:
      return parse_integer<uint64_t>(text, type);
    case FieldType::kIpAddr: {
      auto ip = IpAddr::parse(text);
      if (!ip.ok()) return ip.status();
      return FieldValue(*ip);
    }
    case FieldType::kUuid: {
      auto u = Uuid::parse(text);
      if (!u.ok()) return u.status();
      return FieldValue(*u);
    }
    case FieldType::kBool:
      if (text == "true") return FieldValue(true);
      if (text == "false") return FieldValue(false);
      return Status::error("'" + std::string(text) + "' is not a bool (true or false)", "invalid");
  }
  return Status::error("unknown field type", "invalid");
}

}  // namespace tally
