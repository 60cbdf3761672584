// Helpers shared by metad's route files: id parsing, JSON views of records, errors, and
// who the caller is (Context::caller).
#pragma once

#include "auth/api_key.hh"
#include "auth/encoding.hh"
#include "http/router.hh"
#include "meta_store.hh"
#include "node_json.hh"
#include "routes.hh"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <mutex>
#include <unistd.h>

namespace strata::metad::route_util {

using nlohmann::json;

inline std::string id_str(std::uint64_t id) {
    return std::to_string(id);
}

// An id given as a decimal string or a JSON number.
inline std::optional<std::uint64_t> id_of(const json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (!v.is_string()) return std::nullopt;
    const auto& s = v.get_ref<const std::string&>();
    std::uint64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return out;
}

inline std::uint64_t path_id(const http::Request& req) {
    auto id = id_of(json(req.params.at("id")));
    if (!id) throw http::Error(404, "not_found", "no such file or folder");
    return *id;
}

inline json user_view(const User& u) {
    return {{"id", id_str(u.id)},     {"name", u.name},       {"email", u.email},
            {"root", id_str(u.root)}, {"created", u.created}, {"disabled", u.disabled}};
}

// A node as clients see it: the same text from every route (node_json.cc writes it).
inline json node_view(const Node& n) {
    std::string text;
    append_node_json(text, n);
    return json::parse(text);
}

inline http::Response json_text_response(int status, std::string body) {
    http::Response r;
    r.status = status;
    r.headers.emplace("Content-Type", "application/json");
    body.push_back('\n');
    r.body = std::move(body);
    return r;
}

// With the caller's role, when known, in X-Strata-Access (owner, write, read).
inline http::Response node_response(int status, const Node& n, Role role = Role::none) {
    std::string body;
    append_node_json(body, n);
    auto r = json_text_response(status, std::move(body));
    r.headers.emplace("ETag", "\"" + std::to_string(n.version) + "\"");
    if (role != Role::none) r.headers.emplace("X-Strata-Access", to_string(role));
    return r;
}

// ?limit= (1..1000, default 100) and ?cursor= (base64url of an opaque key).
inline std::size_t limit_param(const http::Request& req, std::size_t fallback = 100) {
    std::size_t limit = fallback;
    if (auto it = req.query.find("limit"); it != req.query.end()) {
        auto [p, ec] =
            std::from_chars(it->second.data(), it->second.data() + it->second.size(), limit);
        if (ec != std::errc() || p != it->second.data() + it->second.size() || limit < 1 ||
            limit > 1000)
            throw http::Error(400, "bad_request", "limit is 1..1000");
    }
    return limit;
}

inline std::string cursor_param(const http::Request& req) {
    auto it = req.query.find("cursor");
    if (it == req.query.end() || it->second.empty()) return {};
    auto raw = auth::from_base64url(it->second);
    if (!raw || raw->size() > 512)
        throw http::Error(400, "bad_cursor", "not a cursor from a previous page");
    return *raw;
}

// Closes a listing body opened with {"items":[ and its items:
// {"items":[node...],"next_cursor":...}.
inline http::Response page_body_response(std::string out, std::string_view next_cursor) {
    out.append("],\"next_cursor\":");
    if (next_cursor.empty())
        out.append("null");
    else
        append_json_string(out, auth::to_base64url(next_cursor));
    out.push_back('}');
    return json_text_response(200, std::move(out));
}

inline http::Response page_response(const MetaStore::Page& page) {
    std::string out = "{\"items\":[";
    out.reserve(page.nodes.size() * 320 + 64);
    for (std::size_t i = 0; i < page.nodes.size(); ++i) {
        if (i) out.push_back(',');
        append_node_json(out, page.nodes[i]);
    }
    return page_body_response(std::move(out), page.next_cursor);
}

// A folder's page copied from the JSON stored in its children entries (the hottest listing:
// no record lookups, no Node).
inline http::Response children_response(MetaStore& store, Principal who, std::uint64_t folder,
                                        std::string_view cursor, std::size_t limit) {
    std::string out = "{\"items\":[";
    out.reserve(std::min<std::size_t>(limit, 1000) * 450 + 64);
    bool first = true;
    std::string next = store.list_json(who, folder, cursor, limit, [&](std::string_view node) {
        if (!first) out.push_back(',');
        first = false;
        out.append(node);
    });
    return page_body_response(std::move(out), next);
}

// If-Match: "VERSION" -> the version (0 without the header); 400 when malformed.
inline std::uint64_t if_match_param(const http::Request& req) {
    std::uint64_t v = 0;
    auto h = req.header("If-Match");
    if (!h) return 0;
    std::string_view s = *h;
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v == 0)
        throw http::Error(400, "bad_request", "If-Match takes the ETag of a stat");
    return v;
}

