#include "auth/encoding.hh"

#include <sodium.h>

namespace strata::auth {

std::string to_hex(std::string_view bytes) {
    std::string out(bytes.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                   bytes.size());
    out.pop_back();
    return out;
}

std::optional<std::string> from_hex(std::string_view s) {
    if (s.size() % 2 != 0) return std::nullopt;
    std::string out(s.size() / 2, '\0');
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), s.data(), s.size(),
                       nullptr, &len, &end) != 0 ||
        len != out.size() || end != s.data() + s.size())
        return std::nullopt;
    return out;
}

std::string to_base64url(std::string_view bytes) {
    constexpr int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                      bytes.size(), variant);
    out.resize(out.size() - 1); // the terminating NUL
    return out;
}

std::optional<std::string> from_base64url(std::string_view s) {
    std::string out(s.size() * 3 / 4 + 3, '\0');
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), s.data(),
                          s.size(), nullptr, &len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != s.data() + s.size())
        return std::nullopt;
    out.resize(len);
    // Only the canonical encoding: unused low bits of the last character must be zero, or
    // one value would have several spellings (a token could be altered and still verify).
    if (to_base64url(out) != s) return std::nullopt;
    return out;
}

} // namespace strata::auth
