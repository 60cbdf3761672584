// The character classes of header text (chars.hh) against the RFC 9110 grammar, every byte.
#include "http/chars.hh"

#include <criterion/criterion.h>
#include <string>

using namespace strata::http;

namespace {

bool rfc_tchar(int c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

} // namespace

Test(chars, every_byte_is_classified_as_the_rfc_says) {
    for (int c = 0; c < 256; ++c) {
        std::string one(1, static_cast<char>(c));
        cr_assert_eq(is_tchar(static_cast<unsigned char>(c)), rfc_tchar(c), "byte %d", c);
        cr_assert_eq(is_token(one), rfc_tchar(c), "byte %d", c);
        bool breaks = c == '\r' || c == '\n' || c == 0;
        cr_assert_eq(no_line_break(one), !breaks, "byte %d", c);
        bool value = c == '\t' || (c >= 0x20 && c != 0x7f); // obs-text (>= 0x80) included
        cr_assert_eq(field_value_chars(one), value, "byte %d", c);
    }
}

Test(chars, whole_texts) {
    cr_assert(is_token("X-Request-Id"));
    cr_assert_not(is_token(""));
    cr_assert_not(is_token("Bad Name"));
    cr_assert_not(is_token("Name:"));
    cr_assert(no_line_break("a value\twith tabs"));
    cr_assert_not(no_line_break(std::string_view("a\0b", 3)));
    cr_assert_not(no_line_break("split\r\nInjected: 1"));
    cr_assert(field_value_chars("caf\xc3\xa9 ok"));
    cr_assert_not(field_value_chars("bell\x07"));
    cr_assert(field_value_chars(""));
}
