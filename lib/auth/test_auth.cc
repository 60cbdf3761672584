// Unit tests of lib/auth: session tokens (issue, verify, tampering, expiry, rotation), the
// encodings under them, Argon2id passwords and API keys.
#include "auth/api_key.hh"
#include "auth/encoding.hh"
#include "auth/password.hh"
#include "auth/session_token.hh"

#include <criterion/criterion.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace strata::auth;
using V = SessionVerifier::Verdict;

namespace {
SessionClaims claims(std::int64_t now) {
    return {42, 7, now, now + 3600, {"files:read", "files:write"}};
}
} // namespace

Test(encoding, hex_and_base64url) {
    cr_expect_eq(to_hex(std::string("\x00\xff\x10", 3)), "00ff10");
    cr_expect_eq(from_hex("00FF10").value_or("?"), std::string("\x00\xff\x10", 3));
    cr_expect(!from_hex("0"));
    cr_expect(!from_hex("zz"));
    for (std::string s : std::initializer_list<std::string>{"", "f", "fo", "foo", "foob", "fooba",
                                                            "foobar", std::string(200, '\xfe')})
        cr_expect_eq(from_base64url(to_base64url(s)).value_or("?"), s);
    cr_expect_eq(to_base64url("\xfb\xff"), "-_8");
    cr_expect(!from_base64url("ab=="), "padding is refused");
    cr_expect(!from_base64url("a+b/"), "the standard alphabet is refused");
    cr_expect(!from_base64url("a"));
    cr_expect(from_base64url("-_8").has_value() && !from_base64url("-_9"),
              "non-canonical trailing bits are refused");
}

Test(session_token, issue_and_verify) {
    auto signer = SessionSigner::generate();
    SessionVerifier v;
    v.add_public_key_hex(signer.public_key_hex());
    std::time_t now = 1800000000;
    std::string token = signer.issue(claims(now));
    cr_expect(token.rfind("st1." + signer.key_id() + ".", 0) == 0, "%s", token.c_str());
    SessionClaims got;
    cr_assert_eq(v.verify(token, now, &got), V::ok);
    cr_expect(got == claims(now));
    cr_expect_eq(v.verify(token, now + 3600, nullptr), V::expired, "exp is exclusive");
    cr_expect_eq(v.verify(token, now - 61, nullptr), V::not_yet_valid);
    cr_expect_eq(v.verify(token, now - 59, nullptr), V::ok, "60 s of clock skew allowed");
}

Test(session_token, any_change_is_refused) {
    auto signer = SessionSigner::generate();
    SessionVerifier v;
    v.add_public_key_hex(signer.public_key_hex());
    std::time_t now = 1800000000;
    std::string token = signer.issue(claims(now));
    for (std::size_t i = 0; i < token.size(); ++i) {
        std::string t = token;
        t[i] = t[i] == 'A' ? 'B' : 'A';
        auto verdict = v.verify(t, now, nullptr);
        cr_expect(verdict != V::ok, "changing byte %zu still verified", i);
    }
    cr_expect_eq(v.verify(token.substr(0, token.size() - 1), now, nullptr), V::malformed);
    cr_expect_eq(v.verify(token + ".x", now, nullptr), V::malformed);
    cr_expect_eq(v.verify("", now, nullptr), V::malformed);
    cr_expect_eq(v.verify(std::string(5000, 'a'), now, nullptr), V::malformed);
    // A token of another key: unknown, and with our kid but their signature: bad.
    auto other = SessionSigner::generate();
    std::string foreign = other.issue(claims(now));
    cr_expect_eq(v.verify(foreign, now, nullptr), V::unknown_key);
    std::string forged = "st1." + signer.key_id() + foreign.substr(4 + 16);
    cr_expect_eq(v.verify(forged, now, nullptr), V::bad_signature);
}

