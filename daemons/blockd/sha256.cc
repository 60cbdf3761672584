#include "sha256.hh"

#include <new>
#include <openssl/evp.h>
#include <stdexcept>
#include <utility>

namespace strata::blockd {

namespace {

// Fetched once: EVP_get_digestbyname-style lookups per hasher cost more than small blocks.
const EVP_MD* sha256_md() {
    static const EVP_MD* md = [] {
        const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        if (!m) throw std::runtime_error("OpenSSL has no SHA-256");
        return m;
    }();
    return md;
}

EVP_MD_CTX* ctx(void* p) {
    return static_cast<EVP_MD_CTX*>(p);
}

} // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_) throw std::bad_alloc();
    reset();
}

Sha256::~Sha256() {
    EVP_MD_CTX_free(ctx(ctx_));
}

Sha256::Sha256(Sha256&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}

Sha256& Sha256::operator=(Sha256&& o) noexcept {
    if (this != &o) {
        EVP_MD_CTX_free(ctx(ctx_));
        ctx_ = std::exchange(o.ctx_, nullptr);
    }
    return *this;
}

void Sha256::reset() {
    if (EVP_DigestInit_ex2(ctx(ctx_), sha256_md(), nullptr) != 1)
        throw std::runtime_error("OpenSSL SHA-256 init failed");
}

void Sha256::update(const void* data, std::size_t len) {
    // Cannot fail for a software digest once initialised.
    EVP_DigestUpdate(ctx(ctx_), data, len);
}

Digest Sha256::finish() {
    Digest d{};
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx(ctx_), d.data(), &n);
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
