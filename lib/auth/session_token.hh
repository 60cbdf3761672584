// Session tokens: issued by strata-metad at login, verified by anyone holding the public key
// (strata-gatewayd verifies them locally on every request, without calling metad).
//
//   token  = "st1." KID "." CLAIMS "." SIG
//   KID    = 16 hex digits: the first 8 bytes of SHA-256(public key), so verifiers can hold
//            several keys (rotation: new logins use the new key, old tokens stay valid until
//            they expire or the old key is dropped)
//   CLAIMS = base64url (no padding) of a JSON object:
//            {"sub": USER_ID, "sid": SESSION_ID, "iat": UNIX_S, "exp": UNIX_S, "scp": [...]}
//   SIG    = base64url of the Ed25519 signature of everything before the last "."
//
// Why Ed25519 and not an HMAC: a gateway that can verify cannot mint tokens, so only metad
// holds a secret. Revocation is by session id (metad's revocation list), not in the token.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::auth {

struct SessionClaims {
    std::uint64_t user = 0;
    std::uint64_t session = 0;
    std::int64_t issued_at = 0;  // unix seconds
    std::int64_t expires_at = 0; // unix seconds
    std::vector<std::string> scopes;

    bool operator==(const SessionClaims&) const = default;
};

inline constexpr std::size_t max_token_bytes = 4096;

// The signing side (metad). Keys are files of one line: the 32-byte Ed25519 seed in hex.
class SessionSigner {
public:
    static SessionSigner generate();
    // Throws std::runtime_error naming the file when it is unreadable or not 64 hex digits.
    static SessionSigner from_seed_file(const std::filesystem::path& file);
    static SessionSigner from_seed_hex(std::string_view hex);

    // Throws std::invalid_argument for a scope outside [a-z0-9:._-]{1,64} or over 64 scopes.
    std::string issue(const SessionClaims& claims) const;
    std::string seed_hex() const;
    std::string public_key_hex() const;
    std::string key_id() const;

private:
    SessionSigner() = default;
    unsigned char secret_[64]{}; // libsodium's secret key: seed + public key
    unsigned char public_[32]{};
};

// The verifying side (gateway, metad itself). Holds one or more public keys.
class SessionVerifier {
public:
    // Adds a 32-byte public key given in hex; throws std::invalid_argument otherwise.
    void add_public_key_hex(std::string_view hex);
    // One public key (hex) per line; blank lines and '#' comments ignored. Throws
    // std::runtime_error naming the file and line.
    static SessionVerifier from_file(const std::filesystem::path& file);
    std::size_t keys() const noexcept { return keys_.size(); }

    enum class Verdict { ok, malformed, unknown_key, bad_signature, expired, not_yet_valid };
    // Checks the token at `now`, allowing `leeway` seconds of clock skew for iat. On ok,
    // fills *out when given.
    Verdict verify(std::string_view token, std::time_t now, SessionClaims* out = nullptr,
                   std::int64_t leeway = 60) const;

private:
    struct Key {
        std::string id;
        unsigned char pk[32];
    };
    std::vector<Key> keys_;
};

const char* to_string(SessionVerifier::Verdict v);

} // namespace strata::auth
