#include "tally/collector/sample_pipeline.h"

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>

#include "sink_fakes.h"

namespace tally::collector {
namespace {

using schema::TimeseriesSchema;
using test::FakeClock;
using test::kT0;
using FakeSource = test::FakeSchemaSource;
using test::numbered;
using test::numbered_sample;
using test::numbers_of;
using test::range;

const Uuid kA = Uuid::parse("aaaaaaaa-0000-4000-8000-000000000001").value();
const Uuid kB = Uuid::parse("bbbbbbbb-0000-4000-8000-000000000002").value();

// Keeps every batch written.
class RecordingWriter final : public BatchWriter {
 public:
  explicit RecordingWriter(std::vector<Sample>& out) : out_(out) {}
  Result<WriteStats> write(std::span<const Sample> batch) override {
    out_.insert(out_.end(), batch.begin(), batch.end());
    WriteStats stats;
    stats.samples_written = batch.size();
    return stats;
  }

 private:
  std::vector<Sample>& out_;
};

struct Fixture {
  FakeClock clock;
  test::TempDir dir;
  FakeSource* source = nullptr;
  std::unique_ptr<SchemaChecker> checker;
  std::vector<Sample> written;
  std::unique_ptr<Sink> sink;
  std::unique_ptr<SamplePipeline> pipeline;

  // The wall clock of the time window; the numbered samples are stamped kT0 + i µs.
  std::shared_ptr<Timestamp> wall = std::make_shared<Timestamp>(test::kT0);

  explicit Fixture(SamplePipelineOptions options = {.max_pending = 1000}) {
    auto s = std::make_unique<FakeSource>();
    source = s.get();
    // retry_after 0: each check after a failure asks the source again.
    checker = std::make_unique<SchemaChecker>(
        std::move(s), SchemaCheckerOptions{.retry_after = std::chrono::milliseconds(0)}, clock);
    SinkOptions sink_options;
    sink_options.spool = {dir.sub("spool"), 1 << 20};
    sink = Sink::open(sink_options, std::make_unique<RecordingWriter>(written), clock).value();
    options.wall_clock = [w = wall] { return *w; };
    pipeline = std::make_unique<SamplePipeline>(*checker, *sink, std::move(options));
    pipeline->set_producers({{kA, "static"}, {kB, "registry"}});
  }

