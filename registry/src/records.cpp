// Request bodies are parsed with Boost.JSON, in this translation unit only.
#include "tally/registry/records.h"

#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>
#include <cmath>

#include "tally/common/http_message.h"
#include "tally/common/names.h"

namespace tally::registry {
namespace {

namespace json = boost::json;

Status bad(std::string_view field, const std::string& why) {
  return Status::error(std::string(field) + ": " + why, "bad_request");
}

std::string_view kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "?";
}

Result<json::object> parse_object(std::string_view body) {
  if (body.empty()) {
    return Status::error("the request body must be a JSON object", "bad_request");
  }
  json::stream_parser parser;
  boost::system::error_code ec;
  const std::size_t used = parser.write(body.data(), body.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    return Status::error("malformed JSON at byte " + std::to_string(used) + ": " + ec.message(),
                         "bad_request");
  }
  json::value value = parser.release();
  if (!value.is_object()) {
    return Status::error(
        "the request body must be a JSON object, not " + std::string(kind_name(value)),
        "bad_request");
  }
  return std::move(value.as_object());
}

// A string field: nullopt when absent or null; an error when of another type.
Result<std::optional<std::string>> optional_string(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) {
    return bad(key, "expected a string, got " + std::string(kind_name(*v)));
  }
  return std::optional<std::string>(std::string(v->as_string()));
}

Result<std::string> required_string(const json::object& o, std::string_view key) {
  auto s = optional_string(o, key);
  if (!s.ok()) return s.status();
  if (!s->has_value()) return bad(key, "required");
  return std::move(**s);
}

Result<Uuid> parse_id(const json::object& o, std::string_view key) {
  auto text = required_string(o, key);
  if (!text.ok()) return text.status();
  auto id = Uuid::parse(*text);
  if (!id.ok()) return bad(key, "'" + *text + "' is not a UUID (8-4-4-4-12 hex digits)");
  return *id;
}

Result<std::string> parse_address(std::string_view key, const std::string& text) {
  auto hp = HostPort::parse(text);
  if (!hp.ok()) return bad(key, hp.error());
  return hp->to_string();
}

Status check_resolvable(std::string_view key, const std::string& address,
                        const std::vector<Network>& allowed) {
  const HostPort hp = *HostPort::parse(address);
  auto ips = resolve_host(hp.host);
  if (!ips.ok()) return bad(key, ips.error());
  for (const IpAddr& ip : *ips) {
    if (!tally::allowed(allowed, ip)) {
      std::string networks;
      for (const Network& n : allowed) networks += (networks.empty() ? "" : ", ") + n.to_string();
      std::string why = ip.to_string() == hp.host
                            ? hp.host + " is outside allowed_networks (" + networks + ")"
                            : "'" + hp.host + "' resolves to " + ip.to_string() +
                                  ", outside allowed_networks (" + networks + ")";
      return Status::error(std::string(key) + ": " + why, "bad_request");
    }
  }
  return {};
}

Result<int64_t> parse_interval(const json::object& o) {
  constexpr std::string_view kKey = "interval_ms";
  const json::value* v = o.if_contains(kKey);
  if (v == nullptr || v->is_null()) return int64_t{10'000};
  const std::string range =
      std::to_string(kMinIntervalMs) + " and " + std::to_string(kMaxIntervalMs);
  int64_t ms = 0;
  if (v->is_int64()) {
    ms = v->as_int64();
  } else if (v->is_uint64()) {
    return bad(kKey, "must be between " + range + ", got " + std::to_string(v->as_uint64()));
  } else if (v->is_double()) {
    const double d = v->as_double();
    if (d != std::floor(d) || std::fabs(d) > 1e15) {
      return bad(kKey, "expected a whole number of milliseconds between " + range);
    }
    ms = static_cast<int64_t>(d);
  } else {
    return bad(kKey, "expected a number of milliseconds, got " + std::string(kind_name(*v)));
  }
  if (ms < kMinIntervalMs || ms > kMaxIntervalMs) {
    return bad(kKey, "must be between " + range + ", got " + std::to_string(ms));
  }
  return ms;
}

bool is_kind(std::string_view s) {
  if (s.empty() || s.size() > kMaxKindLength) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

Status check_route(const std::string& route) {
  if (route.empty() || route[0] != '/') {
    return bad("route", "must start with '/', got '" + route + "'");
  }
  if (route.size() > kMaxRouteLength) {
    return bad("route", "longer than " + std::to_string(kMaxRouteLength) + " characters");
  }
  for (char c : route) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f)
      return bad("route", "must not contain spaces or control characters");
  }
  return {};
}

void append_optional(std::string& out, const std::optional<std::string>& s) {
  if (s) {
    append_json_string(out, *s);
  } else {
    out += "null";
  }
}

