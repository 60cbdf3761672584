// libFuzzer target for lib/auth JWT verification and JWK Sets. The first byte, modulo 3:
//   0: the rest is a token for a verifier holding the RFC 7515 appendix A keys (HS256, RS256,
//      ES256). Any result, never a crash; an accepted token is accepted again, and refused
//      once its last character is changed.
//   1: the rest is "HEADER\nCLAIMS", signed here with the HMAC key, to reach the claim checks
//      (the signature is right, so it may never be the reason when the header says HS256);
//      the token with one byte changed (position and value from the input) is refused.
//   2: the rest is "JWKS\nTOKEN": the set is parsed (an error or a set with keys) and, when
//      it loads, verifies the token.
#include "auth/encoding.hh"
#include "auth/jwks.hh"
#include "auth/jwt.hh"

#include <cstdint>
#include <cstdlib>
#include <sodium.h>
#include <string>

using namespace strata::auth;
using json = nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1300819000; // before the RFC examples' exp

const std::string kHmacK = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hc"
                           "gUuTwjAzZr1Z9CAow";

const char* keys_json() {
    return R"({"keys":[
  {"kty":"oct","kid":"hmac","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"},
  {"kty":"RSA","kid":"rsa","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"},
  {"kty":"EC","kid":"ec","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
]})";
}

const JwtVerifier& verifier() {
    static const JwtVerifier v(Jwks::parse(keys_json()), JwtPolicy{});
    return v;
}

const std::string& hmac_key() {
    static const std::string k = *from_base64url(kHmacK);
    return k;
}

std::string hs256(const std::string& input) {
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(hmac_key().data()),
                                hmac_key().size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(input.data()),
                                  input.size());
    crypto_auth_hmacsha256_final(&st, mac);
    return std::string(reinterpret_cast<char*>(mac), sizeof mac);
}

void verify_token(std::string_view token) {
    JwtResult r = verifier().verify(token, kNow);
    if (!r.ok()) return;
    if (!r.claims.json.is_object() || !r.claims.header.is_object()) std::abort();
    if (!verifier().verify(token, kNow).ok()) std::abort();
    std::string changed(token);
    changed.back() = changed.back() == 'A' ? 'B' : 'A';
    if (verifier().verify(changed, kNow).ok()) std::abort();
}

void signed_claims(std::string_view rest) {
    auto nl = rest.find('\n');
    std::string header(rest.substr(0, nl));
    std::string payload(nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1));
    std::uint8_t where = payload.size() > 1 ? payload[0] : 0,
                 what = payload.size() > 1 ? payload[1] : 0;
    std::string input = to_base64url(header) + "." + to_base64url(payload);
    std::string token = input + "." + to_base64url(hs256(input));
    JwtResult r = verifier().verify(token, kNow);
    // Only the oct key verifies HS256, and it made this signature.
    json h = json::parse(header, nullptr, false);
    if (r.error == JwtError::bad_signature && h.is_object() && h.value("alg", json()) == "HS256")
        std::abort();
    if (r.ok()) {
        if (r.claims.algorithm != "HS256") std::abort();
        if (r.claims.json != json::parse(payload, nullptr, false)) std::abort();
        if (r.claims.expires_at && *r.claims.expires_at <= kNow - 60) std::abort();
    }
    std::string changed = token;
    std::size_t at = where % changed.size();
    if (static_cast<std::uint8_t>(changed[at]) == what) return;
    changed[at] = static_cast<char>(what);
    if (verifier().verify(changed, kNow).ok()) std::abort();
}

void key_set(std::string_view rest) {
    auto nl = rest.find('\n');
    std::string_view text = rest.substr(0, nl);
    std::string_view token =
        nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    try {
        Jwks set = Jwks::parse(text);
        if (set.keys().empty()) std::abort();
        JwtVerifier v(std::move(set), JwtPolicy{});
        v.verify(token, kNow);
    } catch (const std::invalid_argument&) {
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (data[0] % 3) {
    case 0:
        verify_token(rest);
        break;
    case 1:
        signed_claims(rest);
        break;
    case 2:
        key_set(rest);
        break;
    }
    return 0;
}
