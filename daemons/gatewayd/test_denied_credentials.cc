// Unit tests of the gateway's denied credentials list: parsing (errors name the line) and
// which facts each entry matches.
#include "auth/api_key.hh"
#include "denied_credentials.hh"

#include <criterion/criterion.h>
#include <stdexcept>
#include <string>

using namespace strata;
using namespace strata::gatewayd;

namespace {
// The matching entry as a string ("" when none), so no temporary dangles in an assertion.
std::string entry(const DeniedCredentials& d, const CredentialFacts& f) {
    return d.match(f).value_or("");
}
} // namespace

Test(denied_credentials, parses_every_kind_and_skips_comments) {
    auto d = DeniedCredentials::parse("# leaked 2026-11-30\n"
                                      "user:12\n"
                                      "  key:34   # the CI key\n"
                                      "\n"
                                      "session:56\n"
                                      "sub:ext|alice@idp\n"
                                      "sha256:" +
                                          std::string(64, 'A') + "\n",
                                      "t");
    cr_assert_eq(d.size(), 5u);
    cr_assert(entry(d, {.user = 12}) == "user:12");
    cr_assert(entry(d, {.user = 1, .key = 34}) == "key:34");
    cr_assert(entry(d, {.user = 1, .session = 56}) == "session:56");
    cr_assert(entry(d, {.subject = std::string_view("ext|alice@idp")}) == "sub:ext|alice@idp");
    cr_assert_not(d.match({.user = 1, .key = 2, .session = 3}));
    cr_assert_not(d.match({.subject = std::string_view("ext|alice")}));
}

Test(denied_credentials, bearer_facts) {
    auto key = auth::generate_api_key(77);
    std::string token = key.token();
    std::string other = "st1.abc.def.ghi";
    auto d = DeniedCredentials::parse("key:77\nsha256:" + auth::api_key_digest(other) + "\n", "t");
    // An API key passed on unchecked is still known by its id.
    cr_assert(entry(d, {.bearer = std::string_view(token)}) == "key:77");
    cr_assert(d.match({.bearer = std::string_view(other)}));
    cr_assert_not(d.match({.bearer = std::string_view("st1.abc.def.ghX")}));
    cr_assert_not(d.match({}));
}

Test(denied_credentials, errors_name_the_line) {
    for (const char* bad : {"user:\n", "user:x\n", "user:0\n", "key:-1\n", "nokind\n",
                            "token:abc\n", "sha256:abc\n", "session:12a\n", "sub:\n"}) {
        try {
            DeniedCredentials::parse(std::string("# first\n") + bad, "deny.txt");
            cr_assert_fail("accepted %s", bad);
        } catch (const std::invalid_argument& e) {
            cr_assert(std::string(e.what()).starts_with("deny.txt:2: "), "%s", e.what());
        }
    }
    cr_assert_throw(DeniedCredentials::from_file("/nonexistent/deny.txt"), std::runtime_error);
    cr_assert(DeniedCredentials::parse("", "t").empty());
}
