// Unit tests of lib/auth JWT verification: the RFC 7515 appendix A examples (HS256, RS256,
// ES256) as known answers, tokens signed here (the RFC keys and freshly generated ones) for
// the claim checks and key selection, every refusal reason, algorithm confusion, and JWK Set
// files that are broken in each way.
#include "auth/encoding.hh"
#include "auth/jwks.hh"
#include "auth/jwt.hh"

#include <criterion/criterion.h>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <memory>
#include <sodium.h>
#include <unistd.h>

using namespace strata::auth;
using json = nlohmann::json;
using E = JwtError;

namespace {

// RFC 7515 A.1: the HMAC key, A.2: the RSA key, A.3: the P-256 key (private parts for
// signing here; the verifier only ever sees the public ones).
const std::string kHmacK = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hc"
                           "gUuTwjAzZr1Z9CAow";
const std::string kRsaN =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0B"
    "m4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5"
    "z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7"
    "aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const std::string kRsaE = "AQAB";
const std::string kRsaD =
    "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2N"
    "XOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M"
    "_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x"
    "_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
const std::string kRsaP =
    "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py"
    "5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
const std::string kRsaQ =
    "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQ"
    "eZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
const std::string kEcX = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const std::string kEcY = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const std::string kEcD = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";

const std::string kA1 = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
                        "bS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const std::string kA2 =
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cn"
    "VlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_"
    "O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvk"
    "SjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh"
    "6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const std::string kA3 = "eyJhbGciOiJFUzI1NiJ9."
                        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
                        "bS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTj"
                        "Dxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
constexpr std::int64_t kRfcExp = 1300819380;

constexpr std::int64_t kNow = 1800000000;

json oct_jwk(const std::string& k, const char* kid = nullptr) {
    json j = {{"kty", "oct"}, {"k", k}};
    if (kid) j["kid"] = kid;
    return j;
}
json rsa_jwk(const char* kid = nullptr) {
    json j = {{"kty", "RSA"}, {"n", kRsaN}, {"e", kRsaE}};
    if (kid) j["kid"] = kid;
    return j;
}
json ec_jwk(const char* kid = nullptr) {
    json j = {{"kty", "EC"}, {"crv", "P-256"}, {"x", kEcX}, {"y", kEcY}};
    if (kid) j["kid"] = kid;
    return j;
}
std::string set_of(std::initializer_list<json> keys) {
    json list = json::array();
    for (const auto& k : keys)
        list.push_back(k);
    return json{{"keys", list}}.dump();
}
// The three RFC keys with kids (those of RFC 7515 A.6 for RSA and EC).
std::string all_keys() {
    return set_of({oct_jwk(kHmacK, "hmac-1"), rsa_jwk("2010-12-29"),
                   ec_jwk("e9bc097a-ce51-4036-9562-d2ade882db0d")});
}
JwtVerifier verifier(JwtPolicy policy = {}, const std::string& jwks = all_keys()) {
    return JwtVerifier(Jwks::parse(jwks), std::move(policy));
}

std::string b64d(std::string_view s) {
    auto bytes = from_base64url(s);
    cr_assert(bytes.has_value(), "test vector is not base64url: %.*s", int(s.size()), s.data());
    return *bytes;
}
gnutls_datum_t datum(const std::string& s) {
    return {reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())),
            static_cast<unsigned>(s.size())};
}
std::string from_datum(const gnutls_datum_t& d) {
    return std::string(reinterpret_cast<const char*>(d.data), d.size);
}
// A big-endian integer as exactly `n` bytes (GnuTLS may add a sign byte or drop zeros).
std::string fixed(std::string v, std::size_t n) {
    while (v.size() > n && v.front() == '\0')
        v.erase(0, 1);
    cr_assert(v.size() <= n);
    return std::string(n - v.size(), '\0') + v;
}

struct Privkey {
    gnutls_privkey_t key = nullptr;
    Privkey() { cr_assert(gnutls_privkey_init(&key) >= 0); }
    ~Privkey() { gnutls_privkey_deinit(key); }
    Privkey(const Privkey&) = delete;
    Privkey& operator=(const Privkey&) = delete;
};

// What signs test tokens: an HMAC secret (raw bytes), or a GnuTLS private key.
struct Signer {
    std::string alg;
    std::string secret;
    std::shared_ptr<Privkey> priv;
};

Signer hmac_signer(std::string secret = b64d(kHmacK)) {
    return {"HS256", std::move(secret), nullptr};
}
Signer rsa_signer() {
    auto p = std::make_shared<Privkey>();
    std::string n = b64d(kRsaN), e = b64d(kRsaE), d = b64d(kRsaD), pp = b64d(kRsaP),
                q = b64d(kRsaQ);
    gnutls_datum_t dn = datum(n), de = datum(e), dd = datum(d), dp = datum(pp), dq = datum(q);
    int rc =
        gnutls_privkey_import_rsa_raw(p->key, &dn, &de, &dd, &dp, &dq, nullptr, nullptr, nullptr);
    cr_assert(rc >= 0, "import RSA: %s", gnutls_strerror(rc));
    return {"RS256", "", p};
}
Signer ec_signer() {
    auto p = std::make_shared<Privkey>();
    std::string x = b64d(kEcX), y = b64d(kEcY), d = b64d(kEcD);
    gnutls_datum_t dx = datum(x), dy = datum(y), dd = datum(d);
    int rc = gnutls_privkey_import_ecc_raw(p->key, GNUTLS_ECC_CURVE_SECP256R1, &dx, &dy, &dd);
    cr_assert(rc >= 0, "import EC: %s", gnutls_strerror(rc));
    return {"ES256", "", p};
}

