#include "tally/collector/sink.h"

#include <doctest/doctest.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "../../tools/benchmarks/workload.h"  // the bench mix
#include "sink_fakes.h"
#include "support/series.h"
#include "support/test_db.h"
#include "tally/common/collect_json.h"

namespace tally::collector {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::FakeClock;
using test::numbered;
using test::numbers_of;
using test::range;
using test::TempDir;

// Records every batch; can be made unreachable, or to refuse batches holding given samples.
class FakeWriter final : public BatchWriter {
 public:
  Result<WriteStats> write(std::span<const Sample> batch) override {
    std::lock_guard lock(mu);
    ++attempts;
    if (down) return Status::error("server closed the connection unexpectedly", "connection");
    for (const Sample& s : batch) {
      if (refuse.contains(test::number_of(s))) {
        return Status::error("invalid input syntax", "sqlstate_22P02");
      }
    }
    batches.emplace_back(batch.begin(), batch.end());
    WriteStats stats;
    stats.samples_written = batch.size();
    return stats;
  }

  std::vector<std::size_t> sizes() {
    std::lock_guard lock(mu);
    std::vector<std::size_t> out;
    for (const auto& b : batches) out.push_back(b.size());
    return out;
  }

  std::vector<int64_t> written() {
    std::lock_guard lock(mu);
    std::vector<int64_t> out;
    for (const auto& b : batches) {
      for (const Sample& s : b) out.push_back(test::number_of(s));
    }
    return out;
  }

  std::mutex mu;
  bool down = false;
  std::set<int64_t> refuse;
  int attempts = 0;
  std::vector<std::vector<Sample>> batches;
};

struct Fixture {
  TempDir dir;
  FakeClock clock;
  FakeWriter* writer = nullptr;
  std::unique_ptr<Sink> sink;
  SinkOptions options;

  Fixture() {
    options.batch_size = 10;
    options.batch_interval = 1s;
    options.max_queue_samples = 100;
    options.spool_above_samples = 20;
    options.spool = {dir.sub("spool"), 1 << 30};
    options.min_backoff = 100ms;
    options.max_backoff = 800ms;
  }

  Sink& open() {
    auto w = std::make_unique<FakeWriter>();
    writer = w.get();
    auto opened = Sink::open(options, std::move(w), clock);
    REQUIRE_MESSAGE(opened.ok(), opened.error());
    sink = std::move(opened).value();
    return *sink;
  }

  // Runs the writer until nothing is due at the current (fake) time.
  int drain() {
    int steps = 0;
    while (sink->run_once()) REQUIRE(++steps < 10000);
    return steps;
  }

