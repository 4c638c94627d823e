// Writing JSON text by hand: the one string escaper every encoder in Tally uses.
#pragma once

#include <string>
#include <string_view>

namespace tally {

// Appends `text` as a JSON string literal, quotes included. Control characters become \u00XX,
// valid UTF-8 passes through, and an invalid byte becomes U+FFFD (one bad byte must not make a
// whole document unreadable).
void append_json_string(std::string& out, std::string_view text);
// The same escaping without the quotes, for a literal assembled from several pieces.
void append_json_escaped(std::string& out, std::string_view text);

}  // namespace tally
