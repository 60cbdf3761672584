#include "http_client/message.hh"

#include <algorithm>
#include <fmt/format.h>

namespace strata::http_client {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [&](char x, char y) { return lower(x) == lower(y); });
}

} // namespace

void Headers::add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::set(std::string name, std::string value) {
    std::erase_if(fields_, [&](const Field& f) { return iequals(f.first, name); });
    add(std::move(name), std::move(value));
}

std::optional<std::string_view> Headers::get(std::string_view name) const {
    for (const auto& [n, v] : fields_) {
        if (iequals(n, name)) return v;
    }
    return std::nullopt;
}

nlohmann::json Response::json() const {
    try {
        return nlohmann::json::parse(body);
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::bad_response,
                    fmt::format("response (status {}) is not JSON: {}", status, e.what()));
    }
}

Response& Result::value() & {
    if (error) throw *error;
    return response;
}

Response&& Result::value() && {
    if (error) throw *error;
    return std::move(response);
}

} // namespace strata::http_client
