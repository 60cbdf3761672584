// SHA-256 for strata-blockd: a streaming hasher and hex helpers.
//
// Backed by libsodium's crypto_hash_sha256 (already a Strata dependency). Kept behind this
// small interface so the implementation can be swapped (e.g. for OpenSSL EVP with SHA-NI)
// without touching the block store.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::blockd {

using Digest = std::array<std::uint8_t, 32>;

class Sha256 {
public:
    Sha256();
    void update(const void* data, std::size_t len);
    void update(std::string_view data) { update(data.data(), data.size()); }
    // Finishes the hash; the object must not be updated afterwards (call reset() to reuse).
    Digest finish();
    void reset();

private:
    alignas(16) unsigned char state_[128];
};

// Lowercase hex of a digest (64 characters).
std::string to_hex(const Digest& d);

// One-shot: lowercase hex SHA-256 of data.
std::string sha256_hex(std::string_view data);

// True when s is exactly 64 lowercase hex characters [0-9a-f].
bool is_valid_hash(std::string_view s);

} // namespace strata::blockd
