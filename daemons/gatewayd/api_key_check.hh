// API keys checked at the gateway ([auth] api_key_verifier): keys live in metad, so the
// gateway asks it (POST /v1/meta/keys/verify on its socket, with the key in Authorization)
// and sends the upstream the key's identity, "X-Strata-Caller: user=ID; key=KID;
// scopes=A,B", instead of the key. Every upstream, blockd too, then sees who calls and
// with which scopes, and the route's scopes= apply to keys as to session tokens.
//
// Answers are remembered for api_key_cache_seconds, a refusal as well as an identity (so a
// made-up key costs metad one lookup per period, not one per request): a key revoked in
// metad still passes here, and on upstreams that trust the gateway alone (blockd), for at
// most that long; metad itself reads the key's record on every request. Concurrent lookups
// of one key wait for one answer from metad. metad unreachable or answering anything else:
// the request gets 503 and nothing is remembered.
//
// Keys are remembered by their SHA-256, not as they came: the gateway's memory holds no
// usable key.
#pragma once

#include "http_client/async_client.hh"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <uv.h>
#include <vector>

namespace strata::gatewayd {

struct KeyVerdict {
    enum class Kind { valid, invalid, unavailable };
    Kind kind = Kind::unavailable;
    std::uint64_t user = 0, key = 0;
    std::vector<std::string> scopes;
    std::string caller;  // valid: what goes upstream in X-Strata-Caller
    std::string message; // otherwise: why, for the error answer
};

// The remembered answers and the lookups in flight; no I/O, so its rules (expiry, bound,
// negative answers, coalescing) are tested without a loop.
class ApiKeyCache {
public:
    using Clock = std::chrono::steady_clock;
    using Waiter = std::function<void(const KeyVerdict&)>;

    ApiKeyCache(std::chrono::seconds ttl, std::size_t max_entries);

    // A remembered answer younger than ttl, or null.
    const KeyVerdict* find(const std::string& digest, Clock::time_point now);
    // Queues `w` for the answer; true when no lookup of this key is in flight (the caller
    // starts one and calls settle with its answer).
    bool wait(const std::string& digest, Waiter w);
    // The answer of a lookup: remembered unless unavailable, then given to every waiter.
    void settle(const std::string& digest, KeyVerdict v, Clock::time_point now);

    std::size_t size() const { return answers_.size(); }
    std::size_t in_flight() const { return waiting_.size(); }

private:
    struct Entry {
        KeyVerdict verdict;
        Clock::time_point expires;
    };
    std::chrono::seconds ttl_;
    std::size_t max_entries_;
    std::unordered_map<std::string, Entry> answers_;
    std::unordered_map<std::string, std::vector<Waiter>> waiting_;
};

// The verdict of metad's answer to a verify request (status and JSON body): valid with the
// identity, invalid for 401, unavailable for anything else (other statuses, a body that is
// not the expected JSON, a scope that could not go into a header).
KeyVerdict verdict_of(int status, std::string_view body);

class ApiKeyChecker {
public:
    // target: metad's socket, "unix:/run/strata/metad.sock"; throws http_client::Error for
    // a malformed one.
    ApiKeyChecker(uv_loop_t* loop, std::string_view target, std::chrono::seconds ttl,
                  std::size_t max_entries = 65536);
    ~ApiKeyChecker();
    ApiKeyChecker(const ApiKeyChecker&) = delete;
    ApiKeyChecker& operator=(const ApiKeyChecker&) = delete;

    // The verdict on `token` (a well-formed sk_ key), through done: at once when
    // remembered, else from the loop once metad answers. Lookups still running when the
    // checker goes away end as unavailable.
    void check(std::string_view token, ApiKeyCache::Waiter done);

private:
    ApiKeyCache cache_;
    std::unique_ptr<http_client::AsyncClient> metad_;
};

} // namespace strata::gatewayd
