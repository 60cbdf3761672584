// Small text files of the pipelines' outputs (playlists), read and written whole; a failure
// is a MediaError (transient: the disk, not the input).
#pragma once

#include <filesystem>
#include <string>

namespace strata::transcoded {

std::string read_text_file(const std::filesystem::path& p);
void write_text_file(const std::filesystem::path& p, const std::string& text);

} // namespace strata::transcoded
