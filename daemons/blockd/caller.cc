#include "caller.hh"

#include "http/ows.hh"

#include <string>

namespace strata::blockd {

namespace {

// Calls fn on each ';'- or ','-separated piece of `list`, trimmed.
template <class F>
void each(std::string_view list, char sep, F fn) {
    std::size_t s = 0;
    while (s <= list.size()) {
        auto end = list.find(sep, s);
        fn(http::trim_ows(list.substr(s, end == list.npos ? list.npos : end - s)));
        if (end == list.npos) break;
        s = end + 1;
    }
}

} // namespace

void require_scope(const http::Request& req, std::string_view scope) {
    auto h = req.header("X-Strata-Caller");
    if (!h) return;
    bool user = false, has_scopes = false, has_scope = false;
    each(*h, ';', [&](std::string_view f) {
        if (f.starts_with("user=")) {
            auto id = f.substr(5);
            user = !id.empty() && id.find_first_not_of("0123456789") == id.npos;
        } else if (f.starts_with("scopes=")) {
            has_scopes = true;
            each(f.substr(7), ',', [&](std::string_view one) { has_scope |= one == scope; });
        }
    });
    if (!user) throw http::Error(401, "unauthenticated", "sign in first");
    if (has_scopes && !has_scope)
        throw http::Error(403, "insufficient_scope", "this needs the scope " + std::string(scope));
}

} // namespace strata::blockd
