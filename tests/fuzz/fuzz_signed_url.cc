// libFuzzer target: strata-blockd's signed content URLs (UrlSigner) and the way their links
// come back through the request-target parser.
//
// Input: "ID\nEXP\nSIG" (SIG is the rest, newlines included); or, when the first byte is
// NUL, bytes 1 and 2 give the lengths of ID and EXP (so an ID may hold '\n') and SIG is
// the rest. With a fixed key and several `now` values:
//  - verify() never crashes; its verdict agrees with the definition: ok only if EXP parses
//    as a whole number, SIG equals sign(ID, EXP) and EXP >= now; expired only if the
//    signature is right and EXP < now; bad_signature only if EXP parses and SIG has the
//    length of a signature but is not the right one; and a right signature with an EXP of
//    at most 18 characters is never malformed or bad_signature.
//  - sign() is deterministic lowercase hex (64 characters); a freshly signed (ID, exp)
//    verifies ok (expired when exp < now), and changing any one character of the signature
//    gives bad_signature; url() is "/c/ID?exp=EXP&sig=SIG".
//  - parse_target("/c/" + ID + "?exp=" + EXP + "&sig=" + SIG): when EXP and SIG hold no
//    '&', '=', '%', '+', '#' or control character, the query gives back exactly EXP and
//    SIG (and, for an ID without '?', '#', '%' or control characters, the path is /c/ID),
//    so verifying what the parser returns gives the same verdict; the same holds for the
//    link url() builds.
#include "http/target.hh"
#include "signed_url.hh"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using strata::blockd::UrlSigner;
using Verdict = UrlSigner::Verdict;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

const UrlSigner& signer() {
    static const UrlSigner s(std::string("strata-fuzz-url-signing-key-0123456789abcdef"));
    return s;
}

bool control_free(std::string_view s) {
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) return false;
    }
    return true;
}

bool has_any(std::string_view s, std::string_view chars) {
    return s.find_first_of(chars) != std::string_view::npos;
}

std::optional<std::int64_t> parse_exp(std::string_view exp) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(exp.data(), exp.data() + exp.size(), v);
    if (exp.empty() || ec != std::errc() || p != exp.data() + exp.size()) return std::nullopt;
    return v;
}

bool lower_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

std::vector<std::time_t> nows(std::optional<std::int64_t> exp) {
    constexpr std::time_t lo = std::numeric_limits<std::time_t>::min();
    constexpr std::time_t hi = std::numeric_limits<std::time_t>::max();
    std::vector<std::time_t> v = {0, 1, 1795000000, lo, hi};
    if (exp) {
        v.push_back(*exp);
        if (*exp > lo) v.push_back(*exp - 1);
        if (*exp < hi) v.push_back(*exp + 1);
    }
    return v;
}

void check_verdict(std::string_view id, std::string_view exp, std::string_view sig,
                   std::time_t now) {
    Verdict v = signer().verify(id, exp, sig, now);
    std::optional<std::int64_t> e = parse_exp(exp);
    bool right = e && sig == signer().sign(id, *e);
    switch (v) {
    case Verdict::ok:
        check(right && *e >= now);
        break;
    case Verdict::expired:
        check(right && *e < now);
        break;
    case Verdict::bad_signature:
        check(e && !right && sig.size() == 64);
        break;
    case Verdict::malformed:
        check(!right || exp.size() > 18);
        break;
    default:
        check(false);
    }
}

// What the parser makes of a link: the id, exp and sig a content route would verify.
struct Link {
    std::string id, exp, sig;
};

std::optional<Link> parse_link(std::string_view target) {
    auto t = strata::http::parse_target(target);
    if (!t) return std::nullopt;
    check(t->path.compare(0, 3, "/c/") == 0);
    auto exp = t->query.find("exp"), sig = t->query.find("sig");
    if (exp == t->query.end() || sig == t->query.end()) return std::nullopt;
    return Link{t->path.substr(3), exp->second, sig->second};
}

