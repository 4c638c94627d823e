// The Postgres monitor's query table: which SQL each server version gets, and how a result
// becomes samples. The SQL itself runs against a real server in pgstats_db_test.cpp.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "tally/collector/pgstats/queries.h"

namespace tally::collector::pgstats {
namespace {

const Timestamp kNow = parse_rfc3339("2026-11-22T10:00:00Z").value();
const Target kTarget = make_target({"main", "db1", 5433});
constexpr int kVersions[] = {100000, 110000, 120000, 130000, 140000,
                             150000, 160000, 170000, 180000};

std::set<std::string> names(const std::vector<const QuerySpec*>& queries) {
  std::set<std::string> out;
  for (const QuerySpec* q : queries) out.insert(q->name);
  return out;
}

bool has_metric(const QuerySpec& q, int version, const std::string& name) {
  for (const MetricSpec* m : metrics_for(q, version)) {
    if (m->name == name) return true;
  }
  return false;
}

const QuerySpec& builtin(const std::string& name) {
  for (const QuerySpec& q : builtin_queries()) {
    if (q.name == name) return q;
  }
  FAIL("no query " << name);
  throw std::logic_error("unreachable");
}

// A result with a plausible value in every column `q` returns on `version`.
ResultTable fake_result(const QuerySpec& q, int version, int rows = 2) {
  ResultTable t;
  t.columns = result_columns(q, version);
  for (int r = 0; r < rows; ++r) {
    std::vector<std::optional<std::string>> row;
    for (const FieldSpec& f : q.fields) row.emplace_back(f.name + std::to_string(r));
    for (const MetricSpec* m : metrics_for(q, version)) {
      switch (m->kind) {
        case ValueKind::kCounter:
          row.emplace_back("12");
          break;
        case ValueKind::kCounterF64:
          row.emplace_back("1.5");
          break;
        case ValueKind::kGaugeI64:
          row.emplace_back("-3");
          break;
        case ValueKind::kGaugeF64:
          row.emplace_back("0.25");
          break;
        case ValueKind::kBool:
          row.emplace_back("t");
          break;
      }
    }
    if (t.columns.size() > row.size()) row.emplace_back("1763805600000000");  // start_time_us
    t.rows.push_back(std::move(row));
  }
  return t;
}

TEST_CASE("every supported server version gets each query once, and older servers none") {
  const std::set<std::string> common = {
      "stat_database", "stat_user_tables", "statio_user_tables", "stat_bgwriter", "connections",
      "replication",   "recovery",         "instance",           "database_size", "wraparound"};
  for (int version : kVersions) {
    CAPTURE(version);
    const auto selected = select_queries(builtin_queries(), version);
    CHECK(selected.size() == names(selected).size());
    std::set<std::string> want = common;
    if (version >= 170000) want.insert("stat_checkpointer");
    CHECK(names(selected) == want);
  }
  CHECK(select_queries(builtin_queries(), 90600).empty());
}

TEST_CASE(
    "columns that came or went with a version are asked only of the versions that have them") {
  const QuerySpec& db = builtin("stat_database");
  CHECK_FALSE(has_metric(db, 110000, "checksum_failures"));
  CHECK(has_metric(db, 120000, "checksum_failures"));
  CHECK_FALSE(has_metric(db, 130000, "sessions"));
  CHECK(has_metric(db, 140000, "sessions"));
  CHECK(build_sql(db, 110000).find("checksum_failures") == std::string::npos);
  CHECK(build_sql(db, 150000).find("coalesce(checksum_failures, 0) AS checksum_failures") !=
        std::string::npos);

  const QuerySpec& bgwriter = builtin("stat_bgwriter");
  CHECK(has_metric(bgwriter, 160000, "buffers_backend"));
  CHECK_FALSE(has_metric(bgwriter, 170000, "buffers_backend"));
  CHECK_FALSE(has_metric(bgwriter, 170000, "checkpoints_timed"));
  CHECK(has_metric(builtin("stat_checkpointer"), 170000, "checkpoints_timed"));
  CHECK(build_sql(builtin("stat_checkpointer"), 170000).find("num_timed AS checkpoints_timed") !=
        std::string::npos);

  const QuerySpec& tables = builtin("stat_user_tables");
  CHECK_FALSE(has_metric(tables, 120000, "n_ins_since_vacuum"));
  CHECK(has_metric(tables, 130000, "n_ins_since_vacuum"));
  CHECK_FALSE(has_metric(tables, 150000, "n_tup_newpage_upd"));
  CHECK(has_metric(tables, 160000, "n_tup_newpage_upd"));
}

TEST_CASE("build_sql selects the fields, the metrics and the counters' start time") {
  const std::string sql = build_sql(builtin("database_size"), 150000);
  CHECK(sql ==
        "SELECT datname AS database, pg_database_size(oid) AS database_size_bytes "
        "FROM pg_database WHERE datallowconn ORDER BY datname");
  const std::string db = build_sql(builtin("stat_database"), 150000);
  CHECK(db.starts_with("SELECT datname AS database, numbackends, xact_commit, "));
  CHECK(db.find("(extract(epoch FROM coalesce(stats_reset, pg_postmaster_start_time())) * "
                "1000000)::bigint AS start_time_us FROM pg_stat_database") != std::string::npos);
  // Gauges only: no start time.
  CHECK(build_sql(builtin("instance"), 150000).find("start_time_us") == std::string::npos);
}

TEST_CASE("a metric has the same datum type and fields in every query and version") {
  std::map<std::string, std::pair<ValueKind, std::vector<std::string>>> seen;
  for (int version : kVersions) {
    for (const QuerySpec* q : select_queries(builtin_queries(), version)) {
      std::vector<std::string> fields;
      for (const FieldSpec& f : q->fields) fields.push_back(f.name);
      for (const MetricSpec* m : metrics_for(*q, version)) {
        auto [it, added] = seen.try_emplace(m->name, m->kind, fields);
        CAPTURE(m->name);
        CHECK(it->second.first == m->kind);
        CHECK(it->second.second == fields);
      }
    }
  }
  CHECK(seen.size() > 60);
}

TEST_CASE("every query's result makes valid samples of postgres_instance on every version") {
  for (int version : kVersions) {
    for (const QuerySpec* q : select_queries(builtin_queries(), version)) {
      CAPTURE(version);
      CAPTURE(q->name);
      auto samples = to_samples(*q, version, fake_result(*q, version), kTarget, kNow);
      REQUIRE_MESSAGE(samples.ok(), samples.error());
      CHECK(samples->size() == 2 * metrics_for(*q, version).size());
      for (const Sample& s : *samples) {
        const Status valid = validate_sample(s);
        CHECK_MESSAGE(valid.ok(), valid.message());
        CHECK(s.timeseries_name().starts_with("postgres_instance:"));
      }
    }
  }
}

TEST_CASE("counters start at the row's start time, gauges have none, NULL is a missing datum") {
  QuerySpec q{.name = "t",
              .fields = {{"database", "datname"}},
              .start_time = "now()",
              .metrics = {{"xact_commit", ValueKind::kCounter},
                          {"blk_read_time", ValueKind::kCounterF64},
                          {"size", ValueKind::kGaugeI64},
                          {"lag", ValueKind::kGaugeF64},
                          {"up", ValueKind::kBool}}};
  ResultTable t;
  t.columns = {"database", "xact_commit", "blk_read_time", "size", "lag", "up", "start_time_us"};
  t.rows.push_back({"app", "42", "1.25", "-7", std::nullopt, "f", "1763805600000001"});
  t.rows.push_back({std::nullopt, std::nullopt, "0", "0", "NaN", "t", "1763805600000001"});
  auto samples = to_samples(q, 150000, t, kTarget, kNow);
  REQUIRE_MESSAGE(samples.ok(), samples.error());
  REQUIRE(samples->size() == 10);
  const Timestamp start = Timestamp(std::chrono::microseconds(1763805600000001));
  const std::vector<Sample>& s = *samples;
  CHECK(s[0].target() == kTarget);
  CHECK(s[0].metric() == Metric{"xact_commit", {{"database", std::string("app")}}});
  CHECK(s[0].timestamp == kNow);
  CHECK(same_datum(s[0].datum, Cumulative<uint64_t>{start, 42}));
  CHECK(same_datum(s[1].datum, Cumulative<double>{start, 1.25}));
  CHECK(same_datum(s[2].datum, int64_t{-7}));
  CHECK(same_datum(s[3].datum, Missing{DatumType::kF64, std::nullopt}));
  CHECK(same_datum(s[4].datum, false));
  // Second row: a NULL field is "", a NULL counter is missing with its start time.
  CHECK(s[5].metric().fields == Fields{{"database", std::string()}});
  CHECK(same_datum(s[5].datum, Missing{DatumType::kCumulativeU64, start}));
  CHECK(same_datum(s[8].datum, std::numeric_limits<double>::quiet_NaN()));
  CHECK(same_datum(s[9].datum, true));
}

TEST_CASE("a value that does not parse, or a column missing, fails the query naming the column") {
  QuerySpec q{.name = "t",
              .start_time = "now()",
              .metrics = {{"n", ValueKind::kCounter}, {"up", ValueKind::kBool}}};
  struct Case {
    std::vector<std::string> columns;
    std::vector<std::optional<std::string>> row;
    std::string message;
  };
  const Case cases[] = {
      {{"n", "up", "start_time_us"}, {"x", "t", "1"}, "column n: 'x' is not a count"},
      {{"n", "up", "start_time_us"}, {"-1", "t", "1"}, "column n: '-1' is not a count"},
      {{"n", "up", "start_time_us"}, {"1", "yes", "1"}, "column up: 'yes' is not a boolean"},
      {{"n", "up", "start_time_us"}, {"1", "t", std::nullopt}, "column start_time_us"},
      {{"n", "start_time_us"}, {"1", "1"}, "column up: missing from the result"},
      {{"n", "up"}, {"1", "t"}, "column start_time_us: missing"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    ResultTable t;
    t.columns = c.columns;
    t.rows.push_back(c.row);
    auto samples = to_samples(q, 150000, t, kTarget, kNow);
    REQUIRE_FALSE(samples.ok());
    CHECK(samples.status().code() == "decode");
    CHECK(samples.error().find(c.message) != std::string::npos);
  }
}

TEST_CASE("integers written as numeric with a zero fraction are accepted") {
  QuerySpec q{.name = "t", .metrics = {{"bytes", ValueKind::kGaugeI64}}};
  ResultTable t;
  t.columns = {"bytes"};
  t.rows.push_back({"1048576.000"});
  auto samples = to_samples(q, 150000, t, kTarget, kNow);
  REQUIRE(samples.ok());
  CHECK(same_datum((*samples)[0].datum, int64_t{1048576}));
  t.rows[0][0] = "1.5";
  CHECK_FALSE(to_samples(q, 150000, t, kTarget, kNow).ok());
}

TEST_CASE("docs/pgstats.md lists every metric") {
  std::ifstream in(std::string(TALLY_FIXTURES_DIR) + "/../../docs/pgstats.md");
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  for (const QuerySpec& q : builtin_queries()) {
    for (const MetricSpec& m : q.metrics) {
      CAPTURE(m.name);
      CHECK(doc.find("`" + m.name + "`") != std::string::npos);
    }
    CHECK(doc.find("`" + q.name + "`") != std::string::npos);
  }
}

}  // namespace
}  // namespace tally::collector::pgstats
