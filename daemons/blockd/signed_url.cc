#include "signed_url.hh"

#include <charconv>
#include <fmt/format.h>
#include <fstream>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <sstream>
#include <stdexcept>

namespace strata::blockd {

UrlSigner UrlSigner::from_file(const std::filesystem::path& key_file) {
    std::ifstream in(key_file, std::ios::binary);
    if (!in) throw std::runtime_error(key_file.string() + ": cannot read the URL signing key");
    std::ostringstream buf;
    buf << in.rdbuf();
    std::string key = buf.str();
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r'))
        key.pop_back();
    if (key.size() < 32)
        throw std::runtime_error(key_file.string() +
                                 ": the URL signing key must hold at least 32 bytes");
    return UrlSigner(std::move(key));
}

UrlSigner::UrlSigner(std::string key) : key_(std::move(key)) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialise");
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (!mac) throw std::runtime_error("OpenSSL has no HMAC");
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); // the context keeps its own reference
    if (!ctx) throw std::bad_alloc();
    keyed_ =
        std::shared_ptr<void>(ctx, [](void* p) { EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(p)); });
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    if (EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key_.data()), key_.size(),
                     params) != 1)
        throw std::runtime_error("OpenSSL HMAC-SHA256 cannot be keyed");
}

std::string UrlSigner::sign(std::string_view id, std::int64_t expires) const {
    std::string message = fmt::format("GET\n/c/{}\n{}", id, expires);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    std::unique_ptr<EVP_MAC_CTX, void (*)(EVP_MAC_CTX*)> ctx(
        EVP_MAC_CTX_dup(static_cast<EVP_MAC_CTX*>(keyed_.get())), EVP_MAC_CTX_free);
    std::size_t len = 0;
    if (!ctx ||
        EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1 ||
        EVP_MAC_final(ctx.get(), mac, &len, sizeof mac) != 1 || len != sizeof mac)
        throw std::runtime_error("HMAC-SHA256 failed");
    char hex[sizeof mac * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    return hex;
}

std::string UrlSigner::url(std::string_view id, std::int64_t expires) const {
    return fmt::format("/c/{}?exp={}&sig={}", id, expires, sign(id, expires));
}

UrlSigner::Verdict UrlSigner::verify(std::string_view id, std::string_view exp,
                                     std::string_view sig, std::time_t now) const {
    std::int64_t expires = 0;
    auto [p, ec] = std::from_chars(exp.data(), exp.data() + exp.size(), expires);
    if (exp.empty() || exp.size() > 18 || ec != std::errc() || p != exp.data() + exp.size() ||
        sig.size() != crypto_auth_hmacsha256_BYTES * 2)
        return Verdict::malformed;
    std::string want = sign(id, expires);
    // Constant time: the comparison must not tell an attacker how many characters matched.
    if (sodium_memcmp(want.data(), sig.data(), want.size()) != 0) return Verdict::bad_signature;
    if (expires < now) return Verdict::expired;
    return Verdict::ok;
}

} // namespace strata::blockd
