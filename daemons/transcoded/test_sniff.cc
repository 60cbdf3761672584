// Format sniffing from the first bytes, never from the name.
#include "sniff.hh"

#include <criterion/criterion.h>
#include <filesystem>
#include <fstream>
#include <string>

using namespace strata::transcoded;
using namespace std::string_literals;
namespace fs = std::filesystem;

namespace {

fs::path g_dir;

void setup() {
    std::string tmpl = (fs::temp_directory_path() / "strata-sniff-XXXXXX").string();
    cr_assert(mkdtemp(tmpl.data()));
    g_dir = tmpl;
}
void teardown() {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
}

MediaFormat sniff_string(const std::string& bytes, const char* name = "file") {
    fs::path p = g_dir / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return sniff_format(p);
}

} // namespace

TestSuite(sniff, .init = setup, .fini = teardown);

Test(sniff, images) {
    cr_expect_eq(sniff_string("\xFF\xD8\xFF\xE0\0\x10JFIF"s), MediaFormat::jpeg);
    cr_expect_eq(sniff_string("\x89PNG\r\n\x1A\n\0\0\0\rIHDR"s), MediaFormat::png);
    cr_expect_eq(sniff_string("RIFF\x10\0\0\0WEBPVP8 "s), MediaFormat::webp);
    cr_expect_eq(sniff_string("GIF87a\1\0\1\0"), MediaFormat::gif);
    cr_expect_eq(sniff_string("GIF89a\1\0\1\0"), MediaFormat::gif);
    for (auto f : {MediaFormat::jpeg, MediaFormat::png, MediaFormat::webp, MediaFormat::gif})
        cr_expect(is_image_format(f), "%s", format_name(f));
}

Test(sniff, videos) {
    cr_expect_eq(sniff_string("\0\0\0\x20"
                              "ftypisom"s),
                 MediaFormat::mp4);
    cr_expect_eq(sniff_string("\0\0\0\x08"
                              "moov"s),
                 MediaFormat::mp4);
    cr_expect_eq(sniff_string("\0\0\0\x01"
                              "mdat"s),
                 MediaFormat::mp4);
    cr_expect_eq(sniff_string("\0\0\0\x08"
                              "wide"s),
                 MediaFormat::mp4);
    cr_expect_eq(sniff_string("\0\0\0\x10"
                              "free"s),
                 MediaFormat::mp4);
    cr_expect_eq(sniff_string("\x1A\x45\xDF\xA3\x9F"s), MediaFormat::matroska);
    cr_expect_eq(sniff_string("RIFF\x10\0\0\0"
                              "AVI LIST"s),
                 MediaFormat::avi);
    cr_expect_eq(sniff_string("OggS\0\2"s), MediaFormat::ogg);
    std::string ts(376, '\xFF');
    ts[0] = ts[188] = 0x47;
    cr_expect_eq(sniff_string(ts), MediaFormat::mpegts);
    for (auto f : {MediaFormat::mp4, MediaFormat::matroska, MediaFormat::mpegts, MediaFormat::avi,
                   MediaFormat::ogg, MediaFormat::unknown, MediaFormat::empty})
        cr_expect(!is_image_format(f), "%s", format_name(f));
}

Test(sniff, not_media) {
    cr_expect_eq(sniff_string("", "empty.jpg"), MediaFormat::empty);
    cr_expect_eq(sniff_string("just some text, not a video\n", "movie.mp4"), MediaFormat::unknown);
    // One sync byte is not a transport stream; a box size below its header is not MP4.
    cr_expect_eq(sniff_string("G" + std::string(300, 'x')), MediaFormat::unknown);
    cr_expect_eq(sniff_string("\0\0\0\x04"
                              "ftypisom"s),
                 MediaFormat::unknown);
    cr_expect_eq(sniff_string("RIFF\x10\0\0\0WAVEfmt "s), MediaFormat::unknown);
    cr_expect_eq(sniff_string("\xFF\xD8"), MediaFormat::unknown);
    cr_expect_eq(sniff_string("GIF90a"), MediaFormat::unknown);
}

Test(sniff, names) {
    cr_expect_str_eq(format_name(MediaFormat::jpeg), "jpeg");
    cr_expect_str_eq(format_name(MediaFormat::mp4), "mp4");
    cr_expect_str_eq(format_name(MediaFormat::matroska), "matroska");
    cr_expect_str_eq(format_name(MediaFormat::unknown), "unknown");
    cr_expect_str_eq(format_name(MediaFormat::empty), "empty");
}

Test(sniff, unreadable_is_transient) {
    try {
        sniff_format(g_dir / "missing");
        cr_assert_fail("no throw");
    } catch (const MediaError& e) {
        cr_expect(!e.permanent);
    }
}
