// The timeseries key (DESIGN.md §2): the signed 64-bit XXH64 (seed 0) of the canonical text
// "name@version" followed, for each field sorted by name, by "|field=type:value".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tally/common/field.h"
#include "tally/common/sample.h"

namespace tally {

std::string canonical_series_text(std::string_view timeseries_name, uint32_t version,
                                  const Fields& target_fields, const Fields& metric_fields);
int64_t timeseries_key(std::string_view timeseries_name, uint32_t version,
                       const Fields& target_fields, const Fields& metric_fields);
int64_t timeseries_key(const Sample& s);

}  // namespace tally