  void set_down(bool down) {
    std::lock_guard lock(writer->mu);
    writer->down = down;
  }
};

// The identity SinkStats documents, for a spool that started empty.
void check_counts_add_up(const SinkStats& s) {
  CHECK(s.samples_queued == s.samples_stored + s.rejected_database + s.dropped_spool_full +
                                s.dropped_spool_error + s.queue_depth + s.in_flight +
                                (s.samples_spooled - s.samples_replayed));
}

TEST_CASE("a full batch is written at once, the rest after batch_interval") {
  Fixture f;
  Sink& sink = f.open();
  CHECK(sink.push(numbered(0, 25)) == 25);
  f.drain();
  CHECK(f.writer->sizes() == std::vector<std::size_t>{10, 10});
  CHECK(sink.stats().queue_depth == 5);

  CHECK(sink.next_due() == f.clock.now() + 1s);
  f.clock.advance(999ms);
  CHECK_FALSE(sink.run_once());
  f.clock.advance(1ms);
  f.drain();
  CHECK(f.writer->sizes() == std::vector<std::size_t>{10, 10, 5});
  CHECK(f.writer->written() == range(0, 25));
  CHECK(sink.stats().samples_stored == 25);
  CHECK(sink.stats().batches_written == 3);
  CHECK(sink.stats().insert_latency.count == 3);  // one observation per committed write
  CHECK(sink.next_due() == Clock::time_point::max());
}

TEST_CASE("batch_interval counts from the oldest queued sample") {
  Fixture f;
  Sink& sink = f.open();
  sink.push(numbered(0, 1));
  f.clock.advance(600ms);
  sink.push(numbered(1, 1));
  CHECK_FALSE(sink.run_once());
  f.clock.advance(400ms);
  CHECK(sink.run_once());
  CHECK(f.writer->sizes() == std::vector<std::size_t>{2});
}

TEST_CASE("group commit: one write takes everything pending, up to batch_size") {
  Fixture f;
  Sink& sink = f.open();
  for (int i = 0; i < 7; ++i) sink.push(numbered(i * 3, 3));  // 21 samples in 7 pushes
  f.drain();
  // Pushes are not split across batches (each is one journal record): a batch is full when the
  // next push does not fit. Two batches straight away, then the last one on time.
  CHECK(f.writer->sizes() == std::vector<std::size_t>{9, 9});
  f.clock.advance(1s);
  f.drain();
  CHECK(f.writer->sizes() == std::vector<std::size_t>{9, 9, 3});
  CHECK(f.writer->written() == range(0, 21));
}

TEST_CASE("push takes what fits in the queue and counts the rest") {
  Fixture f;
  f.options.max_queue_samples = 30;
  Sink& sink = f.open();
  CHECK(sink.push(numbered(0, 25)) == 25);
  CHECK(sink.push(numbered(25, 10)) == 5);
  CHECK(sink.push(numbered(35, 1)) == 0);
  const SinkStats s = sink.stats();
  CHECK(s.samples_queued == 30);
  CHECK(s.dropped_queue_full == 6);
  CHECK(s.queue_depth == 30);
}

TEST_CASE("a push that does not fit waits for the writer to make room instead of dropping") {
  Fixture f;
  f.options.max_queue_samples = 30;
  f.options.max_push_wait = 30s;  // real time; the writer makes room long before
  Sink& sink = f.open();
  REQUIRE(sink.push(numbered(0, 25)) == 25);
  std::size_t accepted = 0;
  std::thread pusher([&] { accepted = sink.push(numbered(25, 10)); });
  REQUIRE(tally::test::eventually([&] { return sink.stats().push_waits == 1; }));
  f.drain();  // takes the full batches: room for the waiting push
  pusher.join();
  CHECK(accepted == 10);
  f.clock.advance(1s);
  f.drain();
  CHECK(f.writer->written() == range(0, 35));
  const SinkStats s = sink.stats();
  CHECK(s.dropped_queue_full == 0);
  check_counts_add_up(s);
}

TEST_CASE("a push waits no longer than max_push_wait, then drops what does not fit") {
  Fixture f;
  f.options.max_queue_samples = 30;
  f.options.max_push_wait = 10ms;  // nobody runs the writer: the wait runs out
  Sink& sink = f.open();
  REQUIRE(sink.push(numbered(0, 25)) == 25);
  CHECK(sink.push(numbered(25, 10)) == 5);
  const SinkStats s = sink.stats();
  CHECK(s.push_waits == 1);
  CHECK(s.dropped_queue_full == 5);
}

TEST_CASE("a push never waits for room an empty queue could not give it, and stop() ends a wait") {
  Fixture f;
  f.options.max_queue_samples = 30;
  f.options.max_push_wait = 1h;  // a wait would hang the test
  Sink& sink = f.open();
  CHECK(sink.push(numbered(0, 40)) == 30);  // more than the queue holds: no wait
  CHECK(sink.stats().push_waits == 0);
  std::size_t accepted = 99;
  std::thread pusher([&] { accepted = sink.push(numbered(40, 10)); });
  REQUIRE(tally::test::eventually([&] { return sink.stats().push_waits == 1; }));
  sink.stop();  // wakes the waiting push: it is queued and written, or counted as dropped
  pusher.join();
  const SinkStats s = sink.stats();
  CHECK(accepted + s.dropped_stopped + (s.dropped_queue_full - 10) == 10);
  CHECK(f.writer->written().size() == 30 + accepted);
}

TEST_CASE("queued_sample_bytes counts the Sample, its timeseries and the heap blocks they own") {
  Sample s = test::numbered_sample(1);  // short names and values: no heap strings
  // The Timeseries with make_shared's control block, and two field vectors of one Field each
  // (72 bytes, a 80-byte block), nothing else.
  const std::size_t series = (16 + sizeof(Timeseries) + 8 + 15) / 16 * 16;
  CHECK(queued_sample_bytes(s) == sizeof(Sample) + series + 2 * 80);
  const std::size_t base = queued_sample_bytes(s);
  // 101 bytes: a 112-byte block; make_timeseries leaves no spare capacity in the vectors.
  tally::test::change_series(s, [](Timeseries& t) {
    t.metric.fields.push_back({"path", std::string(100, 'x')});
  });
  CHECK(queued_sample_bytes(s) == sizeof(Sample) + series + 80 + 160 + 112);
  // 41 bytes: a 64-byte block.
  tally::test::change_series(s, [](Timeseries& t) { t.metric.name = std::string(40, 'm'); });
  CHECK(queued_sample_bytes(s) == sizeof(Sample) + series + 80 + 160 + 112 + 64);
  Sample t = test::numbered_sample(1);
  Histogram<double> h;
  h.bins.resize(20);  // 480 bytes: a 496-byte block
  h.bins.shrink_to_fit();
  t.datum = std::move(h);
  CHECK(queued_sample_bytes(t) == base + 496);
  t.datum = Bytes(1000);  // 1000 bytes: a 1008-byte block
  CHECK(queued_sample_bytes(t) == base + 1008);
  t.datum = std::string(15, 'v');  // fits the string itself
  CHECK(queued_sample_bytes(t) == base);
}

// What the allocator holds: small blocks in the arenas, large ones (a segment's vector) mmapped.
std::size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// The sink's estimate against the allocator's own count, for the bench mix decoded by the real
// decoder in collections of 100 samples. Prints the per-sample figure docs/sink.md quotes.
TEST_CASE("queue_bytes follows the heap the queued samples really take") {
  class Discard final : public BatchWriter {  // the mix has no numbered samples
   public:
    Result<WriteStats> write(std::span<const Sample> batch) override {
      return WriteStats{.samples_written = batch.size()};
    }
  };
  const int kCollections = 100;
  std::vector<CollectItem> items(1);
  items[0].samples = bench::mix_samples(0, 100);
  const std::string body = encode_collect_response(items);
  items.clear();
  REQUIRE(decode_collect_response(body).ok());  // the decoder's per-thread buffers, up front

  Fixture f;
  f.options.batch_size = 5000;
  f.options.max_queue_samples = 1'000'000;
  f.options.max_queue_bytes = std::size_t{1} << 30;
  auto sink = Sink::open(f.options, std::make_unique<Discard>(), f.clock).value();
  const std::size_t before = heap_in_use();
  for (int i = 0; i < kCollections; ++i) {
    auto decoded = decode_collect_response(body);
    REQUIRE(decoded.ok());
    REQUIRE(sink->push(std::move((*decoded)[0].samples)) == 100);
  }
  const std::size_t after = heap_in_use();
  const SinkStats s = sink->stats();
  REQUIRE(s.queue_depth == kCollections * 100);
  const double heap = static_cast<double>(after - before) / static_cast<double>(s.queue_depth);
  const double estimate = static_cast<double>(s.queue_bytes) / static_cast<double>(s.queue_depth);
  MESSAGE("bench mix, queued: " << heap << " heap bytes per sample (mallinfo2), estimated "
                                << estimate);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)  // their own allocators
  CHECK(estimate <= heap * 1.1);
  CHECK(estimate >= heap * 0.9);
#endif
}

