// Media types of stored content: detected with libmagic at upload, or declared by the
// uploader, recorded in the manifest and sent as Content-Type when the content is served.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace strata::blockd {

// libmagic looks at the start of the content; 64 KiB covers the usual signatures (ISO 9660's
// at 32 KiB included) without reading much.
inline constexpr std::size_t media_sniff_bytes = 64 * 1024;

// The libmagic MIME type ("text/plain", "image/png", ...) of a content prefix;
// "application/octet-stream" when libmagic cannot tell or is unavailable.
std::string detect_media_type(std::string_view head);

// "type/subtype" made of RFC 9110 token characters, lowercased; parameters (";...") are
// not accepted. nullopt for anything else (so a declared type can never inject a header).
std::optional<std::string> normalize_media_type(std::string_view declared);

// Types a browser would run as a document or a script (HTML, XHTML, SVG, XML, JavaScript):
// served with a sandboxing Content-Security-Policy, so uploaded pages cannot act on the
// origin that serves them.
bool is_active_media_type(std::string_view type);

} // namespace strata::blockd
