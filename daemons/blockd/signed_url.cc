#include "signed_url.hh"

#include <charconv>
#include <fmt/format.h>
#include <fstream>
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
}

std::string UrlSigner::sign(std::string_view id, std::int64_t expires) const {
    std::string message = fmt::format("GET\n/c/{}\n{}", id, expires);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key_.data()),
                                key_.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(message.data()),
                                  message.size());
    crypto_auth_hmacsha256_final(&st, mac);
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
