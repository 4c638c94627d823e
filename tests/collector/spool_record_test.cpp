// Spool and journal records (collector/spool_record.*): the binary sample encoding round-trips
// every datum and field type, records of the JSON format version 1 still decode, and damaged
// payloads (with a checksum that matches, as a buggy writer would leave them) are refused with a
// message that says where, leaving the output as it was.
#include "tally/collector/spool_record.h"

#include <doctest/doctest.h>
#include <xxhash.h>

#include <cstring>
#include <string>
#include <vector>

#include "support/every_datum.h"
#include "support/series.h"
#include "tally/common/collect_json.h"

namespace tally::collector {
namespace {

using test::every_datum;
using test::metric_of;
using test::target_of;

// Samples of every datum and field type, the target changing every third sample.
std::vector<Sample> zoo(uint64_t seed) {
  std::vector<Sample> samples;
  const std::vector<Datum> datums = every_datum(seed);
  for (std::size_t k = 0; k < datums.size(); ++k) {
    samples.push_back(
        {make_timeseries(target_of(seed + k / 3), metric_of(seed, k), static_cast<uint32_t>(1 + k)),
         test::ts("2026-12-03T10:00:00Z") + std::chrono::microseconds(k), datums[k]});
  }
  return samples;
}

uint32_t u32_at(const std::string& record, std::size_t offset) {
  uint32_t v;
  std::memcpy(&v, record.data() + offset, sizeof v);
  return v;
}

// A record with `version`, `count` and `payload` and a checksum that matches.
std::string sealed_record(uint32_t version, uint32_t count, std::string_view payload) {
  std::string record(kSpoolHeaderBytes, '\0');
  std::memcpy(record.data(), "TLYSPOOL", 8);
  std::memcpy(record.data() + 8, &version, 4);
  std::memcpy(record.data() + 12, &count, 4);
  const uint64_t length = payload.size();
  std::memcpy(record.data() + 16, &length, 8);
  record.append(payload);
  XXH64_state_t* state = XXH64_createState();
  XXH64_reset(state, 0);
  XXH64_update(state, record.data(), 24);
  XXH64_update(state, payload.data(), payload.size());
  const uint64_t sum = XXH64_digest(state);
  XXH64_freeState(state);
  std::memcpy(record.data() + 24, &sum, 8);
  return record;
}

std::vector<Sample> must_decode(const std::string& record) {
  std::vector<Sample> out;
  Result<std::size_t> n = decode_record(record, out);
  REQUIRE_MESSAGE(n.ok(), n.error());
  CHECK(*n == record.size());
  return out;
}

void check_same(const std::vector<Sample>& got, const std::vector<Sample>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CHECK_MESSAGE(same_sample(got[i], want[i]), "sample ", i);
  }
}

TEST_CASE("a record round-trips every datum and field type, NaN and -0 bit for bit") {
  for (uint64_t seed : {0, 1, 5, 15, 42}) {
    CAPTURE(seed);
    const std::vector<Sample> samples = zoo(seed);
    for (const Sample& s : samples) REQUIRE_MESSAGE(validate_sample(s).ok(), s.metric().name);
    const std::string record = encode_record(samples);
    CHECK(u32_at(record, 8) == 2);
    CHECK(u32_at(record, 12) == samples.size());
    check_same(must_decode(record), samples);
  }
}

TEST_CASE("decoding appends to what the output holds") {
  std::vector<Sample> out = zoo(3);
  const std::vector<Sample> more = zoo(4);
  REQUIRE(decode_record(encode_record(more), out).ok());
  std::vector<Sample> want = zoo(3);
  want.insert(want.end(), more.begin(), more.end());
  check_same(out, want);
}

TEST_CASE("an empty record round-trips") {
  const std::string record = encode_record({});
  CHECK(record.size() == kSpoolHeaderBytes);
  CHECK(must_decode(record).empty());
}

TEST_CASE("a target repeated by the next sample is written once") {
  std::vector<Sample> one_target = zoo(1);
  for (Sample& s : one_target) {
    tally::test::change_series(s, [](Timeseries& t) { t.target = target_of(1); });
  }
  std::vector<Sample> targets = one_target;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    tally::test::change_series(targets[i], [&](Timeseries& t) { t.target = target_of(i); });
  }
  const std::string shared = encode_record(one_target);
  const std::string apart = encode_record(targets);
  // Every sample after the first saves the target: its name, two fields and their values.
  CHECK(apart.size() - shared.size() >= (one_target.size() - 1) * 40);
  check_same(must_decode(shared), one_target);
  check_same(must_decode(apart), targets);
}

TEST_CASE("a record of format version 1 (the collect response JSON) still decodes") {
  const std::vector<Sample> samples = zoo(7);
  const std::vector<CollectItem> items = {{samples, std::nullopt}};
  const std::string json = encode_collect_response(items);
  check_same(must_decode(sealed_record(1, static_cast<uint32_t>(samples.size()), json)), samples);
}

