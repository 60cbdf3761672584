#include "http_client/client.hh"

#include "http_client/transfer.hh"

namespace strata::http_client {

void Client::HandleDeleter::operator()(void* h) const noexcept {
    curl_easy_cleanup(h);
}

Client::Client(std::string_view target, Options options)
    : target_(Target::parse(target)), options_(std::move(options)) {
    detail::global_init();
}

Client::~Client() = default;

Response Client::request(std::string_view method, std::string_view path, const Headers& headers,
                         std::string_view body, Timeout timeout) {
    return request(
        Request{std::string(method), std::string(path), headers, std::string(body), timeout});
}

Response Client::request(Request request) {
    return try_request(std::move(request)).value();
}

Result Client::try_request(Request request) {
    try {
        detail::validate(request);
        detail::EasyPtr easy;
        {
            std::lock_guard lock(mu_);
            if (!idle_.empty()) {
                easy.reset(idle_.back().release());
                idle_.pop_back();
            }
        }
        if (!easy) easy = detail::new_easy();

        detail::Transfer transfer(std::move(easy), target_, options_, std::move(request));
        Result result = transfer.finish(curl_easy_perform(transfer.easy()));

        // Failed exchanges may leave a half-used connection behind; libcurl closes those itself,
        // so the handle is always safe to pool.
        Handle h(transfer.release().release());
        std::lock_guard lock(mu_);
        if (idle_.size() < options_.max_connections) idle_.push_back(std::move(h));
        return result;
    } catch (const Error& e) {
        return Result{e, {}};
    }
}

Response Client::get(std::string_view path, Timeout timeout) {
    return request("GET", path, {}, {}, timeout);
}

Response Client::post_json(std::string_view path, const nlohmann::json& body, Timeout timeout) {
    return request("POST", path,
                   {{"Content-Type", "application/json"}, {"Accept", "application/json"}},
                   body.dump(), timeout);
}

} // namespace strata::http_client
