#include "tally/collector/spool.h"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "sink_fakes.h"

namespace tally::collector {
namespace {

namespace fs = std::filesystem;
using test::numbered;
using test::numbers_of;
using test::range;
using test::TempDir;

std::unique_ptr<Spool> open_spool(const std::string& dir, uint64_t max_bytes = 1 << 30) {
  auto spool = Spool::open({dir, max_bytes});
  REQUIRE_MESSAGE(spool.ok(), spool.error());
  return std::move(spool).value();
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

SpoolBatch must_read_oldest(Spool& spool) {
  auto batch = spool.read_oldest();
  REQUIRE_MESSAGE(batch.ok(), batch.error());
  REQUIRE(batch->has_value());
  return std::move(**batch);
}

TEST_CASE("a spooled batch reads back sample for sample") {
  TempDir tmp;
  auto spool = open_spool(tmp.sub("spool"));
  std::vector<Sample> samples = numbered(0, 50);
  samples[3].datum = std::string("tab\t \"quoted\" é");
  samples[4].datum = Cumulative<double>{test::kT0 - std::chrono::hours(1), 2.5};
  auto seq = spool->save(samples);
  REQUIRE(seq.ok());
  CHECK(*seq == 1);

  SpoolBatch batch = must_read_oldest(*spool);
  CHECK(batch.sequence == 1);
  REQUIRE(batch.samples.size() == samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CHECK_MESSAGE(same_sample(batch.samples[i], samples[i]), "sample ", i);
  }
}

TEST_CASE("batch files are named by sequence and bytes() counts them") {
  TempDir tmp;
  auto spool = open_spool(tmp.sub("spool"));
  REQUIRE(spool->save(numbered(0, 3)).ok());
  REQUIRE(spool->save(numbered(3, 3)).ok());
  CHECK(files_in(spool->dir()) ==
        std::vector<std::string>{"00000000000000000001.batch", "00000000000000000002.batch"});
  CHECK(spool->files() == 2);
  CHECK(spool->bytes() == fs::file_size(spool->dir() + "/00000000000000000001.batch") +
                              fs::file_size(spool->dir() + "/00000000000000000002.batch"));
}

TEST_CASE("batches are read oldest first and removed once done") {
  TempDir tmp;
  auto spool = open_spool(tmp.sub("spool"));
  for (int i = 0; i < 3; ++i) REQUIRE(spool->save(numbered(i * 10, 10)).ok());
  for (int i = 0; i < 3; ++i) {
    SpoolBatch batch = must_read_oldest(*spool);
    CHECK(numbers_of(batch.samples) == range(i * 10, 10));
    REQUIRE(spool->remove(batch.sequence).ok());
  }
  CHECK(spool->empty());
  CHECK(spool->bytes() == 0);
  CHECK(files_in(spool->dir()).empty());
  auto none = spool->read_oldest();
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
}

TEST_CASE("save refuses a batch that would pass max_bytes and writes nothing") {
  TempDir tmp;
  auto probe = open_spool(tmp.sub("probe"));
  REQUIRE(probe->save(numbered(0, 10)).ok());
  const uint64_t one = probe->bytes();

  auto spool = open_spool(tmp.sub("spool"), 2 * one + one / 2);
  REQUIRE(spool->save(numbered(0, 10)).ok());
  REQUIRE(spool->save(numbered(10, 10)).ok());
  auto third = spool->save(numbered(20, 10));
  REQUIRE_FALSE(third.ok());
  CHECK(third.status().code() == "spool_full");
  CHECK(spool->files() == 2);
  CHECK(files_in(spool->dir()).size() == 2);
  CHECK(spool->bytes() == fs::file_size(spool->dir() + "/00000000000000000001.batch") +
                              fs::file_size(spool->dir() + "/00000000000000000002.batch"));
}

// Damages the only batch in a fresh spool in some way; the read must skip it, move it aside and
// count it, and go on to the next good batch.
void check_damage_detected(const std::function<void(const std::string& path)>& damage) {
  TempDir tmp;
  auto spool = open_spool(tmp.sub("spool"));
  REQUIRE(spool->save(numbered(0, 20)).ok());
  REQUIRE(spool->save(numbered(20, 5)).ok());
  const std::string first = spool->dir() + "/00000000000000000001.batch";
  damage(first);
  const uint64_t second_size = fs::file_size(spool->dir() + "/00000000000000000002.batch");

  SpoolBatch batch = must_read_oldest(*spool);
  CHECK(batch.sequence == 2);
  CHECK(numbers_of(batch.samples) == range(20, 5));
  CHECK(spool->corrupt_files() == 1);
  CHECK(spool->files() == 1);
  // A .corrupt file still counts towards max_bytes.
  CHECK(spool->bytes() == second_size + fs::file_size(first + ".corrupt"));
  CHECK(fs::exists(first + ".corrupt"));
  CHECK_FALSE(fs::exists(first));
}

TEST_CASE("a flipped payload byte is detected and the file set aside") {
  check_damage_detected([](const std::string& path) {
    std::string data = read_all(path);
    data[kSpoolHeaderBytes + data.size() / 3] ^= 0x01;
    write_all(path, data);
  });
}

TEST_CASE("a flipped header byte is detected") {
  check_damage_detected([](const std::string& path) {
    std::string data = read_all(path);
    data[12] ^= 0x01;  // the sample count
    write_all(path, data);
  });
}

TEST_CASE("a truncated file is detected") {
  check_damage_detected([](const std::string& path) {
    std::string data = read_all(path);
    write_all(path, data.substr(0, data.size() - 7));
  });
}

TEST_CASE("a file shorter than the header is detected") {
  check_damage_detected([](const std::string& path) { write_all(path, "TLYSP"); });
}

TEST_CASE("an empty file is detected") {
  check_damage_detected([](const std::string& path) { write_all(path, ""); });
}

TEST_CASE("a file that vanished is set aside like a corrupt one") {
  check_damage_detected([](const std::string& path) {
    fs::remove(path);
    write_all(path + ".corrupt", "");  // what the check expects to find afterwards
  });
}

TEST_CASE("opening deletes leftover .tmp files and keeps the batches") {
  TempDir tmp;
  const std::string dir = tmp.sub("spool");
  {
    auto spool = open_spool(dir);
    REQUIRE(spool->save(numbered(0, 4)).ok());
  }
  write_all(dir + "/00000000000000000002.batch.tmp", "half a batch");
  auto spool = open_spool(dir);
  CHECK(files_in(dir) == std::vector<std::string>{"00000000000000000001.batch"});
  CHECK(spool->files() == 1);
  CHECK(spool->bytes() == fs::file_size(dir + "/00000000000000000001.batch"));
  // The sequence still moves past the deleted .tmp: a number is never used twice.
  CHECK(spool->next_sequence() == 3);
  CHECK(numbers_of(must_read_oldest(*spool).samples) == range(0, 4));
}

TEST_CASE("the sequence continues across a reopen, past removed and corrupt batches") {
  TempDir tmp;
  const std::string dir = tmp.sub("spool");
  {
    auto spool = open_spool(dir);
    for (int i = 0; i < 3; ++i) REQUIRE(spool->save(numbered(i, 1)).ok());
    REQUIRE(spool->remove(1).ok());
  }
  {
    auto spool = open_spool(dir);
    CHECK(spool->files() == 2);
    auto seq = spool->save(numbered(3, 1));
    REQUIRE(seq.ok());
    CHECK(*seq == 4);
    // Corrupt the newest; after it is set aside its number is still not reused.
    write_all(dir + "/00000000000000000004.batch", "garbage garbage garbage garbage garbage");
    for (int i = 0; i < 2; ++i) REQUIRE(spool->remove(must_read_oldest(*spool).sequence).ok());
    auto none = spool->read_oldest();
    REQUIRE(none.ok());
    CHECK_FALSE(none->has_value());
    CHECK(spool->corrupt_files() == 1);
  }
  auto spool = open_spool(dir);
  CHECK(spool->empty());
  auto seq = spool->save(numbered(5, 1));
  REQUIRE(seq.ok());
  CHECK(*seq == 5);
}

TEST_CASE("unknown files in the spool directory are left alone") {
  TempDir tmp;
  const std::string dir = tmp.sub("spool");
  fs::create_directories(dir);
  write_all(dir + "/README", "hello");
  auto spool = open_spool(dir);
  CHECK(spool->empty());
  CHECK(fs::exists(dir + "/README"));
}

TEST_CASE("a write error is a status, leaves nothing behind and does not crash") {
  TempDir tmp;
  const std::string dir = tmp.sub("spool");
  auto spool = open_spool(dir);
  REQUIRE(spool->save(numbered(0, 2)).ok());
  fs::remove_all(dir);  // the directory is gone under the spool (as root, chmod would not stop us)
  auto seq = spool->save(numbered(2, 2));
  REQUIRE_FALSE(seq.ok());
  CHECK(seq.status().code() == "spool_io");
  CHECK(spool->files() == 1);
}

TEST_CASE("opening fails with a status when the directory cannot be created") {
  TempDir tmp;
  write_all(tmp.sub("file"), "x");
  auto spool = Spool::open({tmp.sub("file") + "/spool", 1 << 20});
  REQUIRE_FALSE(spool.ok());
  CHECK(spool.status().code() == "spool_io");
}

std::shared_ptr<JournalSegment> journal_with(Spool& spool,
                                             const std::vector<std::vector<Sample>>& pushes) {
  auto segment = spool.open_segment();
  REQUIRE(segment->complete());
  for (const auto& p : pushes) {
    segment->begin_append();
    const Status s = segment->append(encode_record(p));
    REQUIRE_MESSAGE(s.ok(), s.message());
  }
  return segment;
}

TEST_CASE("journal segments an earlier run left are replayed whole, in sequence order") {
  TempDir tmp;
  const std::string dir = tmp.sub("spool");
  {
    auto spool = open_spool(dir);
    REQUIRE(spool->save(numbered(0, 2)).ok());                        // 1.batch
    auto a = journal_with(*spool, {numbered(2, 3), numbered(5, 4)});  // 2.journal
    auto b = journal_with(*spool, {numbered(9, 1)});                  // 3.journal
    // The process dies here: nothing released, nothing closed cleanly.
  }
  CHECK(files_in(dir) == std::vector<std::string>{"00000000000000000001.batch",
                                                  "00000000000000000002.journal",
                                                  "00000000000000000003.journal"});
  auto spool = open_spool(dir);
  CHECK(spool->files() == 3);
  CHECK(spool->next_sequence() == 4);
  std::vector<int64_t> replayed;
  for (uint64_t expected = 1; expected <= 3; ++expected) {
    SpoolBatch batch = must_read_oldest(*spool);
    CHECK(batch.sequence == expected);
    for (int64_t n : numbers_of(batch.samples)) replayed.push_back(n);
    REQUIRE(spool->remove(batch.sequence).ok());
  }
  CHECK(replayed == range(0, 10));
  CHECK(files_in(dir).empty());
  CHECK(spool->bytes() == 0);
}

TEST_CASE("a torn last journal record is ignored and the whole records replayed") {
  TempDir tmp;
  const std::string dir = tmp.sub("spool");
  {
    auto spool = open_spool(dir);
    auto segment = journal_with(*spool, {numbered(0, 3), numbered(3, 3)});
    const std::string torn = encode_record(numbered(6, 3));
    std::ofstream(segment->path(), std::ios::binary | std::ios::app)
        << torn.substr(0, torn.size() / 2);
  }
  auto spool = open_spool(dir);
  SpoolBatch batch = must_read_oldest(*spool);
  CHECK(numbers_of(batch.samples) == range(0, 6));
  CHECK(spool->corrupt_files() == 0);
}

TEST_CASE("save renames a complete journal segment to a batch without writing it again") {
  TempDir tmp;
  auto spool = open_spool(tmp.sub("spool"));
  auto segment = journal_with(*spool, {numbered(0, 4), numbered(4, 4)});
  segment->seal();  // its file is closed now: the rename opens it again to sync it
  const uint64_t size = fs::file_size(segment->path());
  auto saved = spool->save(numbered(0, 8), segment);
  REQUIRE_MESSAGE(saved.ok(), saved.error());
  CHECK(*saved == segment->sequence());
  CHECK(files_in(spool->dir()) == std::vector<std::string>{spool_file_name(*saved)});
  CHECK(spool->bytes() == size);
  CHECK(numbers_of(must_read_oldest(*spool).samples) == range(0, 8));
}

TEST_CASE("save writes what the journal could not hold as a batch in the segment's place") {
  TempDir tmp;
  const std::string dir = tmp.sub("spool");
  auto spool = open_spool(dir);
  fs::remove_all(dir);
  Status error;
  auto segment = spool->open_segment(&error);  // the directory is gone: no journal file
  CHECK(error.code() == "spool_io");
  CHECK_FALSE(segment->complete());
  segment->begin_append();
  CHECK_FALSE(segment->append(encode_record(numbered(0, 3))).ok());
  fs::create_directories(dir);
  auto saved = spool->save(numbered(0, 3), segment);
  REQUIRE_MESSAGE(saved.ok(), saved.error());
  CHECK(*saved == segment->sequence());
  CHECK(numbers_of(must_read_oldest(*spool).samples) == range(0, 3));
}

TEST_CASE("a journal file goes once every piece of its batch is released") {
  TempDir tmp;
  auto spool = open_spool(tmp.sub("spool"));
  auto segment = journal_with(*spool, {numbered(0, 4)});
  segment->add_piece();  // split in two
  spool->release(segment);
  CHECK(fs::exists(segment->path()));
  spool->release(segment);
  CHECK_FALSE(fs::exists(segment->path()));
  CHECK(files_in(spool->dir()).empty());
}

TEST_CASE("an append that lands after its batch was committed is not a journal failure") {
  TempDir tmp;
  auto spool = open_spool(tmp.sub("spool"));
  auto segment = spool->open_segment();
  segment->begin_append();  // a push placed its samples, then the writer committed them
  spool->release(segment);
  CHECK_FALSE(fs::exists(segment->path()));
  const Status late = segment->append(encode_record(numbered(0, 2)));
  CHECK_MESSAGE(late.ok(), late.message());
  CHECK(segment->complete());
  CHECK(files_in(spool->dir()).empty());
}

TEST_CASE("a journal segment whose batch file exists is deleted at open") {
  TempDir tmp;
  const std::string dir = tmp.sub("spool");
  {
    auto spool = open_spool(dir);
    auto segment = journal_with(*spool, {numbered(0, 4)});
    // As if the process died between writing the batch and deleting the journal file.
    write_all(dir + "/" + spool_file_name(segment->sequence()), encode_record(numbered(0, 4)));
  }
  auto spool = open_spool(dir);
  CHECK(files_in(dir) == std::vector<std::string>{spool_file_name(1)});
  CHECK(spool->files() == 1);
  CHECK(numbers_of(must_read_oldest(*spool).samples) == range(0, 4));
}

TEST_CASE("corrupt files count towards max_bytes and the oldest make room for new batches") {
  TempDir tmp;
  const std::string dir = tmp.sub("spool");
  const uint64_t one = encode_record(numbered(50, 10)).size();  // the largest of them
  const auto dir_bytes = [&] {
    uint64_t n = 0;
    for (const auto& e : fs::directory_iterator(dir)) n += e.file_size();
    return n;
  };
  {
    auto spool = open_spool(dir);
    for (int i = 0; i < 3; ++i) REQUIRE(spool->save(numbered(i * 10, 10)).ok());
  }
  for (int seq : {1, 2}) {
    fs::rename(dir + "/" + spool_file_name(seq), dir + "/" + spool_file_name(seq) + ".corrupt");
  }
  auto spool = open_spool(dir, 3 * one + one / 2);
  CHECK(spool->bytes() == dir_bytes());  // one batch and two corrupt files
  CHECK(spool->files() == 1);
  REQUIRE(spool->save(numbered(30, 10)).ok());  // the oldest corrupt file makes room
  CHECK_FALSE(fs::exists(dir + "/" + spool_file_name(1) + ".corrupt"));
  CHECK(fs::exists(dir + "/" + spool_file_name(2) + ".corrupt"));
  CHECK(spool->bytes() == dir_bytes());
  REQUIRE(spool->save(numbered(40, 10)).ok());
  CHECK_FALSE(fs::exists(dir + "/" + spool_file_name(2) + ".corrupt"));
  auto full = spool->save(numbered(50, 10));  // only live batches left: refused
  CHECK(full.status().code() == "spool_full");
  CHECK(spool->files() == 3);
}

// In a child process: RLIMIT_FSIZE lets a journal append write only part of its record.
TEST_CASE("a journal append the disk refuses cuts its partial record off and later ones work") {
  TempDir tmp;
  const std::string dir = tmp.sub("spool");
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto spool = Spool::open({dir, 1 << 30});
    if (!spool.ok()) _exit(10);
    auto segment = (*spool)->open_segment();
    segment->begin_append();
    if (!segment->append(encode_record(numbered(0, 3))).ok()) _exit(11);
    const off_t size = static_cast<off_t>(fs::file_size(segment->path()));
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{};
    getrlimit(RLIMIT_FSIZE, &limit);
    const rlimit saved = limit;
    limit.rlim_cur = static_cast<rlim_t>(size + 100);
    setrlimit(RLIMIT_FSIZE, &limit);
    segment->begin_append();
    const Status failed = segment->append(encode_record(numbered(3, 50)));
    if (failed.ok() || failed.message().find(segment->path()) == std::string::npos) _exit(12);
    if (segment->complete()) _exit(13);
    if (static_cast<off_t>(fs::file_size(segment->path())) != size) _exit(14);
    setrlimit(RLIMIT_FSIZE, &saved);
    segment->begin_append();
    if (!segment->append(encode_record(numbered(53, 2))).ok()) _exit(15);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  auto spool = open_spool(dir);
  std::vector<int64_t> expected = range(0, 3);
  expected.push_back(53);
  expected.push_back(54);
  CHECK(numbers_of(must_read_oldest(*spool).samples) == expected);
}

}  // namespace
}  // namespace tally::collector
