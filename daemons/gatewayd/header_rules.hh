// Header transforms of a route (route option headers=SET[,SET]), from [proxy] header_rules:
//
//   header_rules = ["secure response set Strict-Transport-Security max-age=63072000",
//                   "secure response remove Server",
//                   "legacy request rename X-Client X-Strata-Client",
//                   "legacy request add X-Api-Version 1"]
//
// Each item is "SET request|response add|set|remove|rename HEADER [VALUE | NEW-NAME]": add
// appends a field, set replaces every field of that name, remove drops them, rename moves
// their values to NEW-NAME. VALUE is the rest of the item, spaces included. Rules of a set
// apply in the order written; a route's sets in the order it names them. Request rules run
// on what the client sent, before the gateway adds its own headers; response rules on
// every answer of the route, the gateway's own errors included.
// The headers the gateway itself manages (framing, hop-by-hop, identity, request id, trace
// context, forwarding, CORS and rate-limit headers) cannot be touched: the config is refused.
#pragma once

#include "http/message.hh"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace strata::gatewayd {

struct HeaderRule {
    enum class Side { request, response } side = Side::request;
    enum class Op { add, set, remove, rename } op = Op::add;
    std::string name;
    std::string value; // add/set: the value; rename: the new name
};

// A named set: its rules in order.
using HeaderRuleSets = std::map<std::string, std::vector<HeaderRule>>;

// Parses one item; returns the set's name. Throws std::invalid_argument.
std::pair<std::string, HeaderRule> parse_header_rule(std::string_view text);
HeaderRuleSets parse_header_rules(const std::vector<std::string>& items);

// The rules of `side` among `rules`, applied to `headers` in order.
void apply_header_rules(const std::vector<HeaderRule>& rules, HeaderRule::Side side,
                        http::Headers& headers);

// Adds a token to the answer's Vary, in one field (some clients keep only the last).
void add_vary(http::Headers& headers, std::string_view token);

} // namespace strata::gatewayd
