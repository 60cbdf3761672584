// SHA-256 for strata-blockd: a streaming hasher and hex helpers.
//
// Backed by OpenSSL's EVP SHA-256, which uses the CPU's SHA extensions (SHA-NI) or AVX2
// where present: ingest hashes every byte twice (per block and whole content), so this is
// the hot loop of uploads (about 3x libsodium's portable code on x86-64 with SHA-NI).
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
    ~Sha256();
    Sha256(Sha256&& o) noexcept;
    Sha256& operator=(Sha256&& o) noexcept;
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(const void* data, std::size_t len);
    void update(std::string_view data) { update(data.data(), data.size()); }
    // Finishes the hash; the object must not be updated afterwards (call reset() to reuse).
    Digest finish();
    void reset();

private:
    void* ctx_ = nullptr; // EVP_MD_CTX*, kept opaque so OpenSSL's headers stay out of here
};

// Lowercase hex of a digest (64 characters).
std::string to_hex(const Digest& d);

// One-shot: lowercase hex SHA-256 of data.
std::string sha256_hex(std::string_view data);

// True when s is exactly 64 lowercase hex characters [0-9a-f].
bool is_valid_hash(std::string_view s);

} // namespace strata::blockd
