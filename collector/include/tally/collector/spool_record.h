// One record of a spool or journal file (spool.h; docs/sink.md "Spool and journal format"): a
// 32-byte header and a payload holding some samples (all integers little-endian):
//
//   0  magic "TLYSPOOL"         16  u64 payload length
//   8  u32 format version        24  u64 XXH64 (seed 0) of header bytes 0..23, then the payload
//   12 u32 sample count          32  payload
//
// Format version 2 (written): the payload is the samples in Tally's binary sample encoding
// (append_binary_samples). Version 1 (written before 2026-12-03, still read so that a spool left
// by an older collector replays): the payload is encode_collect_response of one "ok" item.
//
// Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/result.h"
#include "tally/common/sample.h"

namespace tally::collector {

inline constexpr std::size_t kSpoolHeaderBytes = 32;

// One record (header and payload) holding `samples`, in the current format version. Pure CPU:
// callers encode outside their locks.
std::string encode_record(std::span<const Sample> samples);

// Checks the record at the start of `data` (header, length, checksum, payload, sample count,
// every sample valid by validate_sample and storable by check_storable) and appends its samples to `out`. Returns the record's
// size, or an error saying what is wrong; `out` then holds what it held before.
Result<std::size_t> decode_record(std::string_view data, std::vector<Sample>& out);

// The binary sample encoding of format version 2. Every sample: a flags byte (bit 0: the target
// is the previous sample's and is not repeated), the target (unless flagged; name, field count,
// fields), the metric, u32 timeseries version, i64 timestamp (µs since the epoch), the datum.
// A field: name, u8 type (FieldType), value. A datum: u8 alternative of Datum, value. Strings
// and bytes: u32 length, then the bytes; numbers: their little-endian bytes (floats bit for bit,
// NaN payloads too); bools: one byte, 0 or 1. The tags are the alternatives' indexes, so the
// order of Datum's and FieldValue's alternatives is part of the format.
void append_binary_samples(std::string& out, std::span<const Sample> samples);

// Decodes exactly `count` samples filling all of `payload`, appending them to `out`. Checks the
// structure (lengths, tags, bools), not the values: decode_record validates. On an error `out`
// may hold some of the samples.
Status decode_binary_samples(std::string_view payload, uint32_t count, std::vector<Sample>& out);

}  // namespace tally::collector