std::string signature(const Signer& s, const std::string& input) {
    if (s.alg == "HS256") {
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(s.secret.data()),
                                    s.secret.size());
        crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(input.data()),
                                      input.size());
        crypto_auth_hmacsha256_final(&st, mac);
        return std::string(reinterpret_cast<char*>(mac), sizeof mac);
    }
    gnutls_datum_t data = datum(input), sig{};
    int rc = gnutls_privkey_sign_data(s.priv->key, GNUTLS_DIG_SHA256, 0, &data, &sig);
    cr_assert(rc >= 0, "sign: %s", gnutls_strerror(rc));
    std::string out = from_datum(sig);
    if (s.alg == "ES256") {
        // GnuTLS gives DER; JWS wants r || s, 32 bytes each.
        gnutls_datum_t r{}, ss{};
        cr_assert(gnutls_decode_rs_value(&sig, &r, &ss) >= 0);
        out = fixed(from_datum(r), 32) + fixed(from_datum(ss), 32);
        gnutls_free(r.data);
        gnutls_free(ss.data);
    }
    gnutls_free(sig.data);
    return out;
}

// A compact JWS of exactly these header and payload bytes.
std::string sign_raw(const Signer& s, const std::string& header, const std::string& payload) {
    std::string input = to_base64url(header) + "." + to_base64url(payload);
    return input + "." + to_base64url(signature(s, input));
}
std::string sign(const Signer& s, json claims, const char* kid = nullptr, json header = {}) {
    if (!header.contains("alg")) header["alg"] = s.alg;
    if (kid) header["kid"] = kid;
    return sign_raw(s, header.dump(), claims.dump());
}

json claims(std::int64_t now = kNow) {
    return {{"iss", "https://idp.example"},
            {"sub", "user-42"},
            {"aud", "strata"},
            {"iat", now},
            {"exp", now + 300},
            {"scope", "files:read files:write"}};
}

std::string fmt() {
    return "";
}
std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* format, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, format);
    std::vsnprintf(buf, sizeof buf, format, ap);
    va_end(ap);
    return buf;
}

void check_result(int line, const JwtResult& r, E code, const std::string& what) {
    cr_expect(r.error == code, "line %d: %s: expected %s, got %s (%s)", line, what.c_str(),
              to_string(code), r.reason(), r.message.c_str());
}
// The line of the check and an optional printf-style note go into the failure message.
#define expect_refused(result, code, ...) check_result(__LINE__, (result), (code), fmt(__VA_ARGS__))
#define expect_ok(result, ...) check_result(__LINE__, (result), E::ok, fmt(__VA_ARGS__))