TEST_CASE("a sample Postgres cannot hold is refused: replays reach the writer unchecked") {
  for (const uint32_t version : {1u, 2u}) {
    CAPTURE(version);
    std::vector<Sample> samples = zoo(6);
    tally::test::change_series(samples[2], [&](Timeseries& t) {
      t.metric.fields.push_back({"nul_text", FieldValue(std::string("a\0b", 3))});
    });
    REQUIRE(validate_sample(samples[2]).ok());
    const std::vector<CollectItem> items = {{samples, std::nullopt}};
    const std::string record = version == 2
                                   ? encode_record(samples)
                                   : sealed_record(1, static_cast<uint32_t>(samples.size()),
                                                   encode_collect_response(items));
    std::vector<Sample> out = zoo(1);
    const Result<std::size_t> n = decode_record(record, out);
    REQUIRE_FALSE(n.ok());
    CHECK(n.error() == "payload: sample 2: field 'nul_text' is not UTF-8 text without NUL");
    check_same(out, zoo(1));
  }
}

TEST_CASE("a damaged payload is refused with where, and the output is left as it was") {
  const std::vector<Sample> samples = zoo(2);
  std::string payload;
  append_binary_samples(payload, samples);
  const auto count = static_cast<uint32_t>(samples.size());
  Sample invalid = samples[0];
  tally::test::change_series(invalid, [&](Timeseries& t) { t.version = 0; });
  std::string invalid_payload;
  append_binary_samples(invalid_payload, std::vector<Sample>{invalid});
  std::string flagged_first = payload;
  flagged_first[0] = 1;  // "the target of the previous sample", with none before
  std::string bad_flags = payload;
  bad_flags[0] = 4;
  // One sample whose datum is a bool: its last two bytes are the datum's tag and value.
  std::string one;
  append_binary_samples(one, std::vector<Sample>{samples[0]});
  REQUIRE(std::holds_alternative<bool>(samples[0].datum));
  std::string bad_tag = one;
  bad_tag[one.size() - 2] = 40;
  std::string bad_bool = one;
  bad_bool[one.size() - 1] = 2;

  struct Case {
    std::string name;
    uint32_t count;
    std::string payload;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"truncated", count, payload.substr(0, payload.size() - 3), "truncated"},
      {"bytes left over", count, payload + "x", "bytes left after the last sample"},
      {"count higher than the samples", count + 1, payload, "truncated"},
      {"count lower than the samples", count - 1, payload, "bytes left"},
      {"count no payload could hold", 1'000'000, payload, "header says 1000000 samples"},
      {"first sample refers back", count, flagged_first, "refers to a previous target"},
      {"unknown flags", count, bad_flags, "flags 4"},
      {"unknown datum tag", 1, bad_tag, "unknown tag 40"},
      {"bool byte not 0 or 1", 1, bad_bool, "bool byte 2"},
      {"invalid sample", 1, invalid_payload, "sample 0: timeseries"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::vector<Sample> out = zoo(9);
    Result<std::size_t> n = decode_record(sealed_record(2, c.count, c.payload), out);
    REQUIRE_FALSE(n.ok());
    CHECK_MESSAGE(n.error().find(c.error) != std::string::npos, n.error());
    CHECK(n.error().find("payload") != std::string::npos);
    check_same(out, zoo(9));
  }
}

TEST_CASE("a damaged field count cannot make the decoder reserve more than the payload") {
  const std::vector<Sample> samples = {zoo(1)[0]};
  std::string payload;
  append_binary_samples(payload, samples);
  // Flags byte, target name length and name, then the target's field count.
  const std::size_t at = 1 + 4 + samples[0].target().name.size();
  const uint32_t huge = 0xFFFFFFFF;
  std::memcpy(payload.data() + at, &huge, 4);
  std::vector<Sample> out;
  Result<std::size_t> n = decode_record(sealed_record(2, 1, payload), out);
  REQUIRE_FALSE(n.ok());
  CHECK_MESSAGE(n.error().find("count 4294967295 exceeds the bytes left") != std::string::npos,
                n.error());
}

TEST_CASE("a header damaged before its checksum is refused, whatever the payload") {
  const std::string good = encode_record(zoo(1));
  std::vector<Sample> out;
  std::string bad_version = good;
  bad_version[8] = 3;
  CHECK(decode_record(bad_version, out).error() == "unknown format version 3");
  std::string bad_count = good;
  bad_count[12] ^= 1;
  CHECK(decode_record(bad_count, out).error() == "checksum mismatch");
  CHECK(decode_record(good.substr(0, 20), out).error() == "shorter than a header (20 bytes)");
  CHECK(out.empty());
}

}  // namespace
}  // namespace tally::collector