Test(session_token, scopes_are_names) {
    auto signer = SessionSigner::generate();
    for (std::string bad : {std::string(), std::string("Files"), std::string("a b"),
                            std::string(65, 'a'), std::string("\xff")}) {
        SessionClaims c = claims(1800000000);
        c.scopes = {bad};
        bool threw = false;
        try {
            signer.issue(c);
        } catch (const std::invalid_argument&) {
            threw = true;
        }
        cr_expect(threw, "scope '%s' refused", bad.c_str());
    }
}

Test(session_token, key_rotation_and_files) {
    auto old_key = SessionSigner::generate();
    auto new_key = SessionSigner::from_seed_hex(SessionSigner::generate().seed_hex());
    char dir_tmpl[] = "/tmp/strata-auth-XXXXXX";
    std::filesystem::path dir = mkdtemp(dir_tmpl);
    std::ofstream(dir / "session.pub") << "# current and previous\n"
                                       << new_key.public_key_hex() << "\n\n"
                                       << old_key.public_key_hex() << "\n";
    std::ofstream(dir / "session.key") << new_key.seed_hex() << "\n";
    std::ofstream(dir / "bad.pub") << "not hex\n";
    auto v = SessionVerifier::from_file(dir / "session.pub");
    cr_expect_eq(v.keys(), 2u);
    std::time_t now = 1800000000;
    cr_expect_eq(v.verify(old_key.issue(claims(now)), now), V::ok, "old tokens still verify");
    auto loaded = SessionSigner::from_seed_file(dir / "session.key");
    cr_expect_eq(loaded.public_key_hex(), new_key.public_key_hex());
    cr_expect_eq(v.verify(loaded.issue(claims(now)), now), V::ok);
    bool threw = false;
    try {
        SessionVerifier::from_file(dir / "bad.pub");
    } catch (const std::runtime_error& e) {
        threw = std::string(e.what()).find("bad.pub:1") != std::string::npos;
    }
    cr_expect(threw, "a bad key file names file:line");
    std::filesystem::remove_all(dir);
}

Test(password, hash_verify_rehash) {
    std::string h = hash_password("correct horse battery", minimal_cost());
    cr_expect(h.rfind("$argon2id$", 0) == 0, "%s", h.c_str());
    cr_expect(verify_password(h, "correct horse battery"));
    cr_expect(!verify_password(h, "correct horse batterx"));
    cr_expect(!verify_password("garbage", "correct horse battery"));
    cr_expect(!verify_password("", ""));
    cr_expect(hash_password("correct horse battery", minimal_cost()) != h, "salted");
    cr_expect(!needs_rehash(h, minimal_cost()));
    cr_expect(needs_rehash(h, interactive_cost()));
    bool short_refused = false, long_refused = false;
    try {
        hash_password("short", minimal_cost());
    } catch (const std::invalid_argument&) {
        short_refused = true;
    }
    try {
        hash_password(std::string(1025, 'x'), minimal_cost());
    } catch (const std::invalid_argument&) {
        long_refused = true;
    }
    cr_expect(short_refused && long_refused);
}

Test(api_key, generate_parse_digest) {
    ApiKey k = generate_api_key(0x0123456789abcdefULL);
    std::string t = k.token();
    cr_expect(t.rfind("sk_0123456789abcdef_", 0) == 0 && t.size() == 63, "%s", t.c_str());
    auto parsed = parse_api_key(t);
    cr_assert(parsed.has_value());
    cr_expect(parsed->id == k.id && parsed->secret == k.secret);
    cr_expect(generate_api_key(1).secret != generate_api_key(1).secret);
    cr_expect(!parse_api_key(t.substr(0, 62)));
    cr_expect(!parse_api_key("sk_0123456789ABCDEF_" + k.secret), "the id is lowercase hex");
    cr_expect(!parse_api_key("pk_0123456789abcdef_" + k.secret));
    std::string bad = t;
    bad[30] = '=';
    cr_expect(!parse_api_key(bad));
    std::string d = api_key_digest(k.secret);
    cr_expect(d.size() == 64 && digests_equal(d, api_key_digest(parsed->secret)));
    cr_expect(!digests_equal(d, api_key_digest(generate_api_key(2).secret)));
    cr_expect(!digests_equal(d, d.substr(1)));
}
