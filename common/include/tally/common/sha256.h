// SHA-256 (FIPS 180-4), for API tokens: the configs hold the digest, never the token.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tally {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::string_view data);
std::string to_hex(const Sha256Digest& digest);
// Parses 64 hex digits; false if `hex` is not that.
bool parse_sha256_hex(std::string_view hex, Sha256Digest& out);
// Compares in time independent of where the digests differ.
bool constant_time_equal(const Sha256Digest& a, const Sha256Digest& b);

}  // namespace tally