std::string jwks_error(const std::string& text) {
    try {
        Jwks::parse(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

bool mentions(const std::string& haystack, const char* needle) {
    return haystack.find(needle) != std::string::npos;
}

} // namespace

Test(jwt_rfc7515, appendix_a_known_answers) {
    const std::int64_t before = kRfcExp - 1000;
    struct Case {
        const std::string& token;
        std::string jwks;
        const char* alg;
    } cases[] = {{kA1, set_of({oct_jwk(kHmacK)}), "HS256"},
                 {kA2, set_of({rsa_jwk()}), "RS256"},
                 {kA3, set_of({ec_jwk()}), "ES256"}};
    for (const auto& c : cases) {
        for (const std::string& jwks : {c.jwks, all_keys()}) {
            auto v = verifier({}, jwks);
            JwtResult r = v.verify(c.token, before);
            expect_ok(r, "%s", c.alg);
            cr_expect_eq(r.claims.algorithm, c.alg);
            cr_expect(r.claims.issuer == std::optional<std::string>("joe"));
            cr_expect(r.claims.expires_at == std::optional<std::int64_t>(kRfcExp));
            cr_expect(r.claims.json.value("http://example.com/is_root", false));
            cr_expect(!r.claims.subject && r.claims.audiences.empty() && r.claims.scopes.empty());
            expect_refused(v.verify(c.token, kRfcExp + 60), E::expired, "%s", c.alg);
            expect_ok(v.verify(c.token, kRfcExp + 59), "%s: 60 s of leeway", c.alg);
        }
    }
    // Our signers reproduce the deterministic examples: the test tokens below are real.
    std::string a1_input = kA1.substr(0, kA1.rfind('.'));
    std::string a2_input = kA2.substr(0, kA2.rfind('.'));
    cr_expect_eq(to_base64url(signature(hmac_signer(), a1_input)), kA1.substr(kA1.rfind('.') + 1));
    cr_expect_eq(to_base64url(signature(rsa_signer(), a2_input)), kA2.substr(kA2.rfind('.') + 1));
}

Test(jwt_rfc7515, any_change_is_refused) {
    auto v = verifier();
    for (const std::string& token : {kA1, kA2, kA3}) {
        for (std::size_t i = 0; i < token.size(); ++i) {
            std::string t = token;
            t[i] = t[i] == 'A' ? 'B' : 'A';
            cr_expect(!v.verify(t, kRfcExp - 1000).ok(), "changing byte %zu still verified", i);
        }
        // The payload swapped for another, validly encoded one.
        std::string tampered = token;
        std::size_t d1 = token.find('.'), d2 = token.rfind('.');
        tampered.replace(d1 + 1, d2 - d1 - 1,
                         to_base64url(R"({"iss":"joe","exp":1300819380,"admin":true})"));
        expect_refused(v.verify(tampered, kRfcExp - 1000), E::bad_signature);
        // The signature cut short, or lengthened.
        std::string sig = *from_base64url(token.substr(d2 + 1));
        expect_refused(v.verify(token.substr(0, d2 + 1) + to_base64url(sig.substr(1)), 0),
                       E::bad_signature);
        expect_refused(v.verify(token.substr(0, d2 + 1) + to_base64url(sig + "x"), 0),
                       E::bad_signature);
    }
}

Test(jwt, signed_here_with_each_algorithm) {
    auto v = verifier();
    struct {
        Signer s;
        const char* kid;
    } signers[] = {{hmac_signer(), "hmac-1"},
                   {rsa_signer(), "2010-12-29"},
                   {ec_signer(), "e9bc097a-ce51-4036-9562-d2ade882db0d"}};
    for (const auto& [s, kid] : signers) {
        for (const char* k : {kid, static_cast<const char*>(nullptr)}) {
            JwtResult r = v.verify(sign(s, claims(), k), kNow);
            expect_ok(r, "%s kid %s", s.alg.c_str(), k ? k : "(none)");
            cr_expect_eq(r.claims.algorithm, s.alg);
            cr_expect(r.claims.kid == (k ? std::optional<std::string>(k) : std::nullopt));
            cr_expect(r.claims.subject == std::optional<std::string>("user-42"));
            cr_expect(r.claims.issuer == std::optional<std::string>("https://idp.example"));
            cr_expect(r.claims.audiences == std::vector<std::string>{"strata"});
            cr_expect((r.claims.scopes == std::vector<std::string>{"files:read", "files:write"}));
            cr_expect(r.claims.expires_at == std::optional<std::int64_t>(kNow + 300));
            cr_expect(r.claims.issued_at == std::optional<std::int64_t>(kNow));
            cr_expect(!r.claims.not_before);
            cr_expect_eq(r.claims.json, claims());
            cr_expect_eq(r.claims.header.value("alg", ""), s.alg);
        }
    }
    // ES256 signatures are random: many of them, so that r and s with leading zero bytes
    // and with the top bit set (a DER sign byte) all go through the r || s conversion.
    Signer es = ec_signer();
    for (int i = 0; i < 300; ++i) {
        json c = claims();
        c["jti"] = i;
        expect_ok(v.verify(sign(es, c), kNow), "ES256 token %d", i);
    }
}

Test(jwt, freshly_generated_keys) {
    Signer rsa{"RS256", "", std::make_shared<Privkey>()};
    Signer ec{"ES256", "", std::make_shared<Privkey>()};
    cr_assert(gnutls_privkey_generate(rsa.priv->key, GNUTLS_PK_RSA, 2048, 0) >= 0);
    cr_assert(gnutls_privkey_generate(ec.priv->key, GNUTLS_PK_ECDSA,
                                      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) >= 0);
    gnutls_pubkey_t rpub, epub;
    cr_assert(gnutls_pubkey_init(&rpub) >= 0 && gnutls_pubkey_init(&epub) >= 0);
    cr_assert(gnutls_pubkey_import_privkey(rpub, rsa.priv->key, 0, 0) >= 0);
    cr_assert(gnutls_pubkey_import_privkey(epub, ec.priv->key, 0, 0) >= 0);
    gnutls_datum_t m{}, e{}, x{}, y{};
    gnutls_ecc_curve_t curve;
    cr_assert(gnutls_pubkey_export_rsa_raw2(rpub, &m, &e, GNUTLS_EXPORT_FLAG_NO_LZ) >= 0);
    cr_assert(gnutls_pubkey_export_ecc_raw2(epub, &curve, &x, &y, GNUTLS_EXPORT_FLAG_NO_LZ) >= 0);
    json keys = {{{"kty", "RSA"},
                  {"kid", "new-rsa"},
                  {"use", "sig"},
                  {"alg", "RS256"},
                  {"n", to_base64url(from_datum(m))},
                  {"e", to_base64url(from_datum(e))}},
                 {{"kty", "EC"},
                  {"kid", "new-ec"},
                  {"crv", "P-256"},
                  {"x", to_base64url(fixed(from_datum(x), 32))},
                  {"y", to_base64url(fixed(from_datum(y), 32))}}};
    for (auto* d : {&m, &e, &x, &y})
        gnutls_free(d->data);
    gnutls_pubkey_deinit(rpub);
    gnutls_pubkey_deinit(epub);
    auto v = verifier({}, json{{"keys", keys}}.dump());
    for (int i = 0; i < 20; ++i) {
        json c = claims();
        c["jti"] = i;
        expect_ok(v.verify(sign(rsa, c, "new-rsa"), kNow), "RS256 %d", i);
        expect_ok(v.verify(sign(ec, c, "new-ec"), kNow), "ES256 %d", i);
        expect_ok(v.verify(sign(ec, c), kNow), "ES256 without kid %d", i);
    }
    // The RFC keys are not in this set: their tokens are not ours.
    expect_refused(v.verify(sign(rsa_signer(), claims()), kNow), E::bad_signature);
    expect_refused(v.verify(sign(ec_signer(), claims(), "new-ec"), kNow), E::bad_signature);
    expect_refused(v.verify(sign(hmac_signer(), claims()), kNow), E::unknown_key);
}

Test(jwt, times_and_leeway) {
    auto v = verifier();
    Signer s = hmac_signer();
    std::string t = sign(s, claims());
    expect_ok(v.verify(t, kNow + 359), "exp + 59 s of leeway");
    expect_refused(v.verify(t, kNow + 360), E::expired);
    expect_refused(v.verify(t, kNow - 61), E::not_yet_valid, "iat 61 s in the future");
    expect_ok(v.verify(t, kNow - 60));
    json c = claims();
    c["nbf"] = kNow + 100;
    std::string with_nbf = sign(s, c);
    expect_refused(v.verify(with_nbf, kNow + 39), E::not_yet_valid);
    expect_ok(v.verify(with_nbf, kNow + 40));
    // Without leeway, exp is exclusive and nbf inclusive (RFC 7519 4.1.4, 4.1.5).
    auto strict = verifier({.leeway = std::chrono::seconds(0)});
    expect_refused(strict.verify(t, kNow + 300), E::expired);
    expect_ok(strict.verify(t, kNow + 299));
    expect_refused(strict.verify(with_nbf, kNow + 99), E::not_yet_valid);
    expect_ok(strict.verify(with_nbf, kNow + 100));
    // exp is required unless the policy says otherwise.
    c = claims();
    c.erase("exp");
    std::string no_exp = sign(s, c);
    expect_refused(v.verify(no_exp, kNow), E::missing_exp);
    expect_ok(verifier({.require_exp = false}).verify(no_exp, kNow + 100000000));
    // NumericDate may have a fraction, and far-off values saturate instead of wrapping.
    c = claims();
    c["exp"] = kNow + 0.5;
    c["iat"] = kNow - 0.25;
    JwtResult r = strict.verify(sign(s, c), kNow - 1);
    expect_ok(r);
    cr_expect(r.claims.expires_at == std::optional<std::int64_t>(kNow));
    cr_expect(r.claims.issued_at == std::optional<std::int64_t>(kNow - 1));
    c["exp"] = 1e300;
    expect_ok(v.verify(sign(s, c), kNow));
    c["exp"] = std::numeric_limits<std::uint64_t>::max();
    expect_ok(v.verify(sign(s, c), std::numeric_limits<std::int64_t>::max() - 1));
    c["exp"] = -1e300;
    expect_refused(v.verify(sign(s, c), kNow), E::expired);
    expect_refused(v.verify(t, std::numeric_limits<std::int64_t>::max()), E::expired);
    c = claims();
    c["nbf"] = std::numeric_limits<std::int64_t>::max();
    expect_refused(v.verify(sign(s, c), kNow), E::not_yet_valid);
    expect_refused(v.verify(sign_raw(s, R"({"alg":"HS256"})", R"({"exp":1e400})"), kNow),
                   E::malformed, "a number beyond a double");
    for (json bad : {json("1800000300"), json(nullptr), json(true), json::array({1})}) {
        c = claims();
        c["exp"] = bad;
        expect_refused(v.verify(sign(s, c), kNow), E::malformed, "exp %s", bad.dump().c_str());
        c = claims();
        c["nbf"] = bad;
        expect_refused(v.verify(sign(s, c), kNow), E::malformed, "nbf %s", bad.dump().c_str());
    }
}

Test(jwt, issuer_and_audience) {
    Signer s = hmac_signer();
    auto v = verifier({.issuers = {"https://other.example", "https://idp.example"},
                       .audiences = {"strata", "strata-admin"}});
    expect_ok(v.verify(sign(s, claims()), kNow));
    json c = claims();
    c["iss"] = "https://idp.example/";
    expect_refused(v.verify(sign(s, c), kNow), E::bad_issuer, "exact match only");
    c.erase("iss");
    expect_refused(v.verify(sign(s, c), kNow), E::bad_issuer, "iss required when listed");
    expect_ok(verifier({.audiences = {"strata"}}).verify(sign(s, c), kNow), "no list: any");
    c = claims();
    c["aud"] = json::array({"someone-else", "strata-admin"});
    JwtResult r = v.verify(sign(s, c), kNow);
    expect_ok(r);
    cr_expect((r.claims.audiences == std::vector<std::string>{"someone-else", "strata-admin"}));
    c["aud"] = json::array({"someone-else"});
    expect_refused(v.verify(sign(s, c), kNow), E::bad_audience);
    c["aud"] = "Strata";
    expect_refused(v.verify(sign(s, c), kNow), E::bad_audience);
    c["aud"] = json::array();
    expect_refused(v.verify(sign(s, c), kNow), E::bad_audience);
    c.erase("aud");
    expect_refused(v.verify(sign(s, c), kNow), E::bad_audience);
    expect_ok(verifier().verify(sign(s, c), kNow), "no audience list: not checked");
    for (json bad : {json(7), json::array({"strata", 7}), json::object()}) {
        c["aud"] = bad;
        expect_refused(v.verify(sign(s, c), kNow), E::malformed, "aud %s", bad.dump().c_str());
    }
    c = claims();
    c["iss"] = 1;
    expect_refused(v.verify(sign(s, c), kNow), E::malformed);
    c = claims();
    c["sub"] = json::object();
    expect_refused(v.verify(sign(s, c), kNow), E::malformed);
}

Test(jwt, scopes) {
    auto v = verifier();
    Signer s = hmac_signer();
    json c = claims();
    c["scope"] = " files:read  files:write files:read ";
    c["scp"] = json::array({"admin", "files:write"});
    JwtResult r = v.verify(sign(s, c), kNow);
    expect_ok(r);
    cr_expect((r.claims.scopes == std::vector<std::string>{"files:read", "files:write", "admin"}));
    c.erase("scope");
    c["scp"] = "a b";
    r = v.verify(sign(s, c), kNow);
    cr_expect((r.claims.scopes == std::vector<std::string>{"a", "b"}));
    for (auto [name, bad] : {std::pair{"scope", json::array({"a"})}, std::pair{"scp", json(1)},
                             std::pair{"scp", json::array({"a", nullptr})}}) {
        c = claims();
        c[name] = bad;
        expect_refused(v.verify(sign(s, c), kNow), E::malformed, "%s %s", name, bad.dump().c_str());
    }
}

Test(jwt, key_selection_by_kid) {
    std::string k1(32, '\x01'), k2(48, '\x02');
    auto v = verifier({}, set_of({oct_jwk(to_base64url(k1), "one"),
                                  oct_jwk(to_base64url(k2), "two"), rsa_jwk("rsa")}));
    expect_ok(v.verify(sign(hmac_signer(k1), claims(), "one"), kNow));
    expect_ok(v.verify(sign(hmac_signer(k2), claims(), "two"), kNow));
    expect_ok(v.verify(sign(hmac_signer(k2), claims()), kNow), "no kid: each HS256 key tried");
    expect_refused(v.verify(sign(hmac_signer(k1), claims(), "two"), kNow), E::bad_signature,
                   "the kid names the key; another key's signature does not do");
    expect_refused(v.verify(sign(hmac_signer(k1), claims(), "three"), kNow), E::unknown_key);
    expect_refused(v.verify(sign(hmac_signer(k1), claims(), ""), kNow), E::unknown_key);
    expect_refused(v.verify(sign(hmac_signer(std::string(32, 'x')), claims()), kNow),
                   E::bad_signature);
    expect_ok(v.verify(sign(rsa_signer(), claims(), "rsa"), kNow));
    expect_refused(v.verify(sign(ec_signer(), claims()), kNow), E::unknown_key, "no EC key");
    expect_refused(v.verify(sign(rsa_signer(), claims(), nullptr, {{"kid", 5}}), kNow),
                   E::malformed);
}

Test(jwt, none_and_algorithm_confusion) {
    auto v = verifier();
    // RFC 7515 A.5, the unsecured example, and "none" with a signature: never.
    expect_refused(v.verify("eyJhbGciOiJub25lIn0."
                            "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
                            "LmNvbS9pc19yb290Ijp0cnVlfQ.",
                            kRfcExp - 1000),
                   E::alg_not_allowed);
    Signer s = hmac_signer();
    for (const char* alg : {"none", "None", "NONE", "HS512", "RS384", "PS256", "EdDSA", ""})
        expect_refused(v.verify(sign(s, claims(), nullptr, {{"alg", alg}}), kNow),
                       E::alg_not_allowed, "alg %s", alg);
    expect_refused(v.verify(sign(s, claims(), nullptr, {{"alg", nullptr}}), kNow), E::malformed);
    expect_refused(v.verify(sign_raw(s, R"({"typ":"JWT"})", claims().dump()), kNow), E::malformed);
    // Allowed by the keys but not by the policy.
    auto rs_only = verifier({.algorithms = {"RS256"}});
    expect_refused(rs_only.verify(sign(s, claims(), "hmac-1"), kNow), E::alg_not_allowed);
    expect_ok(rs_only.verify(sign(rsa_signer(), claims()), kNow));
    // The classic attack: HS256 "signed" with the RSA public key as the HMAC secret, in each
    // form an attacker might guess. The RSA key never becomes an HMAC key.
    std::string n = b64d(kRsaN);
    std::vector<std::string> secrets = {n, kRsaN, rsa_jwk().dump(), rsa_jwk("2010-12-29").dump()};
    {
        gnutls_pubkey_t pub;
        cr_assert(gnutls_pubkey_init(&pub) >= 0);
        std::string e = b64d(kRsaE);
        gnutls_datum_t dn = datum(n), de = datum(e), pem{}, der{};
        cr_assert(gnutls_pubkey_import_rsa_raw(pub, &dn, &de) >= 0);
        cr_assert(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, &pem) >= 0);
        cr_assert(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der) >= 0);
        secrets.push_back(from_datum(pem));
        secrets.push_back(from_datum(der));
        gnutls_free(pem.data);
        gnutls_free(der.data);
        gnutls_pubkey_deinit(pub);
    }
    auto rsa_only = verifier({}, set_of({rsa_jwk("2010-12-29")}));
    for (const auto& secret : secrets) {
        Signer forger = hmac_signer(secret);
        expect_refused(rsa_only.verify(sign(forger, claims(), "2010-12-29"), kNow), E::unknown_key,
                       "HMAC keyed with the RSA key, kid given");
        expect_refused(rsa_only.verify(sign(forger, claims()), kNow), E::unknown_key,
                       "HMAC keyed with the RSA key, no kid");
        expect_refused(v.verify(sign(forger, claims(), "2010-12-29"), kNow), E::unknown_key);
        expect_refused(v.verify(sign(forger, claims()), kNow), E::bad_signature,
                       "only the oct key is tried, and it is not that secret");
    }
    JwtResult r = v.verify(sign(hmac_signer(n), claims(), "2010-12-29"), kNow);
    cr_expect(mentions(r.message, "RSA") && mentions(r.message, "HS256"), "%s", r.message.c_str());
    // The same for the other pairs: a token's alg never picks another type of key.
    expect_refused(v.verify(sign(ec_signer(), claims(), "2010-12-29"), kNow), E::unknown_key);
    expect_refused(
        v.verify(sign(rsa_signer(), claims(), "e9bc097a-ce51-4036-9562-d2ade882db0d"), kNow),
        E::unknown_key);
    expect_refused(v.verify(sign(rsa_signer(), claims(), "hmac-1"), kNow), E::unknown_key);
}

