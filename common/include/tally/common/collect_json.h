// The collect response of DESIGN.md §3.1 (oximeter-compatible JSON): decode and encode.
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/result.h"
#include "tally/common/sample.h"

namespace tally {

// An "err" item: {"status": "err", "info": {"type": "...", "content": "..."}}.
struct ProducerError {
  std::string type;
  std::string content;
  bool operator==(const ProducerError&) const = default;
};

// One item of the response list: the samples of one producer, or its error.
struct CollectItem {
  std::vector<Sample> samples;
  std::optional<ProducerError> error;  // set: an "err" item (samples are then empty)
};

struct DecodeLimits {
  std::size_t max_samples = std::numeric_limits<std::size_t>::max();
};

// Decodes a whole response. Every sample is validated (validate_sample). On malformed input
// nothing is returned but an error naming the JSON path and the problem, e.g.
// "[0].info[3].measurement.datum: unknown type 'f65'" (code "decode"), or code
// "too_many_samples" when the response holds more than limits.max_samples samples.
Result<std::vector<CollectItem>> decode_collect_response(std::string_view json,
                                                         const DecodeLimits& limits = {});

// Encodes items as the JSON of §3.1. Floats that are NaN/±Inf become "NaN"/"Infinity"/"-Infinity".
std::string encode_collect_response(std::span<const CollectItem> items);
// Appends one sample's JSON object (an element of an "info" list).
void append_sample_json(std::string& out, const Sample& s);

}  // namespace tally
