// The spool's binary sample encoding (collector/spool_record.h) on arbitrary bytes: the first
// four bytes are the sample count, the rest the payload. No crash, UB, leak or huge allocation;
// what decodes re-encodes to a payload that decodes to the same samples; and a record made of
// it by encode_record decodes when its samples are valid and storable, or is refused.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "tally/collector/copy_writer.h"
#include "tally/collector/spool_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using tally::fuzz::check;
  if (size < 4) return 0;
  uint32_t count;
  std::memcpy(&count, data, 4);
  const std::string_view payload = tally::fuzz::as_text(data + 4, size - 4);

  std::vector<tally::Sample> samples;
  if (!tally::collector::decode_binary_samples(payload, count, samples).ok()) return 0;
  check(samples.size() == count, "a payload that decodes holds the count it was given");

  std::string again;
  tally::collector::append_binary_samples(again, samples);
  std::vector<tally::Sample> back;
  check(tally::collector::decode_binary_samples(again, count, back).ok(),
        "an encoded payload decodes");
  check(back.size() == samples.size(), "decode(encode(samples)) holds as many samples");
  for (std::size_t i = 0; i < samples.size(); ++i) {
    check(tally::same_sample(samples[i], back[i]), "decode(encode(samples)) == samples");
  }

  bool valid = true;
  for (const tally::Sample& s : samples) {
    valid = valid && tally::validate_sample(s).ok() && tally::collector::check_storable(s).ok();
  }
  std::vector<tally::Sample> from_record;
  auto n = tally::collector::decode_record(tally::collector::encode_record(samples), from_record);
  check(n.ok() == valid, "a record decodes exactly when its samples are valid and storable",
        n.ok() ? "" : n.error());
  return 0;
}
