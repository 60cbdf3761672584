// Signed public URLs for content: /c/{id}?exp=UNIX_SECONDS&sig=HEX, where
//   sig = HMAC-SHA256(key, "GET\n/c/{id}\n{exp}")
// so a link can be handed to a browser or a CDN and stops working at exp. The key (32 bytes
// or more) lives in a file under /etc/strata; comparison is constant-time.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace strata::blockd {

class UrlSigner {
public:
    // Throws std::runtime_error naming the file when it is unreadable or holds < 32 bytes.
    static UrlSigner from_file(const std::filesystem::path& key_file);
    explicit UrlSigner(std::string key);

    std::string sign(std::string_view id, std::int64_t expires) const; // hex
    std::string url(std::string_view id, std::int64_t expires) const;  // "/c/ID?exp=..&sig=.."

    enum class Verdict { ok, expired, bad_signature, malformed };
    Verdict verify(std::string_view id, std::string_view exp, std::string_view sig,
                   std::time_t now) const;

private:
    std::string key_;
    // HMAC keyed once (OpenSSL, SHA-NI): each signature dups it, so a request pays for the
    // message's hash blocks only, not for the key's.
    std::shared_ptr<void> keyed_; // EVP_MAC_CTX*
};

} // namespace strata::blockd
