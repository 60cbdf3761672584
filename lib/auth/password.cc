#include "auth/password.hh"

#include <sodium.h>
#include <stdexcept>

namespace strata::auth {

PasswordCost interactive_cost() {
    return {crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
}

PasswordCost minimal_cost() {
    return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};
}

std::string hash_password(std::string_view password, PasswordCost cost) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialise");
    if (password.size() < min_password_bytes || password.size() > max_password_bytes)
        throw std::invalid_argument("a password has " + std::to_string(min_password_bytes) +
                                    " to " + std::to_string(max_password_bytes) + " bytes");
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(out, password.data(), password.size(), cost.ops, cost.memory,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        throw std::runtime_error("password hashing failed (out of memory?)");
    return out;
}

bool verify_password(std::string_view hash, std::string_view password) {
    if (sodium_init() < 0) return false;
    if (hash.size() >= crypto_pwhash_STRBYTES || password.size() > max_password_bytes) return false;
    std::string h(hash); // NUL-terminated copy
    if (h.rfind("$argon2id$", 0) != 0) return false;
    return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

bool needs_rehash(std::string_view hash, PasswordCost cost) {
    if (hash.size() >= crypto_pwhash_STRBYTES) return true;
    std::string h(hash);
    return crypto_pwhash_str_needs_rehash(h.c_str(), cost.ops, cost.memory) != 0;
}

} // namespace strata::auth
