#include "auth/jwt.hh"

#include "auth/encoding.hh"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <stdexcept>

namespace strata::auth {

namespace {

using json = nlohmann::json;

constexpr std::string_view kAlgorithms[] = {"HS256", "RS256", "ES256"};

JwtResult refuse(JwtError e, std::string message) {
    JwtResult r;
    r.error = e;
    r.message = std::move(message);
    return r;
}

std::string json_quoted(std::string_view s) {
    return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// A JSON object, or nullopt (not JSON, not an object, or a name given twice: RFC 7515 4
// allows taking the last one, but two parsers taking different ones is how tokens get
// misread, so there is no choice to make).
std::optional<json> parse_object(std::string_view text) {
    std::vector<std::set<std::string>> names;
    bool duplicate = false;
    json::parser_callback_t seen = [&](int, json::parse_event_t event, json& parsed) {
        switch (event) {
        case json::parse_event_t::object_start:
            names.emplace_back();
            break;
        case json::parse_event_t::object_end:
            if (!names.empty()) names.pop_back();
            break;
        case json::parse_event_t::key:
            if (!names.empty() && parsed.is_string() &&
                !names.back().insert(parsed.get<std::string>()).second)
                duplicate = true;
            break;
        default:
            break;
        }
        return true;
    };
    json j = json::parse(text, seen, false);
    if (duplicate || j.is_discarded() || !j.is_object()) return std::nullopt;
    return j;
}

// NumericDate (RFC 7519 2): any JSON number of seconds; nullopt for other types.
std::optional<std::int64_t> numeric_date(const json& v) {
    constexpr auto max = std::numeric_limits<std::int64_t>::max();
    constexpr auto min = std::numeric_limits<std::int64_t>::min();
    if (v.is_number_unsigned()) {
        auto u = v.get<std::uint64_t>();
        return u > static_cast<std::uint64_t>(max) ? max : static_cast<std::int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<std::int64_t>();
    if (v.is_number_float()) {
        double d = v.get<double>();
        if (std::isnan(d)) return std::nullopt;
        if (d >= 9.2e18) return max;
        if (d <= -9.2e18) return min;
        return static_cast<std::int64_t>(std::floor(d));
    }
    return std::nullopt;
}

std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
    std::int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? std::numeric_limits<std::int64_t>::max()
                     : std::numeric_limits<std::int64_t>::min();
    return r;
}

void add_scope(std::vector<std::string>& scopes, std::string_view s) {
    if (!s.empty() && std::find(scopes.begin(), scopes.end(), s) == scopes.end())
        scopes.emplace_back(s);
}

void add_scopes(std::vector<std::string>& scopes, std::string_view list) {
    while (!list.empty()) {
        auto space = list.find(' ');
        add_scope(scopes, list.substr(0, space));
        if (space == std::string_view::npos) break;
        list.remove_prefix(space + 1);
    }
}

// The registered claims we use, with their types checked; a message when one is wrong.
std::optional<std::string> read_claims(const json& j, JwtClaims& c) {
    auto string_claim = [&](const char* name,
                            std::optional<std::string>& out) -> std::optional<std::string> {
        auto it = j.find(name);
        if (it == j.end()) return std::nullopt;
        if (!it->is_string()) return std::string("\"") + name + "\" is not a string";
        out = it->get<std::string>();
        return std::nullopt;
    };
    if (auto e = string_claim("sub", c.subject)) return e;
    if (auto e = string_claim("iss", c.issuer)) return e;
    if (auto it = j.find("aud"); it != j.end()) {
        if (it->is_string()) {
            c.audiences.push_back(it->get<std::string>());
        } else if (it->is_array()) {
            for (const auto& a : *it) {
                if (!a.is_string()) return "\"aud\" holds a non-string";
                c.audiences.push_back(a.get<std::string>());
            }
        } else {
            return "\"aud\" is neither a string nor an array of strings";
        }
    }
    for (auto [name, out] : {std::pair{"exp", &c.expires_at}, std::pair{"nbf", &c.not_before},
                             std::pair{"iat", &c.issued_at}}) {
        auto it = j.find(name);
        if (it == j.end()) continue;
        *out = numeric_date(*it);
        if (!*out) return std::string("\"") + name + "\" is not a number of seconds";
    }
    if (auto it = j.find("scope"); it != j.end()) {
        if (!it->is_string()) return "\"scope\" is not a string";
        add_scopes(c.scopes, it->get_ref<const std::string&>());
    }
    if (auto it = j.find("scp"); it != j.end()) {
        if (it->is_string()) {
            add_scopes(c.scopes, it->get_ref<const std::string&>());
        } else if (it->is_array()) {
            for (const auto& s : *it) {
                if (!s.is_string()) return "\"scp\" holds a non-string";
                add_scope(c.scopes, s.get_ref<const std::string&>());
            }
        } else {
            return "\"scp\" is neither a string nor an array of strings";
        }
    }
    return std::nullopt;
}

bool contains(const std::vector<std::string>& list, std::string_view s) {
    return std::find(list.begin(), list.end(), s) != list.end();
}

} // namespace

const char* to_string(JwtError e) {
    switch (e) {
    case JwtError::ok:
        return "ok";
    case JwtError::malformed:
        return "malformed";
    case JwtError::alg_not_allowed:
        return "alg_not_allowed";
    case JwtError::crit_unsupported:
        return "crit_unsupported";
    case JwtError::unknown_key:
        return "unknown_key";
    case JwtError::bad_signature:
        return "bad_signature";
    case JwtError::missing_exp:
        return "missing_exp";
    case JwtError::expired:
        return "expired";
    case JwtError::not_yet_valid:
        return "not_yet_valid";
    case JwtError::bad_issuer:
        return "bad_issuer";
    case JwtError::bad_audience:
        return "bad_audience";
    }
    return "unknown";
}

JwtVerifier::JwtVerifier(Jwks keys, JwtPolicy policy)
    : keys_(std::move(keys)), policy_(std::move(policy)) {
    if (policy_.algorithms.empty())
        throw std::invalid_argument("a JWT policy allows at least one algorithm");
    for (const auto& a : policy_.algorithms)
        if (std::find(std::begin(kAlgorithms), std::end(kAlgorithms), a) == std::end(kAlgorithms))
            throw std::invalid_argument("JWT algorithm " + json_quoted(a) +
                                        " is not supported (HS256, RS256, ES256)");
    if (policy_.leeway.count() < 0)
        throw std::invalid_argument("a JWT clock leeway is not negative");
    if (policy_.max_token_bytes == 0)
        throw std::invalid_argument("a JWT size limit is at least 1 byte");
}

JwtResult JwtVerifier::verify(std::string_view token, std::int64_t now) const {
    try {
        if (token.size() > policy_.max_token_bytes)
            return refuse(JwtError::malformed, "token of " + std::to_string(token.size()) +
                                                   " bytes, over the limit of " +
                                                   std::to_string(policy_.max_token_bytes));
        auto dot1 = token.find('.');
        auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
        if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
            return refuse(JwtError::malformed,
                          "not a compact JWS (three base64url parts separated by dots)");
        std::string_view header_b64 = token.substr(0, dot1);
        std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
        std::string_view signature_b64 = token.substr(dot2 + 1);
        std::string_view signing_input = token.substr(0, dot2);

        JwtClaims c;
        auto header_text = from_base64url(header_b64);
        if (!header_text) return refuse(JwtError::malformed, "the header is not base64url");
        auto header = parse_object(*header_text);
        if (!header)
            return refuse(JwtError::malformed,
                          "the header is not a JSON object (or repeats a name)");
        auto alg = header->find("alg");
        if (alg == header->end() || !alg->is_string())
            return refuse(JwtError::malformed, "the header has no \"alg\" string");
        c.algorithm = alg->get<std::string>();
        if (c.algorithm == "none")
            return refuse(JwtError::alg_not_allowed, "unsecured tokens (alg \"none\") are refused");
        if (!contains(policy_.algorithms, c.algorithm))
            return refuse(JwtError::alg_not_allowed,
                          "alg " + json_quoted(c.algorithm) + " is not accepted");
        if (auto crit = header->find("crit"); crit != header->end()) {
            // RFC 7515 4.1.11: a non-empty array of names; we understand no extension.
            if (!crit->is_array() || crit->empty() ||
                !std::all_of(crit->begin(), crit->end(), [](auto& n) { return n.is_string(); }))
                return refuse(JwtError::malformed, "\"crit\" is not a non-empty array of names");
            return refuse(JwtError::crit_unsupported,
                          "critical header parameter " +
                              json_quoted(crit->front().get_ref<const std::string&>()) +
                              " is not understood");
        }
        if (auto kid = header->find("kid"); kid != header->end()) {
            if (!kid->is_string()) return refuse(JwtError::malformed, "\"kid\" is not a string");
            c.kid = kid->get<std::string>();
        }
        auto payload = from_base64url(payload_b64);
        if (!payload) return refuse(JwtError::malformed, "the payload is not base64url");
        auto signature = from_base64url(signature_b64);
        if (!signature) return refuse(JwtError::malformed, "the signature is not base64url");

        // The key: by kid when there is one, and always of the type that alg needs.
        const Jwk* wrong_type = nullptr;
        bool kid_known = false, tried = false, verified = false;
        for (const auto& key : keys_.keys()) {
            if (c.kid && key.kid() != c.kid) continue;
            kid_known = true;
            if (key.algorithm() != c.algorithm) {
                wrong_type = &key;
                continue;
            }
            tried = true;
            if (key.verify(signing_input, *signature)) {
                verified = true;
                break;
            }
        }
        if (!tried) {
            if (c.kid && !kid_known)
                return refuse(JwtError::unknown_key, "no key has kid " + json_quoted(*c.kid));
            if (c.kid && wrong_type)
                return refuse(JwtError::unknown_key, "key " + json_quoted(*c.kid) + " is " +
                                                         to_string(wrong_type->type()) + ", for " +
                                                         std::string(wrong_type->algorithm()) +
                                                         ", not for " + c.algorithm);
            return refuse(JwtError::unknown_key, "no key for " + c.algorithm);
        }
        if (!verified)
            return refuse(JwtError::bad_signature,
                          c.kid ? "the signature does not verify with key " + json_quoted(*c.kid)
                                : "the signature verifies with no " + c.algorithm + " key");

        auto claims = parse_object(*payload);
        if (!claims)
            return refuse(JwtError::malformed,
                          "the claims are not a JSON object (or repeat a name)");
        if (auto bad = read_claims(*claims, c)) return refuse(JwtError::malformed, *bad);

        const std::int64_t leeway = policy_.leeway.count();
        const std::string at =
            " (now " + std::to_string(now) + ", leeway " + std::to_string(leeway) + " s)";
        if (!c.expires_at && policy_.require_exp)
            return refuse(JwtError::missing_exp, "the token has no \"exp\"");
        if (c.expires_at && now >= saturating_add(*c.expires_at, leeway))
            return refuse(JwtError::expired, "expired at " + std::to_string(*c.expires_at) + at);
        if (c.not_before && saturating_add(now, leeway) < *c.not_before)
            return refuse(JwtError::not_yet_valid,
                          "not valid before " + std::to_string(*c.not_before) + at);
        if (c.issued_at && *c.issued_at > saturating_add(now, leeway))
            return refuse(JwtError::not_yet_valid,
                          "issued in the future, at " + std::to_string(*c.issued_at) + at);
        if (!policy_.issuers.empty()) {
            if (!c.issuer) return refuse(JwtError::bad_issuer, "the token has no \"iss\"");
            if (!contains(policy_.issuers, *c.issuer))
                return refuse(JwtError::bad_issuer,
                              "issuer " + json_quoted(*c.issuer) + " is not accepted");
        }
        if (!policy_.audiences.empty() &&
            std::none_of(c.audiences.begin(), c.audiences.end(),
                         [&](const std::string& a) { return contains(policy_.audiences, a); }))
            return refuse(JwtError::bad_audience, c.audiences.empty()
                                                      ? std::string("the token has no \"aud\"")
                                                      : "no accepted audience in \"aud\" " +
                                                            json_quoted(c.audiences.front()) +
                                                            (c.audiences.size() > 1 ? "..." : ""));

        c.header = std::move(*header);
        c.json = std::move(*claims);
        JwtResult r;
        r.error = JwtError::ok;
        r.message = "ok";
        r.claims = std::move(c);
        return r;
    } catch (const nlohmann::json::exception& e) {
        // Not expected (types are checked before every get), but a token must never throw.
        return refuse(JwtError::malformed, std::string("unreadable token: ") + e.what());
    }
}

} // namespace strata::auth