void append_key(std::string& out, std::string_view key) {
  if (out.back() != '{') out += ',';
  append_json_string(out, key);
  out += ':';
}

void append_time(std::string& out, Timestamp t) {
  out += '"';
  append_rfc3339(out, t);
  out += '"';
}

}  // namespace

Result<ProducerSpec> parse_producer_spec(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.status();
  const json::object& o = *parsed;
  ProducerSpec spec;

  auto id = parse_id(o, "id");
  if (!id.ok()) return id.status();
  spec.id = *id;

  auto kind = optional_string(o, "kind");
  if (!kind.ok()) return kind.status();
  if (*kind) {
    if (!is_kind(**kind)) {
      return bad("kind", "must match [a-z_]+ (at most " + std::to_string(kMaxKindLength) +
                             " characters), got '" + **kind + "'");
    }
    spec.kind = **kind;
  }

  auto address = required_string(o, "address");
  if (!address.ok()) return address.status();
  auto normalized = parse_address("address", *address);
  if (!normalized.ok()) return normalized.status();
  spec.address = *normalized;

  auto format = optional_string(o, "format");
  if (!format.ok()) return format.status();
  if (*format) {
    if (**format != "oximeter" && **format != "prometheus") {
      return bad("format", "must be oximeter or prometheus, got '" + **format + "'");
    }
    spec.format = **format;
  }

  auto route = optional_string(o, "route");
  if (!route.ok()) return route.status();
  // A Prometheus exporter serves /metrics; an oximeter producer (and Tally's library) /collect.
  spec.route = route->value_or(spec.format == "prometheus" ? "/metrics" : "/collect");
  if (Status s = check_route(spec.route); !s.ok()) return s;

  auto interval = parse_interval(o);
  if (!interval.ok()) return interval.status();
  spec.interval_ms = *interval;

  auto target = optional_string(o, "target_name");
  if (!target.ok()) return target.status();
  if (*target) {
    if (Status s = validate_name(**target, kMaxTargetNameLength, "target_name"); !s.ok()) {
      return Status::error(s.message() + ", got '" + **target + "'", "bad_request");
    }
    spec.target_name = **target;
  }
  return spec;
}

Status check_producer_address(const ProducerSpec& spec, const std::vector<Network>& allowed) {
  return check_resolvable("address", spec.address, allowed);
}

Result<CollectorSpec> parse_collector_spec(std::string_view body) {
  auto spec = parse_collector_body(body);
  if (!spec.ok()) return spec;
  if (Status s = check_resolvable("address", spec->address, {}); !s.ok()) return s;
  return spec;
}

Result<CollectorSpec> parse_collector_body(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.status();
  const json::object& o = *parsed;
  CollectorSpec spec;
  auto id = parse_id(o, "id");
  if (!id.ok()) return id.status();
  spec.id = *id;
  auto address = required_string(o, "address");
  if (!address.ok()) return address.status();
  auto normalized = parse_address("address", *address);
  if (!normalized.ok()) return normalized.status();
  spec.address = *normalized;
  return spec;
}

std::string producer_json(const ProducerRecord& p) {
  std::string out = "{";
  append_key(out, "id");
  append_json_string(out, p.spec.id.to_string());
  append_key(out, "kind");
  append_json_string(out, p.spec.kind);
  append_key(out, "address");
  append_json_string(out, p.spec.address);
  append_key(out, "route");
  append_json_string(out, p.spec.route);
  append_key(out, "interval_ms");
  out += std::to_string(p.spec.interval_ms);
  append_key(out, "format");
  append_json_string(out, p.spec.format);
  append_key(out, "target_name");
  append_optional(out, p.spec.target_name);
  append_key(out, "collector_id");
  append_optional(out, p.collector_id ? std::optional(p.collector_id->to_string()) : std::nullopt);
  append_key(out, "collector_address");
  append_optional(out, p.collector_address);
  append_key(out, "registered_by");
  append_optional(out, p.registered_by);
  append_key(out, "registered_at");
  append_time(out, p.registered_at);
  append_key(out, "renewed_at");
  append_time(out, p.renewed_at);
  append_key(out, "lease_expires_at");
  append_time(out, p.lease_expires_at);
  out += '}';
  return out;
}

std::string collector_json(const CollectorRecord& c) {
  std::string out = "{";
  append_key(out, "id");
  append_json_string(out, c.id.to_string());
  append_key(out, "address");
  append_json_string(out, c.address);
  append_key(out, "first_seen");
  append_time(out, c.first_seen);
  append_key(out, "last_seen");
  append_time(out, c.last_seen);
  append_key(out, "alive");
  out += c.alive ? "true" : "false";
  append_key(out, "n_producers");
  out += std::to_string(c.n_producers);
  out += '}';
  return out;
}

}  // namespace tally::registry