TEST_CASE("push takes what fits in max_queue_bytes and counts the rest as queue_full") {
  const std::size_t b = queued_sample_bytes(test::numbered_sample(0));  // the same for all
  Fixture f;
  f.options.max_queue_bytes = 25 * b;
  Sink& sink = f.open();
  CHECK(sink.push(numbered(0, 20)) == 20);
  CHECK(sink.stats().queue_bytes == 20 * b);
  CHECK(sink.push(numbered(20, 10)) == 5);  // the byte bound, far below max_queue_samples
  CHECK(sink.push(numbered(30, 1)) == 0);
  SinkStats s = sink.stats();
  CHECK(s.samples_queued == 25);
  CHECK(s.dropped_queue_full == 6);
  CHECK(s.queue_depth == 25);
  CHECK(s.queue_bytes == 25 * b);

  f.clock.advance(1s);
  f.drain();  // written: the bytes go with the samples
  s = sink.stats();
  CHECK(s.queue_bytes == 0);
  CHECK(s.in_flight_bytes == 0);
  CHECK(f.writer->written() == range(0, 25));
  CHECK(sink.push(numbered(25, 5)) == 5);
  check_counts_add_up(sink.stats());
}

TEST_CASE("nearly_full: above 7/8 of either bound, until the writer drains the queue") {
  const std::size_t b = queued_sample_bytes(test::numbered_sample(0));
  Fixture f;
  f.options.max_queue_samples = 80;  // 7/8: 70 samples
  f.options.max_queue_bytes = 1000 * b;
  Sink& sink = f.open();
  CHECK(sink.push(numbered(0, 70)) == 70);
  CHECK_FALSE(sink.nearly_full());
  CHECK(sink.push(numbered(70, 1)) == 1);
  CHECK(sink.nearly_full());
  f.clock.advance(1s);
  f.drain();
  CHECK_FALSE(sink.nearly_full());

  Fixture g;  // now the bytes: 7/8 of 40 samples' bytes is 35
  g.options.max_queue_samples = 1000;
  g.options.max_queue_bytes = 40 * b;
  Sink& by_bytes = g.open();
  CHECK(by_bytes.push(numbered(0, 35)) == 35);
  CHECK_FALSE(by_bytes.nearly_full());
  CHECK(by_bytes.push(numbered(35, 1)) == 1);
  CHECK(by_bytes.nearly_full());
}

