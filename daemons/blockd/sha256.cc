#include "sha256.hh"

#include <sodium.h>

namespace strata::blockd {

static_assert(sizeof(crypto_hash_sha256_state) <= 128, "Sha256 state buffer too small");

namespace {
crypto_hash_sha256_state* st(unsigned char* p) {
    return reinterpret_cast<crypto_hash_sha256_state*>(p);
}
} // namespace

Sha256::Sha256() {
    reset();
}

void Sha256::reset() {
    crypto_hash_sha256_init(st(state_));
}

void Sha256::update(const void* data, std::size_t len) {
    crypto_hash_sha256_update(st(state_), static_cast<const unsigned char*>(data), len);
}

Digest Sha256::finish() {
    Digest d{};
    crypto_hash_sha256_final(st(state_), d.data());
    return d;
}

std::string to_hex(const Digest& d) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(64, '0');
    for (std::size_t i = 0; i < d.size(); ++i) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 0x0f];
    }
    return out;
}

std::string sha256_hex(std::string_view data) {
    Sha256 h;
    h.update(data);
    return to_hex(h.finish());
}

bool is_valid_hash(std::string_view s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

} // namespace strata::blockd
