#include "auth/api_key.hh"

#include "auth/encoding.hh"

#include <charconv>
#include <cstdio>
#include <sodium.h>
#include <stdexcept>

namespace strata::auth {

namespace {
constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kSecretChars = 43; // base64url of 32 bytes, unpadded
} // namespace

std::string ApiKey::token() const {
    char id_hex[17];
    std::snprintf(id_hex, sizeof id_hex, "%016llx", static_cast<unsigned long long>(id));
    return std::string("sk_") + id_hex + "_" + secret;
}

ApiKey generate_api_key(std::uint64_t id) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialise");
    unsigned char raw[kSecretBytes];
    randombytes_buf(raw, sizeof raw);
    ApiKey k{id, to_base64url(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw))};
    sodium_memzero(raw, sizeof raw);
    return k;
}

std::optional<ApiKey> parse_api_key(std::string_view token) {
    if (token.size() != 3 + 16 + 1 + kSecretChars || token.substr(0, 3) != "sk_" ||
        token[19] != '_')
        return std::nullopt;
    std::string_view id_hex = token.substr(3, 16);
    for (char c : id_hex)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    ApiKey k;
    auto [p, ec] = std::from_chars(id_hex.data(), id_hex.data() + id_hex.size(), k.id, 16);
    if (ec != std::errc() || p != id_hex.data() + id_hex.size()) return std::nullopt;
    std::string_view secret = token.substr(20);
    auto raw = from_base64url(secret);
    if (!raw || raw->size() != kSecretBytes) return std::nullopt;
    k.secret = std::string(secret);
    return k;
}

std::string api_key_digest(std::string_view secret) {
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
    return to_hex(std::string_view(reinterpret_cast<const char*>(d), sizeof d));
}

bool digests_equal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace strata::auth