Test(jwt, crit_is_refused) {
    auto v = verifier();
    Signer s = hmac_signer();
    expect_refused(
        v.verify(sign(s, claims(), nullptr, {{"crit", json::array({"exp"})}, {"exp", 1}}), kNow),
        E::crit_unsupported);
    expect_refused(
        v.verify(sign(s, claims(), nullptr, {{"crit", json::array({"b64"})}, {"b64", false}}),
                 kNow),
        E::crit_unsupported);
    for (json bad : {json::array(), json("exp"), json::array({1})})
        expect_refused(v.verify(sign(s, claims(), nullptr, {{"crit", bad}}), kNow), E::malformed,
                       "crit %s", bad.dump().c_str());
    // Header parameters that carry keys are not trusted: the set's keys alone count.
    json header = {{"jwk", oct_jwk(to_base64url(std::string(32, 'k')))},
                   {"jku", "https://evil.example/jwks"}};
    expect_refused(
        v.verify(sign(hmac_signer(std::string(32, 'k')), claims(), nullptr, header), kNow),
        E::bad_signature);
    expect_ok(v.verify(sign(s, claims(), nullptr, header), kNow), "unknown parameters ignored");
}

Test(jwt, malformed_tokens) {
    auto v = verifier();
    Signer s = hmac_signer();
    std::string good = sign(s, claims());
    expect_ok(v.verify(good, kNow));
    std::size_t d1 = good.find('.'), d2 = good.rfind('.');
    std::string h = good.substr(0, d1), p = good.substr(d1 + 1, d2 - d1 - 1),
                sig = good.substr(d2 + 1);
    for (const std::string& bad :
         {std::string(), std::string("."), std::string(".."), h, h + "." + p, good + ".",
          good + "." + sig, h + "." + p + "." + sig + ".x.y", std::string("a.b.c"),
          "." + p + "." + sig, h + "=." + p + "." + sig, h + "." + p + "." + sig + "=", " " + good,
          good + " ", good + "\n", h + "." + p + "+." + sig, std::string("Bearer ") + good,
          h + "." + p + "." + sig.substr(0, 10) + "/" + sig.substr(11),
          std::string(good).insert(d1 + 5, "\0", 1)})
        expect_refused(v.verify(bad, kNow), E::malformed, "%s", json(bad).dump().c_str());
    expect_refused(v.verify(h + ".." + sig, kNow), E::bad_signature, "an empty payload");
    // A character whose unused low bits are set decodes to the same bytes: refused anyway.
    std::string noncanonical = good;
    char& last = noncanonical.back();
    last = last == 'A' ? 'B' : static_cast<char>(last + 1);
    cr_expect(!v.verify(noncanonical, kNow).ok());
    // Headers and claims that are not JSON objects, or repeat a name.
    for (const char* header :
         {"[\"alg\",\"HS256\"]", "\"HS256\"", "{\"alg\":\"HS256\"", "{\"alg\":\"HS256\"}x", "",
          "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{\"alg\":\"HS256\"} {}", "\xff",
          "{\"alg\":\"HS256\",\"x\":\"\xc3\"}"})
        expect_refused(v.verify(sign_raw(s, header, claims().dump()), kNow), E::malformed,
                       "header %s", header);
    std::string dup = claims().dump();
    dup.insert(1, "\"sub\":\"admin\",");
    for (const std::string& payload :
         {std::string("[1]"), std::string("null"), std::string("1800000000"), std::string(),
          std::string("{\"exp\":1800000300"), dup, std::string("{\"a\":{\"b\":1,\"b\":2}}")})
        expect_refused(v.verify(sign_raw(s, R"({"alg":"HS256"})", payload), kNow), E::malformed,
                       "claims %s", json(payload).dump().c_str());
    // Size: up to the limit is fine, one byte more is refused before anything else.
    json c = claims();
    c["pad"] = "";
    std::string t = sign(s, c);
    // 3 more bytes of claims make 4 more characters: a bit over the limit, then down to it.
    c["pad"] = std::string((8192 - t.size()) * 3 / 4 + 3, 'x');
    t = sign(s, c);
    while (t.size() > 8192) {
        c["pad"] = c["pad"].get<std::string>().substr(1);
        t = sign(s, c);
    }
    cr_expect(t.size() > 8180, "%zu", t.size());
    expect_ok(v.verify(t, kNow));
    c["pad"] = c["pad"].get<std::string>() + "xxx";
    expect_refused(v.verify(sign(s, c), kNow), E::malformed, "over 8 KiB");
    expect_refused(v.verify(std::string(1 << 20, 'a'), kNow), E::malformed);
    expect_refused(verifier({.max_token_bytes = 100}).verify(good, kNow), E::malformed);
    // Deep nesting and odd values in signed claims do not break anything.
    c = claims();
    c["deep"] = json::parse(std::string(2000, '[') + std::string(2000, ']'));
    expect_ok(v.verify(sign(s, c), kNow));
}

