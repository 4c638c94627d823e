// decode_collect_response (DESIGN.md §3.1) on arbitrary bytes: no crash, UB or leak, and a
// response that decodes re-encodes to JSON that decodes to the same items, decodes to the same
// items again with a memo primed by that JSON and by itself (CollectDecodeMemo), and is refused
// with "too_many_samples" under a limit of one sample fewer than it holds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "tally/common/collect_json.h"

namespace {

std::size_t count_samples(const std::vector<tally::CollectItem>& items) {
  std::size_t n = 0;
  for (const tally::CollectItem& item : items) n += item.samples.size();
  return n;
}

bool same_items(const std::vector<tally::CollectItem>& a,
                const std::vector<tally::CollectItem>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].error != b[i].error || a[i].samples.size() != b[i].samples.size()) return false;
    for (std::size_t j = 0; j < a[i].samples.size(); ++j) {
      if (!tally::same_sample(a[i].samples[j], b[i].samples[j])) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using tally::fuzz::check;
  auto items = tally::decode_collect_response(tally::fuzz::as_text(data, size));
  if (!items.ok()) {
    check(items.status().code() == "decode", "a malformed response fails with code decode",
          items.error());
    return 0;
  }

  const std::string json = tally::encode_collect_response(*items);
  auto again = tally::decode_collect_response(json);
  check(again.ok(), "an encoded response decodes", again.ok() ? json : again.error() + "\n" + json);
  check(same_items(*items, *again), "decode(encode(items)) == items", json);

  tally::CollectDecodeMemo memo;
  auto primed = tally::decode_collect_response(json, {}, &memo);
  check(primed.ok() && same_items(*items, *primed), "decode(encode(items)) with a memo == items",
        json);
  for (int round = 0; round < 2; ++round) {
    auto remembered = tally::decode_collect_response(tally::fuzz::as_text(data, size), {}, &memo);
    check(remembered.ok() && same_items(*items, *remembered),
          "a response decoded with a memo of the same series == the response decoded without",
          json);
  }

  if (const std::size_t n = count_samples(*items); n > 0) {
    auto limited = tally::decode_collect_response(tally::fuzz::as_text(data, size), {n - 1});
    check(!limited.ok() && limited.status().code() == "too_many_samples",
          "a response over max_samples fails with code too_many_samples",
          limited.ok() ? "" : limited.error());
  }
  return 0;
}