TEST_CASE("while Postgres is down the byte threshold spools the excess too") {
  const std::size_t b = queued_sample_bytes(test::numbered_sample(0));
  Fixture f;
  f.options.max_queue_samples = 1000;
  f.options.spool_above_samples = 900;  // the count is not what binds here
  f.options.max_queue_bytes = 100 * b;
  f.options.spool_above_bytes = 20 * b;
  Sink& sink = f.open();
  f.set_down(true);
  sink.push(numbered(0, 15));
  f.drain();  // one failed attempt: the batch goes back to the queue
  SinkStats s = sink.stats();
  CHECK(s.queue_bytes == 15 * b);
  CHECK(s.samples_spooled == 0);  // what fits under the threshold stays in memory

  sink.push(numbered(15, 30));  // 45 queued in batches of 10, 5, 10, 10, 10
  f.drain();
  s = sink.stats();
  CHECK(s.samples_spooled == 25);
  CHECK(s.queue_depth == 20);
  CHECK(s.queue_bytes == 20 * b);
  CHECK(s.in_flight_bytes == 0);
  check_counts_add_up(s);

  f.set_down(false);
  f.clock.advance(1s);
  f.drain();
  CHECK(f.writer->written() == range(0, 45));
  CHECK(sink.stats().queue_bytes == 0);
}

TEST_CASE("with the disk refusing the spool, the byte bound drops the excess as spool_error") {
  const std::size_t b = queued_sample_bytes(test::numbered_sample(0));
  Fixture f;
  f.options.max_queue_samples = 1000;
  f.options.spool_above_samples = 900;
  f.options.max_queue_bytes = 40 * b;
  Sink& sink = f.open();
  f.set_down(true);
  fs::remove_all(f.options.spool.dir);
  CHECK(sink.push(numbered(0, 40)) == 40);
  f.drain();  // the write fails, spooling fails: everything stays in memory
  CHECK(sink.push(numbered(40, 10)) == 0);
  SinkStats s = sink.stats();
  CHECK(s.dropped_spool_error == 10);
  CHECK(s.dropped_queue_full == 0);
  CHECK(s.queue_bytes == 40 * b);
  check_counts_add_up(s);

  fs::create_directories(f.options.spool.dir);
  f.clock.advance(100ms);
  f.drain();
  s = sink.stats();
  CHECK(s.samples_spooled == 20);  // down to spool_above_bytes (max_queue_bytes / 2)
  CHECK(s.queue_bytes == 20 * b);
  f.set_down(false);
  f.clock.advance(1s);
  f.drain();
  CHECK(f.writer->written() == range(0, 40));
}