Test(jwt, policy_is_checked) {
    auto refused = [](JwtPolicy p) {
        try {
            verifier(std::move(p));
        } catch (const std::invalid_argument&) {
            return true;
        }
        return false;
    };
    cr_expect(refused({.algorithms = {"none"}}));
    cr_expect(refused({.algorithms = {"HS256", "HS512"}}));
    cr_expect(refused({.algorithms = {}}));
    cr_expect(refused({.leeway = std::chrono::seconds(-1)}));
    cr_expect(refused({.max_token_bytes = 0}));
    cr_expect(!refused({.algorithms = {"ES256"}}));
}

Test(jwks, keys_and_what_is_skipped) {
    auto set =
        Jwks::parse(set_of({oct_jwk(kHmacK, "h"),
                            rsa_jwk("r"),
                            ec_jwk("e"),
                            {{"kty", "RSA"}, {"use", "enc"}, {"n", kRsaN}, {"e", kRsaE}},
                            {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "AAAA"}},
                            {{"kty", "EC"}, {"crv", "P-384"}, {"x", ""}, {"y", ""}},
                            {{"kty", "RSA"}, {"alg", "PS256"}, {"n", ""}, {"e", ""}},
                            {{"kty", "oct"}, {"key_ops", json::array({"encrypt"})}, {"k", ""}},
                            {{"kty", "RSA"},
                             {"use", "sig"},
                             {"alg", "RS256"},
                             {"key_ops", json::array({"sign", "verify"})},
                             {"n", kRsaN},
                             {"e", kRsaE},
                             {"d", kRsaD}}}));
    cr_assert_eq(set.keys().size(), 4u);
    cr_expect(set.keys()[0].type() == JwkType::oct && set.keys()[0].algorithm() == "HS256");
    cr_expect(set.keys()[1].type() == JwkType::rsa && set.keys()[1].algorithm() == "RS256");
    cr_expect(set.keys()[2].type() == JwkType::ec_p256 && set.keys()[2].algorithm() == "ES256");
    cr_expect(set.keys()[2].kid() == std::optional<std::string>("e"));
    cr_expect(!set.keys()[3].kid());
    cr_assert_eq(set.ignored().size(), 5u);
    cr_expect(mentions(set.ignored()[0], "keys[3]") && mentions(set.ignored()[0], "enc"), "%s",
              set.ignored()[0].c_str());
    cr_expect(mentions(set.ignored()[1], "OKP"), "%s", set.ignored()[1].c_str());
    cr_expect(mentions(set.ignored()[2], "P-384"), "%s", set.ignored()[2].c_str());
    cr_expect(mentions(set.ignored()[3], "PS256"), "%s", set.ignored()[3].c_str());
    cr_expect(mentions(set.ignored()[4], "verify"), "%s", set.ignored()[4].c_str());
    // Jwk::verify on its own: the RFC signatures and nothing else.
    std::string a1_input = kA1.substr(0, kA1.rfind('.'));
    std::string a1_sig = b64d(kA1.substr(kA1.rfind('.') + 1));
    cr_expect(set.keys()[0].verify(a1_input, a1_sig));
    cr_expect(!set.keys()[0].verify(a1_input + " ", a1_sig));
    cr_expect(!set.keys()[1].verify(a1_input, a1_sig), "an RSA key does not check HMACs");
    cr_expect(!set.keys()[2].verify(a1_input, std::string(64, '\0')));
    cr_expect(!set.keys()[2].verify(a1_input, std::string(64, '\xff')));
}

