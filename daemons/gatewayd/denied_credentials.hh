// Credentials the gateway refuses whatever their validity ([auth] denied_credentials_file,
// strata-gatewayd.conf(5)): a leaked API key or token, a user to lock out at the edge, a
// JWT subject of an outside identity provider. One entry per line, "#" starts a comment:
//   user:ID            every credential of that Strata user (session tokens, API keys)
//   key:ID             one API key, by its id (the part after "sk_" and before the secret)
//   session:ID         one session token, by its session id
//   sub:SUBJECT        JWTs whose "sub" is exactly SUBJECT (the rest of the line)
//   sha256:HEX         any bearer credential whose text has this SHA-256 (64 hex digits):
//                      for a token only known in full (printf %s TOKEN | sha256sum)
// A request whose credential matches gets 403 credential_denied before it goes anywhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

namespace strata::gatewayd {

// What is known of a request's credential once identity ran.
struct CredentialFacts {
    std::optional<std::uint64_t> user, key, session;
    std::optional<std::string_view> subject; // a verified JWT's sub
    std::optional<std::string_view> bearer;  // the credential's text (Authorization: Bearer)
};

class DeniedCredentials {
public:
    // Throws std::invalid_argument "SOURCE:LINE: why" for a malformed entry.
    static DeniedCredentials parse(std::string_view text, std::string_view source);
    // "" or an unreadable file: throws std::runtime_error naming the path.
    static DeniedCredentials from_file(const std::string& path);

    bool empty() const noexcept { return size() == 0; }
    std::size_t size() const noexcept {
        return users_.size() + keys_.size() + sessions_.size() + subjects_.size() + digests_.size();
    }
    // The entry that denies this credential ("key:42"), or nullopt.
    std::optional<std::string> match(const CredentialFacts& f) const;

private:
    std::unordered_set<std::uint64_t> users_, keys_, sessions_;
    std::unordered_set<std::string> subjects_, digests_;
};

} // namespace strata::gatewayd