TEST_CASE("a refused batch split in halves keeps its bytes counted") {
  const std::size_t b = queued_sample_bytes(test::numbered_sample(0));
  Fixture f;
  Sink& sink = f.open();
  f.writer->refuse = {3};
  sink.push(numbered(0, 10));
  REQUIRE(sink.run_once());  // refused: two halves go back
  CHECK(sink.stats().queue_depth == 10);
  CHECK(sink.stats().queue_bytes == 10 * b);
  f.drain();
  CHECK(sink.stats().queue_bytes == 0);
  CHECK(sink.stats().rejected_database == 1);
}

TEST_CASE("while Postgres is down memory stays bounded: the excess is spooled") {
  Fixture f;
  Sink& sink = f.open();
  f.set_down(true);
  sink.push(numbered(0, 15));
  f.drain();  // one failed attempt: the batch goes back to the queue
  SinkStats s = sink.stats();
  CHECK(s.write_failures == 1);
  CHECK_FALSE(s.database_up);
  CHECK(s.queue_depth == 15);
  CHECK(s.samples_spooled == 0);  // what fits in memory stays there

  sink.push(numbered(15, 30));  // 45 queued in batches of 10, 5, 10, 10, 10; 20 may stay
  f.drain();
  s = sink.stats();
  CHECK(s.samples_spooled == 25);
  CHECK(s.spool_files == 3);
  CHECK(s.queue_depth == 20);
  CHECK(s.write_failures == 1);  // no new attempt before the backoff ran out
  check_counts_add_up(s);
}

TEST_CASE("reconnect attempts back off exponentially up to the cap") {
  Fixture f;
  Sink& sink = f.open();
  f.set_down(true);
  sink.push(numbered(0, 10));
  f.drain();
  CHECK(f.writer->attempts == 1);
  for (auto wait : {100ms, 200ms, 400ms, 800ms, 800ms}) {
    CHECK(sink.next_due() == f.clock.now() + wait);
    f.clock.advance(wait - 1ms);
    f.drain();
    const int before = f.writer->attempts;
    f.clock.advance(1ms);
    f.drain();
    CHECK(f.writer->attempts == before + 1);
  }
  f.set_down(false);
  f.clock.advance(800ms);
  f.drain();
  CHECK(sink.stats().database_up);
  CHECK(f.writer->written() == range(0, 10));
  // A success resets the backoff.
  f.set_down(true);
  sink.push(numbered(10, 10));
  f.drain();
  CHECK(sink.next_due() == f.clock.now() + 100ms);
}

TEST_CASE("when Postgres returns the spool is replayed oldest first, then the queue") {
  Fixture f;
  Sink& sink = f.open();
  f.set_down(true);
  for (int i = 0; i < 8; ++i) {
    sink.push(numbered(i * 10, 10));
    f.drain();
  }
  SinkStats s = sink.stats();
  REQUIRE(s.samples_spooled == 60);
  REQUIRE(s.queue_depth == 20);

  f.set_down(false);
  f.clock.advance(1s);
  f.drain();
  s = sink.stats();
  CHECK(f.writer->written() == range(0, 80));
  CHECK(s.samples_stored == 80);
  CHECK(s.samples_replayed == 60);
  CHECK(s.spool_files == 0);
  CHECK(s.spool_bytes == 0);
  CHECK(s.queue_depth == 0);
  CHECK(fs::is_empty(f.options.spool.dir));
  check_counts_add_up(s);
}

