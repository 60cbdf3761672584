// API keys: "sk_" + 16 hex digits of key id + "_" + 43 characters of base64url secret
// (32 random bytes). metad stores only SHA-256(secret): a key has 256 bits of entropy, so a
// fast hash is enough (unlike passwords), and a stolen database reveals no usable key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::auth {

struct ApiKey {
    std::uint64_t id = 0;
    std::string secret; // base64url, 43 characters
    std::string token() const;
};

// A new key with a random secret (the id is the caller's, e.g. a snowflake id).
ApiKey generate_api_key(std::uint64_t id);
// nullopt unless `token` has exactly the form above.
std::optional<ApiKey> parse_api_key(std::string_view token);
// Hex SHA-256 of the secret: what is stored, and what a presented key is compared with.
std::string api_key_digest(std::string_view secret);
// Constant-time comparison of two digests.
bool digests_equal(std::string_view a, std::string_view b);

} // namespace strata::auth
