// Password hashing with Argon2id (libsodium's crypto_pwhash_str): the result is a
// self-describing "$argon2id$v=19$m=...,t=...,p=1$salt$hash" string, so the cost can be raised
// later and old hashes still verify (needs_rehash tells when to upgrade one at login).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::auth {

struct PasswordCost {
    std::uint64_t ops;  // iterations
    std::size_t memory; // bytes
};
// libsodium's "interactive" level: about 64 MiB and well under a second.
PasswordCost interactive_cost();
// The cheapest level libsodium allows: for tests, never for real accounts.
PasswordCost minimal_cost();

inline constexpr std::size_t min_password_bytes = 8;
inline constexpr std::size_t max_password_bytes = 1024; // bounds the hashing work per request

// Throws std::invalid_argument for a password outside [min, max] bytes, std::runtime_error
// when hashing fails (out of memory).
std::string hash_password(std::string_view password, PasswordCost cost);
// False for a wrong password or a malformed hash; constant-time in the password.
bool verify_password(std::string_view hash, std::string_view password);
bool needs_rehash(std::string_view hash, PasswordCost cost);

} // namespace strata::auth