TEST_CASE("samples pushed during a replay wait behind the spool") {
  Fixture f;
  f.options.max_queue_samples = 20;
  f.options.spool_above_samples = 0;  // → max_queue_samples / 2: 10 may stay in memory
  Sink& sink = f.open();
  f.set_down(true);
  sink.push(numbered(0, 20));
  f.drain();
  sink.push(numbered(20, 10));
  f.drain();
  REQUIRE(sink.stats().spool_files == 2);  // 0…9, 10…19; 20…29 in memory

  f.set_down(false);
  f.clock.advance(1s);
  REQUIRE(sink.run_once());  // replays the first file
  sink.push(numbered(30, 10));
  f.drain();  // spools 20…29 behind the rest of the spool, replays it, then writes 30…39
  CHECK(sink.stats().samples_spooled == 30);
  CHECK(f.writer->written() == range(0, 40));
}

TEST_CASE("at spool_max_bytes batches are dropped and counted, and nothing breaks") {
  Fixture f;
  {
    // The size of one spooled batch of 10.
    auto probe = Spool::open({f.dir.sub("probe"), 1 << 30}).value();
    REQUIRE(probe->save(numbered(0, 10)).ok());
    f.options.spool.max_bytes = probe->bytes() * 2 + probe->bytes() / 2;
  }
  Sink& sink = f.open();
  f.set_down(true);
  sink.push(numbered(0, 70));
  f.drain();
  SinkStats s = sink.stats();
  CHECK(s.samples_spooled == 20);
  CHECK(s.dropped_spool_full == 30);
  CHECK(s.queue_depth == 20);
  check_counts_add_up(s);

  f.set_down(false);
  f.clock.advance(1s);
  f.drain();
  f.clock.advance(1s);
  f.drain();
  // The two spooled batches, then the queue: the dropped 20…49 are missing, nothing else.
  std::vector<int64_t> expected = range(0, 20);
  for (int64_t i = 50; i < 70; ++i) expected.push_back(i);
  CHECK(f.writer->written() == expected);
  check_counts_add_up(sink.stats());
}

TEST_CASE("stop() writes what is queued when Postgres is up") {
  Fixture f;
  Sink& sink = f.open();
  sink.push(numbered(0, 15));
  sink.stop();
  CHECK(f.writer->written() == range(0, 15));
  CHECK(sink.stats().queue_depth == 0);
  CHECK(sink.stats().spool_files == 0);
}

TEST_CASE("stop() spools what is queued when Postgres is down") {
  Fixture f;
  Sink& sink = f.open();
  f.set_down(true);
  sink.push(numbered(0, 15));
  f.drain();
  sink.stop();
  const SinkStats s = sink.stats();
  CHECK(s.samples_spooled == 15);
  CHECK(s.spool_files == 2);
  CHECK(s.queue_depth == 0);
  CHECK(f.writer->attempts == 1);  // no reconnect attempt at stop
  check_counts_add_up(s);
}

TEST_CASE("stop() spools the queue behind a spool it could not replay yet") {
  Fixture f;
  Sink& sink = f.open();
  f.set_down(true);
  sink.push(numbered(0, 30));
  f.drain();
  REQUIRE(sink.stats().spool_files == 1);
  f.set_down(false);  // up again, but the writer has not noticed
  sink.stop();
  CHECK(f.writer->written().empty());
  CHECK(sink.stats().spool_files == 3);
  CHECK(sink.stats().samples_spooled == 30);
}

TEST_CASE("pushes after stop() are counted as dropped") {
  Fixture f;
  Sink& sink = f.open();
  sink.stop();
  CHECK(sink.push(numbered(0, 3)) == 0);
  CHECK(sink.stats().dropped_stopped == 3);
  CHECK(sink.stats().samples_queued == 0);
}

