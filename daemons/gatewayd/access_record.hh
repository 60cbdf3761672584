// What the access log says of one answered request (access_log.hh). The entry handler fills
// the client's side; the proxy adds the route, the caller and the upstream as it learns them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::gatewayd {

struct AccessRecord {
    std::chrono::system_clock::time_point received = std::chrono::system_clock::now();
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::string request_id; // made once at entry: the log's, the upstream's and the answer's
    std::string remote;     // client address ("" on a unix socket)
    std::string method;
    std::string target; // path and query as received
    std::string host;
    std::string user_agent;
    std::optional<std::string> referer;
    // Set by the proxy. upstream stays "gateway" for the gateway's own answers.
    std::optional<std::string> route; // [HOST]PREFIX of the matched route
    std::string caller = "anonymous"; // anonymous, session, jwt, api_key, unverified_session
    std::optional<std::string> user;  // user id, JWT subject or "key:ID"; never a credential
    std::string upstream = "gateway"; // pool name
    std::optional<std::string> upstream_addr; // member target
    std::optional<double> upstream_ms;
    // Set when the answer goes out.
    int status = 0;
    std::uint64_t bytes = 0;
};

// What the proxy learnt of the caller: how it authenticated (verified: by the gateway;
// passed_on: credentials left for the upstream) and who, without the credential itself.
// caller is the X-Strata-Caller value the upstream gets.
void note_caller(AccessRecord& note, std::optional<std::string_view> bearer, bool verified,
                 bool passed_on, std::optional<std::uint64_t> user, std::string_view caller);
// The member that answered (or failed) last, and how long it took.
void note_upstream(AccessRecord& note, std::string_view pool, std::string_view member,
                   double seconds);

} // namespace strata::gatewayd
