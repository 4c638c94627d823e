#include "tally/common/timeseries_key.h"

#include <doctest/doctest.h>
#include <xxhash.h>

#include <limits>
#include <string>
#include <vector>

namespace tally {
namespace {

Uuid uuid(std::string_view text) { return *Uuid::parse(text); }
IpAddr ip(std::string_view text) { return *IpAddr::parse(text); }

int64_t key_of(const Timeseries& t) { return timeseries_key(t.target, t.metric, t.version); }

Timeseries http_series() {
  Timeseries s;
  s.target.name = "http_service";
  s.target.fields = {{"name", std::string("api")},
                     {"instance_id", uuid("6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f")}};
  s.metric.name = "request_latency";
  s.metric.fields = {{"route", std::string("/v1/items")}, {"status_code", uint16_t{200}}};
  return s;
}

// Every field type, named so that sorting interleaves target and metric fields.
Timeseries every_type_series() {
  Timeseries s;
  s.target.name = "t";
  s.metric.name = "m";
  s.version = 3;
  s.target.fields = {{"n", false},
                     {"a", std::string("x y")},
                     {"k", uuid("ABCDEF01-2345-6789-ABCD-EF0123456789")},
                     {"c", std::numeric_limits<uint8_t>::max()},
                     {"e", std::numeric_limits<uint16_t>::max()},
                     {"g", std::numeric_limits<uint32_t>::max()},
                     {"i", std::numeric_limits<uint64_t>::max()}};
  s.metric.fields = {{"m", ip("10.0.0.1")},
                     {"j", ip("2001:0DB8:0:0:0:0:0:1")},
                     {"l", true},
                     {"b", std::numeric_limits<int8_t>::min()},
                     {"d", std::numeric_limits<int16_t>::min()},
                     {"f", std::numeric_limits<int32_t>::min()},
                     {"h", std::numeric_limits<int64_t>::min()}};
  return s;
}

TEST_CASE("canonical_series_text: name@version, then fields sorted by name across both") {
  const Timeseries s = http_series();
  CHECK(canonical_series_text(s.name(), 1, s.target.fields, s.metric.fields) ==
        "http_service:request_latency@1"
        "|instance_id=uuid:6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f"
        "|name=string:api|route=string:/v1/items|status_code=u16:200");
  CHECK(canonical_series_text("a:b", 2, {}, {}) == "a:b@2");
}

TEST_CASE("canonical_series_text: the text form of every type") {
  const Timeseries s = every_type_series();
  CHECK(canonical_series_text(s.name(), s.version, s.target.fields, s.metric.fields) ==
        "t:m@3|a=string:x y|b=i8:-128|c=u8:255|d=i16:-32768|e=u16:65535|f=i32:-2147483648"
        "|g=u32:4294967295|h=i64:-9223372036854775808|i=u64:18446744073709551615"
        "|j=ip_addr:2001:db8::1|k=uuid:abcdef01-2345-6789-abcd-ef0123456789|l=bool:true"
        "|m=ip_addr:10.0.0.1|n=bool:false");
}

// The expected keys were computed outside Tally, from the canonical text shown beside each:
//   printf '%s' '<text>' | xxhsum -H1      (xxhsum 0.8.1, XXH64, seed 0)
// and the hex value read as a two's-complement signed 64-bit integer.
TEST_CASE("timeseries_key: pinned values") {
  // "http_service:request_latency@1|instance_id=uuid:6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f
  //  |name=string:api|route=string:/v1/items|status_code=u16:200" -> 2675066c8e83b792
  CHECK(key_of(http_series()) == 2771128209033639826);
  // "a:b@1" -> e0d181142202f493
  CHECK(timeseries_key("a:b", 1, {}, {}) == -2246872815611218797);
  // "a:b@2" -> cd503f1ce743e7ca
  CHECK(timeseries_key("a:b", 2, {}, {}) == -3652349904425850934);
  // The text of the test above -> 31af1c5f381d93cf
  CHECK(key_of(every_type_series()) == 3580111424071766991);
}

TEST_CASE("make_timeseries: keeps the key of what it identifies") {
  const Timeseries t = http_series();
  CHECK(make_timeseries(t.target, t.metric, t.version)->key == 2771128209033639826);
  CHECK(make_timeseries(t.target, t.metric, 2)->key == key_of(Timeseries{t.target, t.metric, 2}));
}

TEST_CASE("timeseries_key: independent of field order and of where a field sits") {
  Timeseries a = http_series();
  Timeseries b = http_series();
  std::swap(b.target.fields[0], b.target.fields[1]);
  std::swap(b.metric.fields[0], b.metric.fields[1]);
  CHECK(key_of(a) == key_of(b));
  // Moving a field from the target to the metric does not change the series text.
  Timeseries c = http_series();
  c.metric.fields.push_back(c.target.fields.back());
  c.target.fields.pop_back();
  CHECK(key_of(a) == key_of(c));
}

TEST_CASE("timeseries_key: every part of the identity changes it") {
  const int64_t base = key_of(http_series());
  Timeseries s = http_series();
  s.version = 2;
  CHECK(key_of(s) != base);
  s = http_series();
  s.metric.name = "request_count";
  CHECK(key_of(s) != base);
  s = http_series();
  s.metric.fields[1].value = uint16_t{404};
  CHECK(key_of(s) != base);
  s = http_series();
  s.metric.fields[1].value = uint32_t{200};  // same digits, another type
  CHECK(key_of(s) != base);
  s = http_series();
  s.target.fields[0].name = "nam";
  CHECK(key_of(s) != base);
}

TEST_CASE("timeseries_key: the hash of the canonical text, also with more fields than fit inline") {
  for (int n : {0, 1, 31, 32, 33, 70}) {
    Timeseries s = http_series();
    s.target.fields.clear();
    s.metric.fields.clear();
    for (int i = n - 1; i >= 0; --i) {  // reverse order: the sort has work to do
      (i % 2 ? s.target.fields : s.metric.fields).push_back({"f" + std::to_string(i), int64_t{i}});
    }
    const std::string text =
        canonical_series_text(s.name(), s.version, s.target.fields, s.metric.fields);
    CAPTURE(n);
    CHECK(key_of(s) == static_cast<int64_t>(XXH64(text.data(), text.size(), 0)));
    CHECK(timeseries_key(s.name(), 1, s.target.fields, s.metric.fields) == key_of(s));
    if (n == 33) CHECK(text.starts_with("http_service:request_latency@1|f0=i64:0|f1=i64:1|f10="));
  }
}

TEST_CASE("TimeseriesKeySet: holds what was inserted and nothing else, through growth") {
  TimeseriesKeySet set;
  CHECK_FALSE(set.contains(0));
  CHECK_FALSE(set.contains(42));
  // Keys sharing their low bits, zero, the extremes and negatives: none may hide another.
  std::vector<int64_t> keys = {0, 1, -1, std::numeric_limits<int64_t>::min(),
                               std::numeric_limits<int64_t>::max()};
  for (int64_t i = 1; i <= 5000; ++i) keys.push_back(i << 20);
  for (int64_t i = 1; i <= 5000; ++i) keys.push_back(-i * 7919);
  for (int64_t k : keys) CHECK(set.insert(k));
  for (int64_t k : keys) CHECK_FALSE(set.insert(k));  // already there
  CHECK(set.size() == keys.size());
  for (int64_t k : keys) CHECK(set.contains(k));
  for (int64_t i = 1; i <= 5000; ++i) CHECK_FALSE(set.contains((i << 20) + 1));
  set.clear();
  CHECK(set.size() == 0);
  CHECK_FALSE(set.contains(0));
  CHECK_FALSE(set.contains(1 << 20));
  CHECK(set.insert(1 << 20));
  CHECK(set.contains(1 << 20));
}

}  // namespace
}  // namespace tally