inline http::Response no_content() {
    http::Response r;
    r.status = 204;
    return r;
}

inline std::vector<std::string> string_list(const json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_array())
        throw http::Error(400, "bad_request", std::string("\"") + name + "\" is a list of strings");
    std::vector<std::string> out;
    for (const auto& x : *it) {
        if (!x.is_string())
            throw http::Error(400, "bad_request",
                              std::string("\"") + name + "\" is a list of strings");
        out.push_back(x.get<std::string>());
    }
    return out;
}

inline json body_object(const http::Request& req) {
    auto j = req.json();
    if (!j.is_object()) throw http::Error(400, "bad_request", "expected a JSON object");
    return j;
}

inline std::string string_field(const json& j, const char* name, bool required = true) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) {
        if (required)
            throw http::Error(400, "bad_request", std::string("missing \"") + name + "\"");
        return {};
    }
    if (!it->is_string())
        throw http::Error(400, "bad_request", std::string("\"") + name + "\" must be a string");
    return it->get<std::string>();
}

// Runs fn; a StoreError becomes the http::Error of its status and code.
template <class F>
auto guarded_store(F&& fn) -> decltype(fn()) {
    try {
        return fn();
    } catch (const StoreError& e) {
        throw http::Error(e.status(), e.code(), e.what());
    }
}

// The answer of an async write: its error in the error shape, else ok(). Never throws, so
// it may run on the commit thread.
template <class F>
http::Response async_answer(std::exception_ptr error, F&& ok) {
    return http::guarded([&] {
        return guarded_store([&]() -> http::Response {
            if (error) std::rethrow_exception(error);
            return ok();
        });
    });
}

struct Context {
    Context(MetaStore& s, AuthOptions a) : store(s), auth(std::move(a)) {}

    MetaStore& store;
    AuthOptions auth;

    // A hash of no one's password at the configured cost, made on first use. A login for an
    // unknown (or disabled) user is verified against it, so refusing it takes as long as
    // refusing a wrong password: the time of the answer does not tell which user exists.
    const std::string& dummy_hash() {
        std::call_once(dummy_once_, [&] {
            dummy_hash_ = auth::hash_password("no user has this password", auth.password_cost);
        });
        return dummy_hash_;
    }

    // The calling user's id; 401 when the request carries no valid identity, 403 when its
    // token or key lacks `scope`. Through the gateway (a unix-socket peer), X-Strata-Caller
    // is "user=ID; session=SID; scopes=A,B" for a session token it verified (signature and
    // expiry: revocation and scopes are checked here), "user=ID; key=KID; scopes=A,B" for
    // an API key it verified with POST /v1/meta/keys/verify (and remembers for
    // api_key_cache_seconds: the key's record is read again here, one LMDB lookup, so a
    // revoked key stops at once on metad's routes), or "anonymous" when it verified nobody
    // (an API key passed on unverified, or nothing, then follows in Authorization).
    std::uint64_t caller(const http::Request& req, const char* scope = nullptr,
                         std::uint64_t* session = nullptr) const {
        if (auto h = req.header("X-Strata-Caller"); h && req.peer && *h != "anonymous") {
            auto id = parse_caller(*h);
            if (!id.user)
                throw http::Error(401, "unauthenticated", "X-Strata-Caller names no user");
            auto u = store.user(*id.user);
            if (!u || u->disabled)
                throw http::Error(401, "unauthenticated", "X-Strata-Caller names no active user");
            if (id.malformed)
                throw http::Error(401, "unauthenticated", "X-Strata-Caller is malformed");
            if (id.key) {
                auto k = store.api_key(*id.key);
                if (!k || k->revoked || k->user != *id.user)
                    throw http::Error(401, "invalid_token", "the API key is not valid");
            }
            if (id.session) {
                auto s = store.session(*id.session);
                if (!s || s->revoked || s->user != *id.user)
                    throw http::Error(401, "invalid_token", "the session has ended");
                if (session) *session = *id.session;
            }
            if (id.scopes) require_scope(*id.scopes, scope);
            return *id.user;
        }
        if (auto h = req.header("Authorization"); h && h->substr(0, 10) == "Bearer sk_") {
            // An API key: found by its id, its secret checked against the stored digest.
            auto key = auth::parse_api_key(h->substr(7));
            auto rec = key ? store.api_key(key->id) : std::nullopt;
            if (!rec || rec->revoked ||
                !auth::digests_equal(rec->digest, auth::api_key_digest(key->secret)))
                throw http::Error(401, "invalid_token", "the API key is not valid");
            auto u = store.user(rec->user);
            if (!u || u->disabled)
                throw http::Error(401, "invalid_token", "the key's user is disabled");
            require_scope(rec->scopes, scope);
            return rec->user;
        }
        if (auto h = req.header("Authorization"); h && h->substr(0, 7) == "Bearer ") {
            auth::SessionClaims c;
            if (!auth.verifier || auth.verifier->verify(h->substr(7), std::time(nullptr), &c) !=
                                      auth::SessionVerifier::Verdict::ok)
                throw http::Error(401, "invalid_token", "the session token is not valid");
            auto s = store.session(c.session);
            auto u = store.user(c.user);
            if (!s || s->revoked || !u || u->disabled)
                throw http::Error(401, "invalid_token", "the session has ended");
            require_scope(c.scopes, scope);
            if (session) *session = c.session;
            return c.user;
        }
        throw http::Error(401, "unauthenticated", "sign in first");
    }

