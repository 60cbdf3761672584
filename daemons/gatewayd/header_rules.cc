#include "header_rules.hh"

#include "text.hh"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace strata::gatewayd {

namespace {

using text::token;

// RFC 9110 token characters: what a field name may hold.
// Visible ASCII, spaces and tabs; no CR, LF or NUL (they would split the header).
bool field_value(std::string_view s) {
    return s.size() <= 4096 && std::all_of(s.begin(), s.end(), [](char c) {
               auto u = static_cast<unsigned char>(c);
               return u == '\t' || (u >= 0x20 && u != 0x7f);
           });
}

bool managed(std::string_view name) {
    static const std::set<std::string, http::CaseLess> names = {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",
        "x-strata-caller",
        "x-request-id",
        "traceparent",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry-after",
        "content-encoding",
        "vary",
        "date",
    };
    if (names.count(name)) return true;
    std::string lower(name);
    for (char& c : lower)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return lower.starts_with("access-control-");
}

std::string_view next_word(std::string_view& s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    auto end = s.find_first_of(" \t");
    std::string_view w = s.substr(0, end);
    s.remove_prefix(end == s.npos ? s.size() : end);
    return w;
}

[[noreturn]] void bad(std::string_view why, std::string_view text) {
    throw std::invalid_argument(std::string(why) + ": \"" + std::string(text) + "\"");
}

} // namespace

std::pair<std::string, HeaderRule> parse_header_rule(std::string_view text) {
    std::string_view rest = text;
    std::string_view set = next_word(rest), side = next_word(rest), op = next_word(rest),
                     name = next_word(rest);
    if (set.empty() || set.size() > 64 || !std::all_of(set.begin(), set.end(), [](char c) {
            return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_' || c == '.';
        }))
        bad("a header rule starts with its set's name (1-64 of A-Z a-z 0-9 - _ .)", text);
    HeaderRule r;
    if (side == "request")
        r.side = HeaderRule::Side::request;
    else if (side == "response")
        r.side = HeaderRule::Side::response;
    else
        bad("a header rule's second word is request or response", text);
    if (op == "add")
        r.op = HeaderRule::Op::add;
    else if (op == "set")
        r.op = HeaderRule::Op::set;
    else if (op == "remove")
        r.op = HeaderRule::Op::remove;
    else if (op == "rename")
        r.op = HeaderRule::Op::rename;
    else
        bad("a header rule's third word is add, set, remove or rename", text);
    if (!token(name)) bad("a header rule names a header (a token)", text);
    if (managed(name)) bad("the gateway manages this header itself", text);
    r.name = name;
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
        rest.remove_prefix(1);
    while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t'))
        rest.remove_suffix(1);
    switch (r.op) {
    case HeaderRule::Op::add:
    case HeaderRule::Op::set:
        if (!field_value(rest)) bad("the value has characters a header cannot hold", text);
        r.value = rest;
        break;
    case HeaderRule::Op::remove:
        if (!rest.empty()) bad("remove takes only the header's name", text);
        break;
    case HeaderRule::Op::rename:
        if (!token(rest)) bad("rename takes the new name (a token)", text);
        if (managed(rest)) bad("the gateway manages the new name itself", text);
        r.value = rest;
        break;
    }
    return {std::string(set), std::move(r)};
}

HeaderRuleSets parse_header_rules(const std::vector<std::string>& items) {
    HeaderRuleSets out;
    for (const auto& item : items) {
        auto [set, rule] = parse_header_rule(item);
        out[set].push_back(std::move(rule));
    }
    return out;
}

void apply_header_rules(const std::vector<HeaderRule>& rules, HeaderRule::Side side,
                        http::Headers& h) {
    for (const auto& r : rules) {
        if (r.side != side) continue;
        switch (r.op) {
        case HeaderRule::Op::add:
            h.emplace(r.name, r.value);
            break;
        case HeaderRule::Op::set:
            h.erase(r.name);
            h.emplace(r.name, r.value);
            break;
        case HeaderRule::Op::remove:
            h.erase(r.name);
            break;
        case HeaderRule::Op::rename: {
            auto [b, e] = h.equal_range(r.name);
            std::vector<std::string> values;
            for (auto it = b; it != e; ++it)
                values.push_back(std::move(it->second));
            h.erase(b, e);
            for (auto& v : values)
                h.emplace(r.value, std::move(v));
            break;
        }
        }
    }
}

void add_vary(http::Headers& h, std::string_view token) {
    auto it = h.find("Vary");
    if (it == h.end()) {
        h.emplace("Vary", std::string(token));
        return;
    }
    if (it->second.find(token) != std::string::npos || it->second == "*") return;
    it->second += ", " + std::string(token);
}

} // namespace strata::gatewayd