  // Everything pushed so far, as the sink writes it (stop() flushes on this thread).
  std::vector<int64_t> flushed() {
    sink->stop();
    return numbers_of(written);
  }
};

// The schema numbered_sample() gives, with another datum type: every sample then conflicts.
TimeseriesSchema conflicting_schema() {
  Sample s = numbered_sample(0);
  s.datum = 1.5;
  return schema::derive_schema(s);
}

TEST_CASE("accepted samples reach the sink and a conflict is recorded on its producer") {
  Fixture f;
  f.source->store(conflicting_schema());
  f.pipeline->push(kA, numbered(0, 5));
  f.pipeline->push(kA, numbered(5, 5));

  const auto a = f.pipeline->producer(kA);
  REQUIRE(a.has_value());
  CHECK(a->source == "static");
  CHECK(a->rejected_schema == 10);
  CHECK(a->failures_schema == 2);
  REQUIRE(a->conflicts.size() == 1);  // the same conflict twice is one entry, seen twice
  CHECK(a->conflicts[0].collections == 2);
  CHECK(a->conflicts[0].message.find("; stored: ") != std::string::npos);
  CHECK(a->conflicts[0].message.find("; new: ") != std::string::npos);
  REQUIRE(a->last_failure.has_value());
  CHECK(a->last_failure->reason == "schema");
  CHECK(f.pipeline->producer(kB)->failures_schema == 0);

  std::vector<Sample> other;
  for (int64_t i = 100; i < 103; ++i) other.push_back(numbered_sample(i, "errors"));
  f.pipeline->push(kB, std::move(other));
  const PipelineTotals t = f.pipeline->totals();
  CHECK(t.rejected_schema == 10);
  CHECK(t.failures_schema == 2);
  CHECK(t.schemas_created == 1);
  CHECK(f.flushed() == range(100, 3));
}

TEST_CASE("samples set aside while the schema store is down are stored in order once it returns") {
  Fixture f;
  f.source->down = true;
  f.pipeline->push(kA, numbered(0, 3));
  f.pipeline->push(kA, numbered(3, 2));
  PipelineTotals t = f.pipeline->totals();
  CHECK(t.deferred_schema_unavailable == 5);
  CHECK(t.pending_schema == 5);
  CHECK(t.failures_schema_unavailable == 2);
  auto a = f.pipeline->producer(kA);
  CHECK(a->deferred == 5);
  CHECK(a->failures_schema_unavailable == 2);
  REQUIRE(a->last_failure.has_value());
  CHECK(a->last_failure->reason == "schema_unavailable");
  CHECK(f.sink->stats().samples_queued == 0);

  f.pipeline->retry_pending();  // still down: kept, not counted again
  t = f.pipeline->totals();
  CHECK(t.pending_schema == 5);
  CHECK(t.deferred_schema_unavailable == 5);
  CHECK(t.failures_schema_unavailable == 2);

  f.pipeline->push(kA, numbered(5, 1));  // set aside behind the others
  f.source->down = false;
  f.pipeline->retry_pending();
  CHECK(f.pipeline->totals().pending_schema == 0);
  CHECK(f.pipeline->totals().dropped_schema_unavailable == 0);
  CHECK(f.flushed() == range(0, 6));
}

TEST_CASE("beyond max_pending, samples of unchecked schemas are dropped and counted") {
  Fixture f({.max_pending = 4});
  f.source->down = true;
  f.pipeline->push(kA, numbered(0, 3));
  f.pipeline->push(kA, numbered(3, 3));  // would make 6
  CHECK(f.pipeline->totals().pending_schema == 3);
  CHECK(f.pipeline->totals().dropped_schema_unavailable == 3);
  f.pipeline->drop_pending("stopping");
  CHECK(f.pipeline->totals().pending_schema == 0);
  CHECK(f.pipeline->totals().dropped_schema_unavailable == 6);
  CHECK(f.flushed().empty());
}

TEST_CASE("beyond max_pending_bytes, samples of unchecked schemas are dropped and counted") {
  const std::size_t one = queued_sample_bytes(numbered(0, 1)[0]);
  // Room for three of these samples by bytes, while the count bound would take a thousand.
  Fixture f({.max_pending = 1000, .max_pending_bytes = 3 * one + one / 2});
  f.source->down = true;
  f.pipeline->push(kA, numbered(0, 2));
  f.pipeline->push(kA, numbered(2, 2));  // would make 4 samples' bytes
  f.pipeline->push(kA, numbered(4, 1));  // fits: 3
  CHECK(f.pipeline->totals().pending_schema == 3);
  CHECK(f.pipeline->totals().dropped_schema_unavailable == 2);
  f.pipeline->retry_pending();           // still down: kept, their bytes still counted
  f.pipeline->push(kA, numbered(5, 1));  // does not fit
  CHECK(f.pipeline->totals().pending_schema == 3);
  CHECK(f.pipeline->totals().dropped_schema_unavailable == 3);
  f.source->down = false;
  f.pipeline->retry_pending();
  CHECK(f.pipeline->totals().pending_schema == 0);
  CHECK(f.flushed() == std::vector<int64_t>{0, 1, 4});
}

TEST_CASE("the collector's own samples and unknown producers count in totals only") {
  Fixture f;
  f.source->store(conflicting_schema());
  f.pipeline->push(std::nullopt, numbered(0, 2));
  f.pipeline->set_producers({{kB, "registry"}});  // kA is gone: its state too
  f.pipeline->push(kA, numbered(2, 2));
  CHECK_FALSE(f.pipeline->producer(kA).has_value());
  const PipelineTotals t = f.pipeline->totals();
  CHECK(t.rejected_schema == 4);
  CHECK(t.failures_schema == 1);  // only the producer's push is a collection
  CHECK(f.pipeline->producer(kB)->rejected_schema == 0);
}

Sample stamped(int64_t i, Timestamp t) {
  Sample s = numbered_sample(i);
  s.timestamp = t;
  return s;
}

TEST_CASE("samples stamped more than max_future ahead of the wall clock are rejected as timestamp") {
  Fixture f;  // max_future 1h, no max_age
  std::vector<Sample> samples = numbered(0, 2);
  samples.push_back(stamped(2, kT0 + std::chrono::hours(1)));  // the edge is accepted
  samples.push_back(stamped(3, kT0 + std::chrono::hours(1) + std::chrono::microseconds(1)));
  samples.push_back(stamped(4, parse_rfc3339("9999-12-31T00:00:00Z").value()));
  samples.push_back(stamped(5, kT0 - std::chrono::days(10'000)));  // no lower bound here
  f.pipeline->push(kA, std::move(samples));

  const auto a = f.pipeline->producer(kA);
  REQUIRE(a.has_value());
  CHECK(a->rejected_timestamp == 2);
  CHECK(a->failures_timestamp == 1);
  CHECK(a->rejected_schema == 0);
  REQUIRE(a->last_failure.has_value());
  CHECK(a->last_failure->reason == "timestamp");
  CHECK(a->last_failure->message.find("'sink_test:requests'") != std::string::npos);
  CHECK(a->last_failure->message.find("2026-11-22T11:00:00.000001Z") != std::string::npos);
  const PipelineTotals t = f.pipeline->totals();
  CHECK(t.rejected_timestamp == 2);
  CHECK(t.failures_timestamp == 1);
  CHECK(f.flushed() == std::vector<int64_t>{0, 1, 2, 5});  // the rest, in order
}

TEST_CASE("samples older than max_age are rejected and the window follows the wall clock") {
  Fixture f({.max_age = std::chrono::days(30)});
  f.pipeline->push(kA, {stamped(0, kT0 - std::chrono::days(30)),  // the edge is accepted
                        stamped(1, kT0 - std::chrono::days(30) - std::chrono::microseconds(1)),
                        stamped(2, parse_rfc3339("0001-01-01T00:00:00Z").value())});
  CHECK(f.pipeline->producer(kA)->rejected_timestamp == 2);

  // A day later the first sample is too old too, and one two hours ahead of kT0 is accepted.
  *f.wall = kT0 + std::chrono::days(1);
  f.pipeline->push(kA, {stamped(3, kT0 - std::chrono::days(30)),
                        stamped(4, kT0 + std::chrono::hours(2))});
  const auto a = f.pipeline->producer(kA);
  CHECK(a->rejected_timestamp == 3);
  CHECK(a->failures_timestamp == 2);
  CHECK(f.pipeline->totals().rejected_timestamp == 3);
  CHECK(f.flushed() == std::vector<int64_t>{0, 4});
}

TEST_CASE("samples outside the time window never reach the schema check") {
  Fixture f;
  f.pipeline->push(kA, {stamped(0, kT0 + std::chrono::days(1))});
  CHECK(f.source->calls == 0);  // no schema created for a series that was never stored
  CHECK(f.pipeline->totals().schemas_created == 0);
  CHECK(f.pipeline->producer(kA)->failures_schema == 0);
  CHECK(f.flushed().empty());
}

}  // namespace
}  // namespace tally::collector
