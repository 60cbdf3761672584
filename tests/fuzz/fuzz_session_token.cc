// libFuzzer target for lib/auth session tokens and API keys.
//   first byte even: the rest is a token given to SessionVerifier::verify (any verdict, never
//     a crash; ok is impossible without the key) and to parse_api_key;
//   first byte odd: the rest seeds claims that are issued with the fixed key, then must verify
//     to exactly those claims, and the token with one byte changed (position and value from
//     the input) must not verify.
#include "auth/api_key.hh"
#include "auth/session_token.hh"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace strata::auth;

namespace {

const SessionSigner& signer() {
    static const SessionSigner s = SessionSigner::from_seed_hex(std::string(64, '7'));
    return s;
}

const SessionVerifier& verifier() {
    static const SessionVerifier v = [] {
        SessionVerifier v;
        v.add_public_key_hex(signer().public_key_hex());
        return v;
    }();
    return v;
}

std::uint64_t take64(const std::uint8_t*& p, std::size_t& n) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8 && n > 0; ++i, ++p, --n)
        v = (v << 8) | *p;
    return v;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::time_t now = 1800000000;
    bool issue_mode = data[0] & 1;
    const std::uint8_t* p = data + 1;
    std::size_t n = size - 1;
    if (!issue_mode) {
        std::string_view token(reinterpret_cast<const char*>(p), n);
        SessionClaims out;
        if (verifier().verify(token, now, &out) == SessionVerifier::Verdict::ok) {
            // Only our own issuer makes such tokens, and it is deterministic (Ed25519, one
            // JSON encoding): the same claims must give back exactly this token.
            if (signer().issue(out) != token) std::abort();
        }
        if (auto k = parse_api_key(token); k && k->token() != token) std::abort();
        return 0;
    }
    SessionClaims c;
    c.user = take64(p, n);
    c.session = take64(p, n);
    c.issued_at = static_cast<std::int64_t>(take64(p, n) % 4000000000ULL);
    c.expires_at = c.issued_at + 1 + static_cast<std::int64_t>(take64(p, n) % 100000000ULL);
    std::uint8_t where = n > 0 ? *p : 0, what = n > 1 ? p[1] : 0;
    for (std::size_t i = 2; i + 1 < n && c.scopes.size() < 8; i += 8) {
        // Mapped onto the scope alphabet: issue() refuses anything else.
        static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789:._-";
        std::string s;
        for (std::size_t j = i; j < std::min(n, i + 8); ++j)
            s += alphabet[p[j] % (sizeof alphabet - 1)];
        if (!s.empty()) c.scopes.push_back(s);
    }
    std::string token = signer().issue(c);
    SessionClaims back;
    auto verdict = verifier().verify(token, c.issued_at, &back);
    if (verdict != SessionVerifier::Verdict::ok || !(back == c)) std::abort();
    std::string changed = token;
    std::size_t at = where % changed.size();
    if (static_cast<std::uint8_t>(changed[at]) == what) return 0;
    changed[at] = static_cast<char>(what);
    if (verifier().verify(changed, c.issued_at, nullptr) == SessionVerifier::Verdict::ok)
        std::abort();
    return 0;
}
