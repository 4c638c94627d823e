// decode_collect_response (DESIGN.md §3.1) on arbitrary bytes: no crash, UB or leak, and
// - its two decoders (collect_json_decode_paths.h) agree: what decode_canonical accepts,
//   decode_general decodes to the same items and leaves the same memo entries (with a fresh memo
//   and with one primed by the input), and a refusal leaves the memo as it was;
// - the canonical decoder accepts the encoder's output of a response that decodes, unless that
//   output holds what it leaves to the general decoder by design (an escape, an err item, a
//   missing datum);
// - a response that decodes re-encodes to JSON that decodes to the same items, decodes to the
//   same items again with a memo primed by that JSON and by itself (CollectDecodeMemo), and is
//   refused with "too_many_samples" under a limit of one sample fewer than it holds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "collect_json_decode_paths.h"
#include "fuzz_support.h"
#include "tally/common/collect_json.h"

namespace {

using tally::CollectDecodeMemo;
using tally::fuzz::check;

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

bool reused(const CollectDecodeMemo::Entry& e, std::size_t i, const CollectDecodeMemo& before) {
  return i < before.last.size() && e.series == before.last[i].series;
}

// The entries two decodes started from `before` left: the same hashes, sizes and version, and the
// same timeseries, taken from `before` by both or made anew (equal) by both.
bool same_entries(const std::vector<CollectDecodeMemo::Entry>& a,
                  const std::vector<CollectDecodeMemo::Entry>& b, const CollectDecodeMemo& before) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].target != b[i].target || a[i].metric != b[i].metric || a[i].version != b[i].version ||
        a[i].metric_size != b[i].metric_size || !a[i].series || !b[i].series ||
        reused(a[i], i, before) != reused(b[i], i, before)) {
      return false;
    }
    const tally::Timeseries& x = *a[i].series;
    const tally::Timeseries& y = *b[i].series;
    if (x.target != y.target || x.metric != y.metric || x.version != y.version || x.key != y.key) {
      return false;
    }
  }
  return true;
}

bool same_last(const CollectDecodeMemo& memo, const CollectDecodeMemo& before) {
  if (!memo.next.empty() || memo.last.size() != before.last.size()) return false;
  for (std::size_t i = 0; i < memo.last.size(); ++i) {
    const CollectDecodeMemo::Entry& e = memo.last[i];
    const CollectDecodeMemo::Entry& f = before.last[i];
    if (e.series != f.series || e.target != f.target || e.metric != f.metric ||
        e.version != f.version || e.metric_size != f.metric_size) {
      return false;
    }
  }
  return true;
}

// Runs both decoders on `json` from copies of `before` (a memo between decodes) and checks that
// they agree.
void check_decoders_agree(std::string_view json, const CollectDecodeMemo& before) {
  CollectDecodeMemo canonical_memo = before;
  const auto canonical = tally::collect_json::decode_canonical(json, {}, canonical_memo);
  if (!canonical) {
    check(same_last(canonical_memo, before),
          "a refusal by decode_canonical leaves the memo as it was");
    return;
  }
  CollectDecodeMemo general_memo = before;
  const auto general = tally::collect_json::decode_general(json, {}, general_memo);
  check(general.ok(), "what decode_canonical accepts, decode_general decodes",
        general.ok() ? std::string_view() : std::string_view(general.error()));
  check(same_items(*canonical, *general),
        "decode_canonical and decode_general give the same items");
  check(same_entries(canonical_memo.next, general_memo.next, before),
        "decode_canonical and decode_general leave the same memo entries");
}

// Whether decode_canonical must accept this encoder output: it leaves escapes, err items and
// missing datums to the general decoder.
bool canonical_must_accept(std::string_view json) {
  return json.find('\\') == std::string_view::npos &&
         json.find(R"("status":"err")") == std::string_view::npos &&
         json.find(R"("type":"missing")") == std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input = tally::fuzz::as_text(data, size);
  check_decoders_agree(input, {});

  auto items = tally::decode_collect_response(input);
  if (!items.ok()) {
    check(items.status().code() == "decode", "a malformed response fails with code decode",
          items.error());
    return 0;
  }

  const std::string json = tally::encode_collect_response(*items);
  auto again = tally::decode_collect_response(json);
  check(again.ok(), "an encoded response decodes", again.ok() ? json : again.error() + "\n" + json);
  check(same_items(*items, *again), "decode(encode(items)) == items", json);
  if (canonical_must_accept(json)) {
    CollectDecodeMemo memo;
    const auto canonical = tally::collect_json::decode_canonical(json, {}, memo);
    check(canonical.has_value(), "decode_canonical accepts the encoder's output", json);
    check(same_items(*items, *canonical), "decode_canonical(encode(items)) == items", json);
  }

  CollectDecodeMemo memo;
  auto primed = tally::decode_collect_response(json, {}, &memo);
  check(primed.ok() && same_items(*items, *primed), "decode(encode(items)) with a memo == items",
        json);
  check_decoders_agree(input, memo);  // a memo of the same series, written by the encoder
  for (int round = 0; round < 2; ++round) {
    auto remembered = tally::decode_collect_response(input, {}, &memo);
    check(remembered.ok() && same_items(*items, *remembered),
          "a response decoded with a memo of the same series == the response decoded without",
          json);
  }
  check_decoders_agree(input, memo);  // a memo primed by the input itself: every series reused

  if (const std::size_t n = count_samples(*items); n > 0) {
    auto limited = tally::decode_collect_response(input, {n - 1});
    check(!limited.ok() && limited.status().code() == "too_many_samples",
          "a response over max_samples fails with code too_many_samples",
          limited.ok() ? "" : limited.error());
    CollectDecodeMemo none;
    check(!tally::collect_json::decode_canonical(input, {n - 1}, none),
          "decode_canonical refuses a response over max_samples");
  }
  return 0;
}
