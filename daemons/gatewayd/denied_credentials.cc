#include "denied_credentials.hh"

#include "auth/api_key.hh"
#include "text.hh"

#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace strata::gatewayd {

namespace {

std::uint64_t id_of(std::string_view v, std::string_view source, std::size_t line) {
    std::uint64_t id = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), id);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size() || id == 0)
        throw std::invalid_argument(std::string(source) + ":" + std::to_string(line) +
                                    ": expected a decimal id, not \"" + std::string(v) + "\"");
    return id;
}

bool is_hex64(std::string_view v) {
    if (v.size() != 64) return false;
    for (char c : v)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

} // namespace

DeniedCredentials DeniedCredentials::parse(std::string_view text, std::string_view source) {
    DeniedCredentials d;
    std::size_t line_no = 0;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        ++line_no;
        if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        line = text::trim(line);
        if (line.empty()) continue;
        auto colon = line.find(':');
        std::string_view kind = line.substr(0, colon);
        std::string_view value = colon == std::string_view::npos
                                     ? std::string_view()
                                     : text::trim(line.substr(colon + 1));
        if (colon == std::string_view::npos || value.empty())
            throw std::invalid_argument(std::string(source) + ":" + std::to_string(line_no) +
                                        ": expected KIND:VALUE (user, key, session, sub, sha256)");
        if (kind == "user") {
            d.users_.insert(id_of(value, source, line_no));
        } else if (kind == "key") {
            d.keys_.insert(id_of(value, source, line_no));
        } else if (kind == "session") {
            d.sessions_.insert(id_of(value, source, line_no));
        } else if (kind == "sub") {
            d.subjects_.emplace(value);
        } else if (kind == "sha256") {
            std::string hex = text::lower(value);
            if (!is_hex64(hex))
                throw std::invalid_argument(std::string(source) + ":" + std::to_string(line_no) +
                                            ": sha256: wants 64 hex digits");
            d.digests_.insert(std::move(hex));
        } else {
            throw std::invalid_argument(std::string(source) + ":" + std::to_string(line_no) +
                                        ": unknown kind \"" + std::string(kind) +
                                        "\" (user, key, session, sub, sha256)");
        }
    }
    return d;
}

DeniedCredentials DeniedCredentials::from_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream all;
    all << in.rdbuf();
    if (in.bad()) throw std::runtime_error("cannot read " + path);
    return parse(all.str(), path);
}

std::optional<std::string> DeniedCredentials::match(const CredentialFacts& f) const {
    if (f.user && users_.count(*f.user)) return "user:" + std::to_string(*f.user);
    std::optional<std::uint64_t> key = f.key;
    if (!key && f.bearer)
        if (auto k = auth::parse_api_key(*f.bearer)) key = k->id; // an unchecked key's id
    if (key && keys_.count(*key)) return "key:" + std::to_string(*key);
    if (f.session && sessions_.count(*f.session)) return "session:" + std::to_string(*f.session);
    if (f.subject && !subjects_.empty() && subjects_.count(std::string(*f.subject)))
        return "sub:" + std::string(*f.subject);
    if (f.bearer && !digests_.empty()) {
        std::string digest = auth::api_key_digest(*f.bearer);
        if (digests_.count(digest)) return "sha256:" + digest;
    }
    return std::nullopt;
}

} // namespace strata::gatewayd
