#include "auth/session_token.hh"

#include "auth/encoding.hh"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <sstream>
#include <stdexcept>

namespace strata::auth {

namespace {

constexpr std::string_view kPrefix = "st1.";

void init_sodium() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialise");
}

std::string key_id_of(const unsigned char pk[32]) {
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, pk, 32);
    return to_hex(std::string_view(reinterpret_cast<const char*>(digest), 8));
}

std::string read_first_line(const std::filesystem::path& file, const char* what) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error(file.string() + ": cannot read the " + what);
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
        line.pop_back();
    return line;
}

// Scopes are short names made of [a-z0-9:._-] ("files:read").
bool valid_scope(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char ch : s)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == ':' || ch == '.' ||
              ch == '_' || ch == '-'))
            return false;
    return true;
}

// Strict: exactly the five fields, the right types, no others.
std::optional<SessionClaims> parse_claims(std::string_view json) {
    auto j = nlohmann::json::parse(json, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.size() != 5) return std::nullopt;
    SessionClaims c;
    try {
        const auto& sub = j.at("sub");
        const auto& sid = j.at("sid");
        const auto& iat = j.at("iat");
        const auto& exp = j.at("exp");
        const auto& scp = j.at("scp");
        if (!sub.is_number_unsigned() || !sid.is_number_unsigned() || !iat.is_number_integer() ||
            !exp.is_number_integer() || !scp.is_array() || scp.size() > 64)
            return std::nullopt;
        c.user = sub.get<std::uint64_t>();
        c.session = sid.get<std::uint64_t>();
        c.issued_at = iat.get<std::int64_t>();
        c.expires_at = exp.get<std::int64_t>();
        for (const auto& s : scp) {
            if (!s.is_string() || !valid_scope(s.get_ref<const std::string&>()))
                return std::nullopt;
            c.scopes.push_back(s.get<std::string>());
        }
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
    return c;
}

} // namespace

SessionSigner SessionSigner::generate() {
    init_sodium();
    SessionSigner s;
    crypto_sign_keypair(s.public_, s.secret_);
    return s;
}

SessionSigner SessionSigner::from_seed_hex(std::string_view hex) {
    init_sodium();
    auto seed = from_hex(hex);
    if (!seed || seed->size() != crypto_sign_SEEDBYTES)
        throw std::invalid_argument("a session key seed is 64 hex digits");
    SessionSigner s;
    crypto_sign_seed_keypair(s.public_, s.secret_,
                             reinterpret_cast<const unsigned char*>(seed->data()));
    sodium_memzero(seed->data(), seed->size());
    return s;
}

SessionSigner SessionSigner::from_seed_file(const std::filesystem::path& file) {
    std::string line = read_first_line(file, "session signing key");
    try {
        return from_seed_hex(line);
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(file.string() + ": " + e.what());
    }
}

std::string SessionSigner::issue(const SessionClaims& c) const {
    if (c.scopes.size() > 64) throw std::invalid_argument("a session has at most 64 scopes");
    for (const auto& s : c.scopes)
        if (!valid_scope(s))
            throw std::invalid_argument("a scope is 1 to 64 characters of [a-z0-9:._-]");
    nlohmann::json j = {{"sub", c.user},
                        {"sid", c.session},
                        {"iat", c.issued_at},
                        {"exp", c.expires_at},
                        {"scp", c.scopes}};
    std::string signed_part = std::string(kPrefix) + key_id() + "." + to_base64url(j.dump());
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(signed_part.data()),
                         signed_part.size(), secret_);
    return signed_part + "." +
           to_base64url(std::string_view(reinterpret_cast<const char*>(sig), sizeof sig));
}

std::string SessionSigner::seed_hex() const {
    // libsodium's secret key starts with the seed.
    return to_hex(std::string_view(reinterpret_cast<const char*>(secret_), crypto_sign_SEEDBYTES));
}

std::string SessionSigner::public_key_hex() const {
    return to_hex(std::string_view(reinterpret_cast<const char*>(public_), sizeof public_));
}

std::string SessionSigner::key_id() const {
    return key_id_of(public_);
}

void SessionVerifier::add_public_key_hex(std::string_view hex) {
    init_sodium();
    auto pk = from_hex(hex);
    if (!pk || pk->size() != crypto_sign_PUBLICKEYBYTES)
        throw std::invalid_argument("a session public key is 64 hex digits");
    Key k{};
    std::memcpy(k.pk, pk->data(), sizeof k.pk);
    k.id = key_id_of(k.pk);
    keys_.push_back(std::move(k));
}

SessionVerifier SessionVerifier::from_file(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error(file.string() + ": cannot read the session public keys");
    SessionVerifier v;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
            line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        try {
            v.add_public_key_hex(line);
        } catch (const std::invalid_argument& e) {
            throw std::runtime_error(file.string() + ":" + std::to_string(n) + ": " + e.what());
        }
    }
    if (v.keys_.empty()) throw std::runtime_error(file.string() + ": no session public key");
    return v;
}

SessionVerifier::Verdict SessionVerifier::verify(std::string_view token, std::time_t now,
                                                 SessionClaims* out, std::int64_t leeway) const {
    if (token.size() > max_token_bytes || token.substr(0, kPrefix.size()) != kPrefix)
        return Verdict::malformed;
    std::string_view rest = token.substr(kPrefix.size());
    auto dot1 = rest.find('.');
    if (dot1 != 16) return Verdict::malformed;
    std::string_view kid = rest.substr(0, dot1);
    auto dot2 = rest.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || rest.find('.', dot2 + 1) != std::string_view::npos)
        return Verdict::malformed;
    std::string_view claims_b64 = rest.substr(dot1 + 1, dot2 - dot1 - 1);
    auto sig = from_base64url(rest.substr(dot2 + 1));
    if (!sig || sig->size() != crypto_sign_BYTES) return Verdict::malformed;
    const Key* key = nullptr;
    for (const auto& k : keys_)
        if (k.id == kid) key = &k;
    if (!key) return Verdict::unknown_key;
    std::string_view signed_part = token.substr(0, kPrefix.size() + dot2);
    if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig->data()),
                                    reinterpret_cast<const unsigned char*>(signed_part.data()),
                                    signed_part.size(), key->pk) != 0)
        return Verdict::bad_signature;
    // Signed by us: the claims can only be malformed if our own encoder was.
    auto json = from_base64url(claims_b64);
    if (!json) return Verdict::malformed;
    auto claims = parse_claims(*json);
    if (!claims) return Verdict::malformed;
    if (claims->expires_at <= now) return Verdict::expired;
    if (claims->issued_at > now + leeway) return Verdict::not_yet_valid;
    if (out) *out = std::move(*claims);
    return Verdict::ok;
}

const char* to_string(SessionVerifier::Verdict v) {
    switch (v) {
    case SessionVerifier::Verdict::ok:
        return "ok";
    case SessionVerifier::Verdict::malformed:
        return "malformed";
    case SessionVerifier::Verdict::unknown_key:
        return "unknown_key";
    case SessionVerifier::Verdict::bad_signature:
        return "bad_signature";
    case SessionVerifier::Verdict::expired:
        return "expired";
    case SessionVerifier::Verdict::not_yet_valid:
        return "not_yet_valid";
    }
    return "unknown";
}

} // namespace strata::auth
