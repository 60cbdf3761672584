#include "text_fold.hh"

#include <algorithm>
#include <stdexcept>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

namespace strata::metad {

namespace {

constexpr UChar32 replacement = 0xfffd;

void check(UErrorCode ec, const char* what) {
    if (U_FAILURE(ec)) throw std::runtime_error(std::string(what) + ": " + u_errorName(ec));
}

// ICU's preflighting convention: fn(dest, capacity, &ec) returns the length it needs and
// fails with U_BUFFER_OVERFLOW_ERROR when capacity is short; the second try always fits.
template <class Str, class F>
Str icu_call(std::size_t guess, const char* what, F&& fn) {
    Str out(std::max<std::size_t>(guess, 16), typename Str::value_type{});
    for (int attempt = 0; attempt < 2; ++attempt) {
        UErrorCode ec = U_ZERO_ERROR;
        std::int32_t n = fn(out.data(), static_cast<std::int32_t>(out.size()), &ec);
        if (ec == U_BUFFER_OVERFLOW_ERROR && attempt == 0) {
            out.assign(static_cast<std::size_t>(n), typename Str::value_type{});
            continue;
        }
        check(ec, what);
        out.resize(static_cast<std::size_t>(n));
        return out;
    }
    throw std::runtime_error(std::string(what) + ": output size changed");
}

std::u16string to_utf16(std::string_view s) {
    s = s.substr(0, max_fold_input);
    return icu_call<std::u16string>(
        s.size(), "u_strFromUTF8WithSub", [&](UChar* d, std::int32_t cap, UErrorCode* ec) {
            std::int32_t n = 0;
            u_strFromUTF8WithSub(d, cap, &n, s.data(), static_cast<std::int32_t>(s.size()),
                                 replacement, nullptr, ec);
            return n;
        });
}

std::string to_utf8(std::u16string_view s) {
    return icu_call<std::string>(
        s.size() * 3, "u_strToUTF8WithSub", [&](char* d, std::int32_t cap, UErrorCode* ec) {
            std::int32_t n = 0;
            u_strToUTF8WithSub(d, cap, &n, s.data(), static_cast<std::int32_t>(s.size()),
                               replacement, nullptr, ec);
            return n;
        });
}

std::u16string normalize(const UNormalizer2* form, std::u16string_view s) {
    return icu_call<std::u16string>(s.size() + s.size() / 2, "unorm2_normalize",
                                    [&](UChar* d, std::int32_t cap, UErrorCode* ec) {
                                        return unorm2_normalize(form, s.data(),
                                                                static_cast<std::int32_t>(s.size()),
                                                                d, cap, ec);
                                    });
}

const UNormalizer2* nfd() {
    static const UNormalizer2* n = [] {
        UErrorCode ec = U_ZERO_ERROR;
        const UNormalizer2* p = unorm2_getNFDInstance(&ec);
        check(ec, "unorm2_getNFDInstance");
        return p;
    }();
    return n;
}

const UNormalizer2* nfc() {
    static const UNormalizer2* n = [] {
        UErrorCode ec = U_ZERO_ERROR;
        const UNormalizer2* p = unorm2_getNFCInstance(&ec);
        check(ec, "unorm2_getNFCInstance");
        return p;
    }();
    return n;
}

// NFD, full case folding, NFD (as Unicode's canonical caseless match, D145), nonspacing
// marks dropped; the caller composes (NFC).
std::u16string fold16(std::string_view utf8) {
    std::u16string s = normalize(nfd(), to_utf16(utf8));
    s = icu_call<std::u16string>(
        s.size() + s.size() / 4, "u_strFoldCase", [&](UChar* d, std::int32_t cap, UErrorCode* ec) {
            return u_strFoldCase(d, cap, s.data(), static_cast<std::int32_t>(s.size()),
                                 U_FOLD_CASE_DEFAULT, ec);
        });
    s = normalize(nfd(), s);
    std::u16string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        std::size_t start = i;
        UChar32 c;
        U16_NEXT(s.data(), i, s.size(), c);
        if (u_charType(c) != U_NON_SPACING_MARK) out.append(s, start, i - start);
    }
    return out;
}

// Cut at the last code point boundary within max_token_bytes.
void cut(std::string& token) {
    if (token.size() <= max_token_bytes) return;
    std::size_t n = max_token_bytes;
    while (n > 0 && (static_cast<unsigned char>(token[n]) & 0xc0) == 0x80)
        --n;
    token.resize(n);
}

} // namespace

std::vector<std::string> search_tokens(std::string_view utf8, std::size_t max_tokens) {
    std::vector<std::string> tokens;
    if (max_tokens == 0) return tokens;
    const std::u16string s = fold16(utf8);
    std::size_t start = 0;
    bool in_token = false;
    auto flush = [&](std::size_t end) {
        std::string t =
            to_utf8(normalize(nfc(), std::u16string_view(s).substr(start, end - start)));
        cut(t);
        tokens.push_back(std::move(t));
        in_token = false;
    };
    for (std::size_t i = 0; i < s.size() && tokens.size() < max_tokens;) {
        std::size_t at = i;
        UChar32 c;
        U16_NEXT(s.data(), i, s.size(), c);
        const std::int8_t type = u_charType(c);
        const bool mark = type == U_COMBINING_SPACING_MARK || type == U_ENCLOSING_MARK;
        if (u_isalnum(c) || (in_token && mark)) {
            if (!in_token) start = at;
            in_token = true;
        } else if (in_token) {
            flush(at);
        }
    }
    if (in_token && tokens.size() < max_tokens) flush(s.size());
    return tokens;
}

std::string fold_term(std::string_view utf8) {
    return to_utf8(normalize(nfc(), fold16(utf8)));
}

} // namespace strata::metad