void check_link(std::string_view id, std::string_view exp, std::string_view sig,
                const std::vector<std::time_t>& times) {
    std::string target =
        "/c/" + std::string(id) + "?exp=" + std::string(exp) + "&sig=" + std::string(sig);
    auto t = strata::http::parse_target(target);
    bool id_clean = control_free(id) && !has_any(id, "?#%");
    if (!control_free(exp) || !control_free(sig) || has_any(exp, "&=%+#") ||
        has_any(sig, "&=%+#")) {
        // Nothing is promised about the query; the parse must still be sane.
        if (t) check(t->path.compare(0, 3, "/c/") == 0);
        return;
    }
    if (id_clean) check(t.has_value() && t->path == target.substr(0, 3 + id.size()));
    if (!t || has_any(id, "?#")) return; // an id with '?' or '#' moves the query
    check(t->query.size() == 2);
    check(t->query.count("exp") == 1 && t->query.find("exp")->second == exp);
    check(t->query.count("sig") == 1 && t->query.find("sig")->second == sig);
    if (id_clean) {
        auto link = parse_link(target);
        check(link.has_value() && link->id == id);
        for (std::time_t now : times)
            check(signer().verify(link->id, link->exp, link->sig, now) ==
                  signer().verify(id, exp, sig, now));
    }
}

void check_fresh(std::string_view id, std::int64_t e, const std::vector<std::time_t>& times) {
    std::string sig = signer().sign(id, e);
    check(sig.size() == 64 && lower_hex(sig));
    check(sig == signer().sign(id, e));
    std::string exp = std::to_string(e);
    check(signer().url(id, e) == "/c/" + std::string(id) + "?exp=" + exp + "&sig=" + sig);
    // verify() takes at most 18 characters of exp: every time up to year 3e10 and back.
    if (exp.size() > 18) return;
    for (std::time_t now : times)
        check(signer().verify(id, exp, sig, now) == (e >= now ? Verdict::ok : Verdict::expired));
    for (std::size_t i = 0; i < sig.size(); ++i) {
        for (char c : {sig[i] == '0' ? '1' : '0', static_cast<char>(sig[i] ^ 0x20)}) {
            std::string bad = sig;
            bad[i] = c;
            check(signer().verify(id, exp, bad, e) == Verdict::bad_signature);
        }
    }
    check(signer().verify(id, exp, sig.substr(1), e) == Verdict::malformed);
    check(signer().verify(id, exp, sig + "0", e) == Verdict::malformed);
    if (control_free(id) && !has_any(id, "?#%")) {
        auto link = parse_link(signer().url(id, e));
        check(link.has_value() && link->id == id && link->exp == exp && link->sig == sig);
        for (std::time_t now : times)
            check(signer().verify(link->id, link->exp, link->sig, now) ==
                  (e >= now ? Verdict::ok : Verdict::expired));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::string_view id, exp, sig;
    if (!in.empty() && in[0] == '\0') {
        if (in.size() < 3) return 0;
        std::size_t id_len = static_cast<std::uint8_t>(in[1]);
        std::size_t exp_len = static_cast<std::uint8_t>(in[2]);
        in.remove_prefix(3);
        id = in.substr(0, id_len);
        in.remove_prefix(id.size());
        exp = in.substr(0, exp_len);
        in.remove_prefix(exp.size());
        sig = in;
    } else {
        auto a = in.find('\n');
        id = in.substr(0, a);
        if (a != std::string_view::npos) {
            in.remove_prefix(a + 1);
            auto b = in.find('\n');
            exp = in.substr(0, b);
            if (b != std::string_view::npos) sig = in.substr(b + 1);
        }
    }

    std::optional<std::int64_t> e = parse_exp(exp);
    std::vector<std::time_t> times = nows(e);
    for (std::time_t now : times)
        check_verdict(id, exp, sig, now);
    check_link(id, exp, sig, times);
    // A freshly signed link for this id: at the input's exp when it parses, else at a time
    // made of its bytes.
    std::int64_t fresh = 0;
    if (e) {
        fresh = *e;
    } else {
        std::uint64_t h = 0;
        for (char c : exp)
            h = h * 31 + static_cast<unsigned char>(c);
        fresh = static_cast<std::int64_t>(h % 100000000000000000); // at most 17 digits
    }
    check_fresh(id, fresh, times);
    return 0;
}
