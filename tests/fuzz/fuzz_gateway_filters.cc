// libFuzzer target: the gateway's filter and transform syntax and the request headers they
// read, on arbitrary text. Line 1: a CIDR list; line 2: a header rule; line 3: a CORS
// policy; line 4: an address to test; line 5: an Origin; line 6: Access-Control-Request-
// Headers; line 7: Accept-Encoding; the rest: a body to compress. Parsers must accept or
// throw std::invalid_argument; matching, preflights and compression must never fail.
#include "address_list.hh"
#include "compression.hh"
#include "cors.hh"
#include "header_rules.hh"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto line = [&text]() {
        auto nl = text.find('\n');
        std::string_view l = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        return l;
    };
    std::string_view cidrs = line(), rule = line(), cors = line(), address = line(),
                     origin = line(), asked = line(), accept = line();
    gatewayd::AddressFilter filter;
    try {
        filter.allow = gatewayd::AddressList::parse(cidrs);
    } catch (const std::invalid_argument&) {
    }
    (void)filter.admits(address);
    http::Headers headers{{"X-A", "1"}, {"x-b", "2"}};
    try {
        auto [set, r] = gatewayd::parse_header_rule(rule);
        gatewayd::apply_header_rules({r}, r.side, headers);
    } catch (const std::invalid_argument&) {
    }
    try {
        auto [name, policy] = gatewayd::parse_cors_policy(cors);
        (void)policy.preflight(origin, "GET", asked);
        policy.decorate(headers, origin);
    } catch (const std::invalid_argument&) {
    }
    http::Response r;
    r.headers.emplace("Content-Type", "application/json");
    r.body = std::string(text);
    (void)gatewayd::compress_response(r, "GET", accept, 0);
    return 0;
}