Test(jwks, errors_say_which_key_and_what) {
    struct Case {
        std::string text;
        std::vector<const char*> says;
    } cases[] = {
        {"", {"not JSON"}},
        {"{\"keys\": [", {"not JSON"}},
        {R"({"keys": [], "n": 1e400})", {"not JSON"}}, // out of a double's range
        {"[]", {"\"keys\" array"}},
        {"{\"keys\": {}}", {"\"keys\" array"}},
        {"{\"keys\": []}", {"no usable key"}},
        {set_of({{{"kty", "RSA"}, {"use", "enc"}, {"n", kRsaN}, {"e", kRsaE}}}),
         {"no usable key", "enc"}},
        {set_of({ec_jwk(), 7}), {"keys[1]", "not a JSON object"}},
        {set_of({{{"k", kHmacK}}}), {"keys[0]", "kty"}},
        {set_of({{{"kty", 1}}}), {"keys[0]", "kty", "not a string"}},
        {set_of({ec_jwk(), {{"kty", "RSA"}, {"kid", "x"}, {"e", kRsaE}}}),
         {"keys[1]", "kid \"x\"", "\"n\""}},
        {set_of({{{"kty", "RSA"}, {"n", kRsaN + "="}, {"e", kRsaE}}}),
         {"keys[0]", "\"n\"", "base64url"}},
        {set_of({{{"kty", "RSA"}, {"n", to_base64url(b64d(kRsaN).substr(0, 128))}, {"e", kRsaE}}}),
         {"1024 bits", "2048"}},
        {set_of({{{"kty", "RSA"}, {"n", kRsaN}, {"e", "AQAA"}}}), {"\"e\""}},
        {set_of({{{"kty", "RSA"}, {"n", kRsaN}, {"e", "AQ"}}}), {"\"e\""}},
        {set_of({{{"kty", "RSA"}, {"alg", "HS256"}, {"n", kRsaN}, {"e", kRsaE}}}),
         {"keys[0]", "HS256", "RS256"}},
        {set_of({{{"kty", "EC"}, {"x", kEcX}, {"y", kEcY}}}), {"crv"}},
        {set_of({{{"kty", "EC"},
                  {"crv", "P-256"},
                  {"x", to_base64url(b64d(kEcX).substr(1))},
                  {"y", kEcY}}}),
         {"\"x\"", "31 bytes"}},
        {set_of({{{"kty", "EC"}, {"crv", "P-256"}, {"x", kEcX}, {"y", kEcX}}}), {"not a point"}},
        {set_of({{{"kty", "EC"}, {"crv", "P-256"}, {"x", kEcX}}}), {"\"y\""}},
        {set_of({{{"kty", "oct"}, {"k", to_base64url(std::string(31, 'k'))}}}), {"31 bytes", "32"}},
        {set_of({{{"kty", "oct"}, {"k", kHmacK}, {"kid", 3}}}), {"\"kid\"", "not a string"}},
        {set_of({{{"kty", "oct"}, {"k", kHmacK}, {"use", 3}}}), {"\"use\""}},
        {set_of({{{"kty", "oct"}, {"k", kHmacK}, {"key_ops", "verify"}}}), {"key_ops"}},
    };
    for (const auto& c : cases) {
        std::string err = jwks_error(c.text);
        cr_expect(!err.empty(), "accepted: %s", c.text.c_str());
        for (const char* s : c.says)
            cr_expect(mentions(err, s), "the error for %s does not say %s: %s", c.text.c_str(), s,
                      err.c_str());
    }
}

Test(jwks, from_file) {
    char dir_tmpl[] = "/tmp/strata-jwks-XXXXXX";
    std::filesystem::path dir = mkdtemp(dir_tmpl);
    std::ofstream(dir / "good.json") << all_keys();
    std::ofstream(dir / "bad.json") << set_of({oct_jwk("short")});
    std::ofstream(dir / "big.json") << std::string(1 << 20, ' ') << all_keys();
    auto set = Jwks::from_file(dir / "good.json");
    cr_expect_eq(set.keys().size(), 3u);
    expect_ok(JwtVerifier(std::move(set), {}).verify(kA2, kRfcExp - 1000));
    for (const char* name : {"bad.json", "missing.json", "big.json"}) {
        std::string err;
        try {
            Jwks::from_file(dir / name);
        } catch (const std::runtime_error& e) {
            err = e.what();
        }
        cr_expect(mentions(err, name), "%s: %s", name, err.c_str());
    }
    std::filesystem::remove_all(dir);
}
