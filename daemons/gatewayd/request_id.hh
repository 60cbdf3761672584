// X-Request-Id: the client's is kept when it is 1-128 of [A-Za-z0-9._:-], otherwise the
// gateway makes one (32 hex digits). Made once per request at entry (front.hh).
#pragma once

#include <string>
#include <string_view>

namespace strata::gatewayd {

bool request_id_ok(std::string_view v);
std::string new_request_id();

} // namespace strata::gatewayd
