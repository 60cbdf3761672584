// Serves the browser client's files from a directory (public.web_root).
#pragma once

#include "http/message.hh"

#include <filesystem>
#include <string>

namespace strata::gatewayd {

// Answers GET for `relative` ("" or a path below root); directories serve index.html.
// Never leaves `root` (no "..", no symlink escaping it); 404 for anything else.
http::Response serve_static(const std::filesystem::path& root, const std::string& relative);

std::string content_type_for(const std::filesystem::path& file);

} // namespace strata::gatewayd
