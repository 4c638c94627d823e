// A Beast body for responses read into a std::string, for the two HTTP clients (http_request()
// and the collector's scraper). Unlike http::string_body, whose reader resizes the string before
// copying into it, zero-filling every byte it then overwrites (2.5 % of a scraping collector's
// CPU; for a 6 MB body, a memset and its page faults on every request), the reader appends what
// arrives. The parser's body_limit is checked against Content-Length before init() reserves it.
// Includes Beast: for the .cpp files that already compile it, not for public interfaces.
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/optional.hpp>
#include <cstdint>
#include <string>

namespace tally {

struct AppendBody {
  using value_type = std::string;
  static std::uint64_t size(const value_type& body) { return body.size(); }

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(boost::beast::http::header<isRequest, Fields>&, value_type& body) : body_(body) {}
    void init(const boost::optional<std::uint64_t>& length, boost::beast::error_code& ec) {
      if (length) body_.reserve(static_cast<std::size_t>(*length));
      ec = {};
    }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      std::size_t n = 0;
      for (const auto b : boost::beast::buffers_range_ref(buffers)) {
        body_.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      ec = {};
      return n;
    }
    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

}  // namespace tally
