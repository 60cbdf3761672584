// JSON Web Key Sets (RFC 7517) holding the keys that verify JWTs from an outside identity
// provider (jwt.hh), as the provider publishes them: {"keys": [{"kty": ...}, ...]}.
//
// Usable keys, each verifying exactly one JWS algorithm (RFC 7518), so that a token can never
// choose how a key is used (no algorithm confusion):
//   kty "oct"                 k (>= 32 bytes)              -> HS256 (HMAC-SHA-256)
//   kty "RSA"                 n (2048..8192 bits), e       -> RS256 (RSASSA-PKCS1-v1_5 SHA-256)
//   kty "EC", crv "P-256"     x, y (32 bytes each)         -> ES256 (ECDSA P-256 SHA-256)
// with optional kid, alg (must then be that algorithm) and use ("sig"). Keys meant for
// something else are skipped and listed by ignored(): use "enc", key_ops without "verify", an
// alg or curve we do not verify (PS256, P-384...), a kty we do not know (OKP...). A key of a
// known type that is broken (missing or badly encoded member, short key, point off the curve)
// is an error: that is an operator's mistake, better refused at load than at the first token.
//
// Public keys are imported into GnuTLS once, here, not per token.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct gnutls_pubkey_st; // GnuTLS's gnutls_pubkey_t points to one

namespace strata::auth {

enum class JwkType { oct, rsa, ec_p256 };
const char* to_string(JwkType t); // "oct", "RSA", "EC P-256"

class Jwk {
public:
    JwkType type() const noexcept { return type_; }
    // The one JWS algorithm this key verifies: "HS256", "RS256" or "ES256".
    std::string_view algorithm() const noexcept;
    const std::optional<std::string>& kid() const noexcept { return kid_; }

    // True when `signature` (the decoded third part of a compact JWS) is this key's signature
    // of `signing_input` (the first two parts and their dot). The caller has checked that the
    // token's alg is algorithm(). Constant time for HMAC; never throws.
    bool verify(std::string_view signing_input, std::string_view signature) const noexcept;

    Jwk(Jwk&&) noexcept;
    Jwk& operator=(Jwk&&) noexcept;
    ~Jwk();

private:
    friend class Jwks;
    Jwk() = default;
    struct PubkeyFree {
        void operator()(gnutls_pubkey_st* key) const noexcept;
    };

    JwkType type_ = JwkType::oct;
    std::optional<std::string> kid_;
    std::string secret_;                                // oct: the HMAC key, wiped on destruction
    std::unique_ptr<gnutls_pubkey_st, PubkeyFree> pub_; // RSA, EC
    std::size_t signature_bytes_ = 0;                   // RSA: modulus size; EC: 64 (r || s)
};

class Jwks {
public:
    // Throws std::invalid_argument saying what is wrong and where ("keys[2]: RSA key: \"n\"
    // is not base64url"), also when no key is usable.
    static Jwks parse(std::string_view json);
    // The same, messages prefixed with the file name; std::runtime_error.
    static Jwks from_file(const std::filesystem::path& file);

    const std::vector<Jwk>& keys() const noexcept { return keys_; }
    // One line per skipped key, for the caller to log ("keys[1]: ignored: use is \"enc\"").
    const std::vector<std::string>& ignored() const noexcept { return ignored_; }

private:
    Jwks() = default;
    std::vector<Jwk> keys_;
    std::vector<std::string> ignored_;
};

} // namespace strata::auth