    // X-Strata-Caller's fields; what is malformed is left unset.
    struct CallerHeader {
        std::optional<std::uint64_t> user, session, key;
        bool malformed = false; // a session= or key= that is not a number
        // Absent: a local caller on the socket that named a user without scopes (stratactl,
        // tests) is trusted as the socket's mode trusts it; the gateway always sends them.
        std::optional<std::vector<std::string>> scopes;
    };
    static CallerHeader parse_caller(std::string_view v) {
        CallerHeader out;
        auto number = [](std::string_view n) -> std::optional<std::uint64_t> {
            std::uint64_t x = 0;
            auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), x);
            if (n.empty() || ec != std::errc() || end != n.data() + n.size()) return std::nullopt;
            return x;
        };
        std::size_t s = 0;
        while (s < v.size()) {
            auto semi = v.find(';', s);
            std::string_view f = v.substr(s, semi == v.npos ? v.npos : semi - s);
            while (!f.empty() && f.front() == ' ')
                f.remove_prefix(1);
            if (f.starts_with("user=")) out.user = number(f.substr(5));
            if (f.starts_with("session=")) {
                out.session = number(f.substr(8));
                out.malformed |= !out.session;
            }
            if (f.starts_with("key=")) {
                out.key = number(f.substr(4));
                out.malformed |= !out.key;
            }
            if (f.starts_with("scopes=")) {
                std::string_view l = f.substr(7);
                out.scopes.emplace();
                std::size_t b = 0;
                while (b < l.size()) {
                    auto comma = l.find(',', b);
                    auto one = l.substr(b, comma == l.npos ? l.npos : comma - b);
                    if (!one.empty()) out.scopes->emplace_back(one);
                    if (comma == l.npos) break;
                    b = comma + 1;
                }
            }
            if (semi == v.npos) break;
            s = semi + 1;
        }
        return out;
    }

private:
    static void require_scope(const std::vector<std::string>& have, const char* scope) {
        if (!scope) return;
        for (const auto& s : have)
            if (s == scope) return;
        throw http::Error(403, "insufficient_scope", std::string("this needs the scope ") + scope);
    }

    std::once_flag dummy_once_;
    std::string dummy_hash_;
};

// Operators' routes (stratactl meta user ...): only for a unix-socket peer that is root or
// metad's own user and that names no caller, so no user identity can reach them. The
// gateway sends X-Strata-Caller on every request it proxies ("anonymous" at least), so
// even a route table that publishes them cannot open them to clients.
inline void require_operator(const http::Request& req) {
    if (!req.peer || (req.peer->uid != 0 && req.peer->uid != ::geteuid()) ||
        req.header("X-Strata-Caller") || req.header("Authorization"))
        throw http::Error(403, "forbidden", "operators only (stratactl on the control socket)");
}

} // namespace strata::metad::route_util

namespace strata::metad {
void add_share_routes(http::Router& router, const std::shared_ptr<route_util::Context>& ctx);
void add_social_routes(http::Router& router, const std::shared_ptr<route_util::Context>& ctx);
void add_key_verify_routes(http::Router& router, const std::shared_ptr<route_util::Context>& ctx);
// The principal a public link makes of its holder (share_routes.cc): 404 for unknown or
// expired tokens, 401 when the link has a password the request does not carry. Blocking
// (Argon2id).
Principal link_principal(route_util::Context& ctx, const http::Request& req);
} // namespace strata::metad