TEST_CASE("a restarted sink replays the spool the previous one left") {
  Fixture f;
  {
    Sink& sink = f.open();
    f.set_down(true);
    sink.push(numbered(0, 25));
    f.drain();
    sink.stop();
    REQUIRE(sink.stats().spool_files == 3);
  }
  Sink& sink = f.open();  // a new writer, up
  CHECK(sink.stats().spool_files == 3);
  CHECK(sink.next_due() == f.clock.now());
  f.drain();
  CHECK(f.writer->written() == range(0, 25));
  CHECK(sink.stats().samples_replayed == 25);
  CHECK(fs::is_empty(f.options.spool.dir));
}

TEST_CASE("a corrupt spool file is set aside and counted, the others are replayed") {
  Fixture f;
  {
    Sink& sink = f.open();
    f.set_down(true);
    sink.push(numbered(0, 30));
    sink.stop();
  }
  const std::string second = f.options.spool.dir + "/" + spool_file_name(2);
  {
    std::fstream file(second, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put('#');
  }
  Sink& sink = f.open();
  f.drain();
  std::vector<int64_t> expected = range(0, 10);
  for (int64_t i = 20; i < 30; ++i) expected.push_back(i);
  CHECK(f.writer->written() == expected);
  CHECK(sink.stats().spool_corrupt_files == 1);
  CHECK(fs::exists(second + ".corrupt"));
}

TEST_CASE("a batch Postgres refuses is split until the refused sample is isolated") {
  Fixture f;
  Sink& sink = f.open();
  f.writer->refuse = {13};
  sink.push(numbered(0, 20));
  f.drain();
  const SinkStats s = sink.stats();
  CHECK(s.rejected_database == 1);
  CHECK(s.samples_stored == 19);
  std::vector<int64_t> expected = range(0, 13);
  for (int64_t i = 14; i < 20; ++i) expected.push_back(i);
  CHECK(f.writer->written() == expected);
  check_counts_add_up(s);
}

TEST_CASE("a refused batch from the spool is split in memory") {
  Fixture f;
  {
    Sink& sink = f.open();
    f.set_down(true);
    sink.push(numbered(0, 10));
    sink.stop();
  }
  Sink& sink = f.open();
  f.writer->refuse = {4};
  f.drain();
  CHECK(sink.stats().rejected_database == 1);
  CHECK(sink.stats().samples_stored == 9);
  CHECK(sink.stats().spool_files == 0);
}

TEST_CASE("a spool that cannot be written keeps the samples in memory and retries") {
  Fixture f;
  Sink& sink = f.open();
  f.set_down(true);
  fs::remove_all(f.options.spool.dir);
  sink.push(numbered(0, 30));
  f.drain();
  SinkStats s = sink.stats();
  CHECK(s.samples_spooled == 0);
  CHECK(s.queue_depth == 30);
  fs::create_directories(f.options.spool.dir);
  f.clock.advance(100ms);
  f.drain();
  s = sink.stats();
  CHECK(s.samples_spooled == 10);
  CHECK(s.queue_depth == 20);
  check_counts_add_up(s);
}

TEST_CASE("with its thread the sink writes and stops on its own") {
  TempDir dir;
  SinkOptions options;
  options.batch_size = 100;
  options.batch_interval = 10ms;
  options.spool.dir = dir.sub("spool");
  auto owned = std::make_unique<FakeWriter>();
  FakeWriter* writer = owned.get();
  auto sink = Sink::open(options, std::move(owned)).value();
  sink->start();
  std::vector<std::thread> pushers;
  for (int t = 0; t < 4; ++t) {
    pushers.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) sink->push(numbered((t * 25 + i) * 10, 10));
    });
  }
  for (auto& t : pushers) t.join();
  CHECK(tally::test::eventually([&] { return sink->stats().samples_stored == 1000; }));
  sink->push(numbered(10000, 3));
  sink->stop();
  std::vector<int64_t> written = writer->written();
  std::sort(written.begin(), written.end());
  std::vector<int64_t> expected = range(0, 1000);
  for (int64_t i = 10000; i < 10003; ++i) expected.push_back(i);
  CHECK(written == expected);
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Runs `body` in a child process that then kills itself with SIGKILL, as a crash would.
template <class Body>
void in_killed_child(Body body) {
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    body();
    raise(SIGKILL);
    _exit(1);  // not reached
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
}

