// Hex and base64url (RFC 4648 section 5, no padding) for tokens and keys, over libsodium.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace strata::auth {

std::string to_hex(std::string_view bytes);
// nullopt unless s is an even number of hex digits (either case).
std::optional<std::string> from_hex(std::string_view s);

std::string to_base64url(std::string_view bytes);
// nullopt unless s is the canonical unpadded base64url of some bytes.
std::optional<std::string> from_base64url(std::string_view s);

} // namespace strata::auth
