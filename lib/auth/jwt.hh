// JWT verification (RFC 7519) for tokens from an outside identity provider, with the keys of a
// JWK Set (jwks.hh): what strata-gatewayd checks on "Authorization: Bearer ..." when it
// accepts such tokens besides its own session tokens (session_token.hh).
//
// Follows RFC 8725 (JWT best current practices):
//   - compact JWS only (three parts); strict base64url (no padding, canonical); the header
//     and the claims are JSON objects without duplicate names; at most max_token_bytes;
//   - "alg" must be in the policy (HS256, RS256, ES256; "none" never) and is the only
//     algorithm of the key used: a key's type decides its algorithm (an RSA public key can
//     never serve as an HMAC secret);
//   - "crit" is refused (no extension is understood); "jwk", "jku", "x5u", "x5c" in the
//     header are ignored: keys come only from the configured set;
//   - with "kid", only keys of that kid; without, every key of the alg's type is tried;
//   - exp (required unless the policy says otherwise), nbf and iat checked with a leeway;
//     iss and aud checked against the policy's lists when they are not empty.
#pragma once

#include "auth/jwks.hh"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::auth {

struct JwtPolicy {
    std::vector<std::string> algorithms{"HS256", "RS256", "ES256"};
    std::vector<std::string> issuers;   // accepted "iss" values (exact match); empty: any
    std::vector<std::string> audiences; // "aud" must hold one of them; empty: not checked
    std::chrono::seconds leeway{60};    // clock skew allowed for exp, nbf and iat
    bool require_exp = true;
    std::size_t max_token_bytes = 8192;
};

// Why a token was refused; to_string gives the stable short code for answers and logs.
enum class JwtError {
    ok,
    malformed,        // not a compact JWS, bad base64url, not JSON objects, bad claim types
    alg_not_allowed,  // "alg" missing from the policy, unknown, or "none"
    crit_unsupported, // "crit" names an extension (none is understood)
    unknown_key,      // no key of that kid, or none that can verify that alg
    bad_signature,    // the signature does not verify
    missing_exp,      // no "exp" while the policy requires one
    expired,          // now >= exp + leeway
    not_yet_valid,    // now + leeway < nbf, or iat > now + leeway
    bad_issuer,       // "iss" missing or not accepted
    bad_audience,     // no accepted audience in "aud"
};
const char* to_string(JwtError e);

struct JwtClaims {
    // Registered claims, as given (any characters: escape before putting them in a header).
    std::optional<std::string> subject; // sub
    std::optional<std::string> issuer;  // iss
    std::vector<std::string> audiences; // aud: one string or an array of them
    // "scope" (space-separated, RFC 8693 4.2) and "scp" (a string or an array), in order,
    // without duplicates.
    std::vector<std::string> scopes;
    // Unix seconds (fractions dropped, saturated to the int64 range).
    std::optional<std::int64_t> expires_at, not_before, issued_at;
    std::string algorithm;          // the header's alg, which verified
    std::optional<std::string> kid; // the header's kid
    nlohmann::json header;          // the whole JOSE header
    nlohmann::json json;            // the whole claims set
};

struct JwtResult {
    JwtError error = JwtError::malformed;
    std::string message; // for logs: what failed, with the values involved
    JwtClaims claims;    // filled only when ok()

    bool ok() const noexcept { return error == JwtError::ok; }
    const char* reason() const noexcept { return to_string(error); }
};

class JwtVerifier {
public:
    // Throws std::invalid_argument when the policy names no algorithm, one other than HS256,
    // RS256 and ES256 (so never "none"), a negative leeway or a zero size limit.
    JwtVerifier(Jwks keys, JwtPolicy policy);

    // Checks `token` (without "Bearer ") at `now_unix`. Every refusal is a result, never an
    // exception (only std::bad_alloc can escape). One thread at a time.
    JwtResult verify(std::string_view token, std::int64_t now_unix) const;

    const Jwks& keys() const noexcept { return keys_; }
    const JwtPolicy& policy() const noexcept { return policy_; }

private:
    Jwks keys_;
    JwtPolicy policy_;
};

} // namespace strata::auth