TEST_CASE("what push() accepted survives a kill: the next sink replays the journal") {
  Fixture f;
  in_killed_child([&] {
    Sink& sink = f.open();
    sink.push(numbered(0, 25));  // batches of 10, 10, 5
    sink.run_once();             // 0…9 committed: their journal file goes
    sink.push(numbered(25, 3));  // joins 20…24
  });
  CHECK(files_in(f.options.spool.dir) ==
        std::vector<std::string>{journal_file_name(2), journal_file_name(3)});
  Sink& sink = f.open();
  CHECK(sink.stats().spool_files == 2);
  f.drain();
  CHECK(f.writer->written() == range(10, 18));  // all of it, none twice
  CHECK(sink.stats().samples_replayed == 18);
  CHECK(fs::is_empty(f.options.spool.dir));
}

TEST_CASE("killed right after a commit, that one batch is replayed again and no more") {
  // Commits the first batch, then commits the second and dies before the sink hears of it.
  class CommitThenDie final : public BatchWriter {
   public:
    Result<WriteStats> write(std::span<const Sample> batch) override {
      if (++writes == 2) raise(SIGKILL);
      WriteStats s;
      s.samples_written = batch.size();
      return s;
    }
    int writes = 0;
  };
  Fixture f;
  in_killed_child([&] {
    auto sink = Sink::open(f.options, std::make_unique<CommitThenDie>(), f.clock).value();
    sink->push(numbered(0, 25));
    while (sink->run_once()) {
    }
  });
  Sink& sink = f.open();
  f.drain();
  f.clock.advance(1s);
  f.drain();
  // 0…19 were committed by the killed one; 10…19 come again: one batch, batch_size at most.
  CHECK(f.writer->written() == range(10, 15));
  CHECK(sink.stats().samples_replayed == 15);  // what the journal held: 10…24
  CHECK(fs::is_empty(f.options.spool.dir));
}

TEST_CASE("a journal that cannot be written leaves the samples in memory, counted, and recovers") {
  Fixture f;
  Sink& sink = f.open();
  fs::remove_all(f.options.spool.dir);  // every journal write fails (as on a full disk)
  sink.push(numbered(0, 5));
  CHECK(sink.stats().samples_unjournaled == 5);
  CHECK(sink.stats().samples_queued == 5);
  fs::create_directories(f.options.spool.dir);
  f.clock.advance(1s);
  f.drain();
  CHECK(f.writer->written() == range(0, 5));

  sink.push(numbered(5, 5));  // a new segment, and the journal works again
  CHECK(sink.stats().samples_unjournaled == 5);
  CHECK(files_in(f.options.spool.dir).size() == 1);
  f.clock.advance(1s);
  f.drain();
  CHECK(f.writer->written() == range(0, 10));
  CHECK(fs::is_empty(f.options.spool.dir));
  check_counts_add_up(sink.stats());
}

TEST_CASE("while the disk refuses the spool, what memory cannot hold is dropped as spool_error") {
  Fixture f;
  Sink& sink = f.open();
  f.set_down(true);
  fs::remove_all(f.options.spool.dir);
  CHECK(sink.push(numbered(0, 100)) == 100);
  f.drain();  // the write fails, spooling fails: everything stays in memory
  CHECK(sink.stats().queue_depth == 100);
  CHECK(sink.push(numbered(100, 10)) == 0);
  SinkStats s = sink.stats();
  CHECK(s.dropped_spool_error == 10);
  CHECK(s.dropped_queue_full == 0);
  check_counts_add_up(s);

  fs::create_directories(f.options.spool.dir);  // space is back
  f.clock.advance(100ms);
  f.drain();
  s = sink.stats();
  CHECK(s.samples_spooled == 80);
  CHECK(s.queue_depth == 20);
  check_counts_add_up(s);
  f.set_down(false);
  f.clock.advance(1s);
  f.drain();
  CHECK(f.writer->written() == range(0, 100));
}

}  // namespace
}  // namespace tally::collector
