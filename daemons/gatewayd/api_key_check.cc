#include "api_key_check.hh"

#include "auth/api_key.hh"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace strata::gatewayd {

ApiKeyCache::ApiKeyCache(std::chrono::seconds ttl, std::size_t max_entries)
    : ttl_(ttl), max_entries_(std::max<std::size_t>(1, max_entries)) {}

const KeyVerdict* ApiKeyCache::find(const std::string& digest, Clock::time_point now) {
    auto it = answers_.find(digest);
    if (it == answers_.end()) return nullptr;
    if (now < it->second.expires) return &it->second.verdict;
    answers_.erase(it); // asked again
    return nullptr;
}

bool ApiKeyCache::wait(const std::string& digest, Waiter w) {
    auto [it, first] = waiting_.try_emplace(digest);
    it->second.push_back(std::move(w));
    return first;
}

void ApiKeyCache::settle(const std::string& digest, KeyVerdict v, Clock::time_point now) {
    if (v.kind != KeyVerdict::Kind::unavailable) {
        // Bounded: the expired go first; if that is not enough, everything (asking metad
        // again is correct, only slower).
        if (answers_.size() >= max_entries_ && !answers_.count(digest))
            std::erase_if(answers_, [&](const auto& e) { return !(now < e.second.expires); });
        if (answers_.size() >= max_entries_ && !answers_.count(digest)) answers_.clear();
        answers_[digest] = Entry{v, now + ttl_};
    }
    auto it = waiting_.find(digest);
    if (it == waiting_.end()) return;
    // Taken out first: a waiter may look the same key up again.
    std::vector<Waiter> waiters = std::move(it->second);
    waiting_.erase(it);
    for (auto& w : waiters)
        w(v);
}

namespace {

std::optional<std::uint64_t> decimal(const nlohmann::json& v) {
    if (!v.is_string()) return std::nullopt;
    const auto& s = v.get_ref<const std::string&>();
    std::uint64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return out;
}

// A scope as it may stand in X-Strata-Caller's comma list.
bool scope_ok(std::string_view s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == ':' || c == '.' || c == '_' || c == '-';
    });
}

KeyVerdict unavailable(std::string why) {
    KeyVerdict v;
    v.kind = KeyVerdict::Kind::unavailable;
    v.message = std::move(why);
    return v;
}

} // namespace

KeyVerdict verdict_of(int status, std::string_view body) {
    if (status == 401) {
        KeyVerdict v;
        v.kind = KeyVerdict::Kind::invalid;
        v.message = "the API key is not valid";
        return v;
    }
    if (status != 200)
        return unavailable("metad answered " + std::to_string(status) + " to the key's check");
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("user") || !j.contains("key") || !j.contains("scopes") ||
        !j["scopes"].is_array() || j["scopes"].size() > 16)
        return unavailable("metad's answer to the key's check is not understood");
    auto user = decimal(j["user"]), key = decimal(j["key"]);
    if (!user || !key) return unavailable("metad's answer to the key's check is not understood");
    KeyVerdict v;
    v.kind = KeyVerdict::Kind::valid;
    v.user = *user;
    v.key = *key;
    v.caller = "user=" + std::to_string(*user) + "; key=" + std::to_string(*key) + "; scopes=";
    for (const auto& s : j["scopes"]) {
        if (!s.is_string() || !scope_ok(s.get_ref<const std::string&>()))
            return unavailable("metad's answer to the key's check has a malformed scope");
        v.caller += (v.scopes.empty() ? "" : ",") + s.get<std::string>();
        v.scopes.push_back(s.get<std::string>());
    }
    return v;
}

ApiKeyChecker::ApiKeyChecker(uv_loop_t* loop, std::string_view target, std::chrono::seconds ttl,
                             std::size_t max_entries)
    : cache_(ttl, max_entries) {
    http_client::Options o;
    o.connect_timeout = std::chrono::milliseconds(2000);
    o.timeout = std::chrono::milliseconds(5000);
    o.max_response_bytes = 64 * 1024;
    o.max_connections = 16;
    metad_ = std::make_unique<http_client::AsyncClient>(loop, target, o);
}

// The client first: its lookups still running end (cancelled) while the cache is alive.
ApiKeyChecker::~ApiKeyChecker() {
    metad_.reset();
}

void ApiKeyChecker::check(std::string_view token, ApiKeyCache::Waiter done) {
    std::string digest = auth::api_key_digest(token);
    if (const KeyVerdict* v = cache_.find(digest, ApiKeyCache::Clock::now())) {
        done(*v);
        return;
    }
    if (!cache_.wait(digest, std::move(done))) return; // joins the lookup in flight
    http_client::Request r;
    r.method = "POST";
    r.path = "/v1/meta/keys/verify";
    r.headers.add("Authorization", "Bearer " + std::string(token));
    try {
        metad_->request(std::move(r), [this, digest](http_client::Result res) {
            KeyVerdict v =
                res.error
                    ? unavailable("metad does not answer the key's check (" +
                                  std::string(http_client::kind_name(res.error->kind())) + ")")
                    : verdict_of(res.response.status, res.response.body);
            cache_.settle(digest, std::move(v), ApiKeyCache::Clock::now());
        });
    } catch (const std::exception& e) {
        cache_.settle(digest, unavailable(std::string("the key cannot be checked: ") + e.what()),
                      ApiKeyCache::Clock::now());
    }
}

} // namespace strata::gatewayd
