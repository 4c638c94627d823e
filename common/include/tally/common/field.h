// Fields: the typed, named values that identify a timeseries (DESIGN.md §2).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tally/common/result.h"

namespace tally {

// The order matches FieldValue's alternatives: field_type(v) == FieldType(v.index()).
enum class FieldType : uint8_t {
  kString,
  kI8,
  kU8,
  kI16,
  kU16,
  kI32,
  kU32,
  kI64,
  kU64,
  kIpAddr,
  kUuid,
  kBool
};
inline constexpr int kFieldTypeCount = 12;

struct Uuid {
  std::array<uint8_t, 16> bytes{};

  // Hyphenated form, either case ("6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f").
  static Result<Uuid> parse(std::string_view text);
  // A random version-4 UUID.
  static Uuid random();
  std::string to_string() const;           // lowercase, hyphenated
  void append_to(std::string& out) const;  // to_string() appended, without a temporary
  auto operator<=>(const Uuid&) const = default;
};

struct IpAddr {
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first four
  bool v6 = false;

  static Result<IpAddr> parse(std::string_view text);
  std::string to_string() const;  // canonical text (RFC 5952 for IPv6)
  auto operator<=>(const IpAddr&) const = default;
};

using FieldValue = std::variant<std::string, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t,
                                int64_t, uint64_t, IpAddr, Uuid, bool>;

inline FieldType field_type(const FieldValue& v) { return static_cast<FieldType>(v.index()); }
std::string_view to_string(FieldType t);  // "string", "i8", …, "ip_addr", "uuid", "bool"
std::optional<FieldType> parse_field_type(std::string_view name);

// The canonical text of a value, as used in the timeseries key: decimal integers,
// true/false, lowercase hyphenated UUID, canonical IP text, the raw string.
std::string format_field_value(const FieldValue& v);
void append_field_value(std::string& out, const FieldValue& v);

// Parses `text` as a value of `type` (the inverse of format_field_value).
Result<FieldValue> parse_field_value(FieldType type, std::string_view text);

struct Field {
  std::string name;
  FieldValue value;
  bool operator==(const Field&) const = default;
};

using Fields = std::vector<Field>;

}  // namespace tally
