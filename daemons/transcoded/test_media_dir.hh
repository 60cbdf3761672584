// The pipelines' tests: each test in a fresh temporary directory, GStreamer initialised.
// KEEP_MEDIA_TEST_DIR=1 keeps the directories (inputs and outputs), to look at them.
#pragma once

#include <criterion/criterion.h>
#include <cstdlib>
#include <filesystem>
#include <gst/gst.h>
#include <string>

namespace strata::transcoded::testing {

inline std::filesystem::path media_dir;

inline void make_media_dir(const char* prefix) {
    gst_init(nullptr, nullptr);
    std::string tmpl = (std::filesystem::temp_directory_path() / prefix).string() + "-XXXXXX";
    cr_assert(mkdtemp(tmpl.data()));
    media_dir = tmpl;
}

inline void remove_media_dir() {
    if (std::getenv("KEEP_MEDIA_TEST_DIR")) return;
    std::error_code ec;
    std::filesystem::remove_all(media_dir, ec);
}

} // namespace strata::transcoded::testing
