// libFuzzer target: the gateway's denied credentials list ([auth] denied_credentials_file)
// on arbitrary text. Everything up to the first "\n\n" is the list; the rest is a bearer
// credential to match. The parser accepts or throws std::invalid_argument naming the line;
// matching never fails.
#include "denied_credentials.hh"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto split = text.find("\n\n");
    std::string_view list = text.substr(0, split);
    std::string_view bearer = split == std::string_view::npos ? "" : text.substr(split + 2);
    try {
        auto d = gatewayd::DeniedCredentials::parse(list, "fuzz");
        gatewayd::CredentialFacts f;
        f.user = size;
        f.key = size / 2;
        f.session = size / 3;
        f.subject = bearer;
        f.bearer = bearer;
        if (auto e = d.match(f); e && e->empty()) __builtin_trap(); // an entry is never ""
    } catch (const std::invalid_argument& e) {
        if (!std::string_view(e.what()).starts_with("fuzz:")) __builtin_trap();
    }
    return 0;
}
