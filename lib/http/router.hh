// The route table: METHOD + path pattern -> handler. Patterns are literal segments and
// {name} segments ("/v1/blocks/{sha256}"); a trailing "{name...}" takes the rest of the path.
#pragma once

#include "http/message.hh"

#include <functional>
#include <string>
#include <vector>

namespace strata::http {

using Handler = std::function<Response(Request&)>;

class Router {
public:
    void add(std::string method, std::string pattern, Handler handler);
    void get(std::string pattern, Handler h) { add("GET", std::move(pattern), std::move(h)); }
    void post(std::string pattern, Handler h) { add("POST", std::move(pattern), std::move(h)); }

    // Finds the handler and runs it; 404 / 405 (with Allow) in the error shape otherwise.
    // Exceptions from handlers become 500 (or the http::Error's status).
    Response dispatch(Request& request) const;

private:
    struct Route {
        std::string method;
        std::vector<std::string> segments;
        Handler handler;
    };
    static bool match(const Route& route, const std::vector<std::string_view>& path,
                      std::map<std::string, std::string>& params);
    std::vector<Route> routes_;
};

} // namespace strata::http
