// Image headers parsed from hand-written bytes: dimensions, transparency, EXIF orientation,
// and the malformed headers refused before any decoder sees them.
#include "image_header.hh"

#include <criterion/criterion.h>
#include <string>
#include <vector>

using namespace strata::transcoded;
using namespace std::string_literals;

namespace {

ImageHeader parse(MediaFormat f, const std::string& bytes) {
    return parse_image_header(
        f, std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

std::string refusal(MediaFormat f, const std::string& bytes) {
    try {
        parse(f, bytes);
    } catch (const MediaError& e) {
        cr_expect(e.permanent);
        return e.what();
    }
    return "";
}

std::string le32(std::uint32_t v) {
    return {char(v), char(v >> 8), char(v >> 16), char(v >> 24)};
}
std::string be16(unsigned v) {
    return {char(v >> 8), char(v)};
}

// TIFF with IFD0 holding one orientation entry, in either byte order.
std::string tiff(unsigned orientation, bool little) {
    if (little)
        return "II*\0"s + le32(8) + "\1\0"s + "\x12\x01\x03\0"s + le32(1) + char(orientation) +
               "\0\0\0"s + le32(0);
    return "MM\0*\0\0\0\x08"s + "\0\1"s + "\x01\x12\0\x03"s + "\0\0\0\1"s + "\0"s +
           char(orientation) + "\0\0"s + "\0\0\0\0"s;
}

std::string jpeg(unsigned w, unsigned h, const std::string& app1 = "") {
    std::string j = "\xFF\xD8"s;
    if (!app1.empty()) j += "\xFF\xE1"s + be16(unsigned(app1.size()) + 2) + app1;
    j += "\xFF\xC0"s + be16(17) + "\x08"s + be16(h) + be16(w) + "\x03"s + std::string(9, '\1');
    return j + "\xFF\xDA"s;
}

std::string webp(const std::string& chunks) {
    return "RIFF"s + le32(unsigned(chunks.size()) + 4) + "WEBP" + chunks;
}

} // namespace

Test(image_header, jpeg) {
    ImageHeader h = parse(MediaFormat::jpeg, jpeg(4000, 3000));
    cr_expect_eq(h.width, 4000u);
    cr_expect_eq(h.height, 3000u);
    cr_expect_eq(h.orientation, 1u);
    cr_expect(!h.alpha);
    cr_expect_eq(parse(MediaFormat::jpeg, jpeg(10, 20, "Exif\0\0"s + tiff(6, true))).orientation,
                 6u);
    cr_expect_eq(parse(MediaFormat::jpeg, jpeg(10, 20, "Exif\0\0"s + tiff(8, false))).orientation,
                 8u);
    cr_expect_eq(parse(MediaFormat::jpeg, jpeg(10, 20, "Exif\0\0"s + tiff(9, true))).orientation,
                 1u); // out of range
    cr_expect_eq(
        parse(MediaFormat::jpeg, jpeg(10, 20, "Exif\0\0II*\0\xFF\xFF\xFF\x7F"s)).orientation,
        1u); // IFD offset past the end
    cr_expect_neq(refusal(MediaFormat::jpeg, jpeg(0, 20)), "");
    cr_expect_neq(refusal(MediaFormat::jpeg, "\xFF\xD8\xFF\xDA"s), "");
    cr_expect_neq(refusal(MediaFormat::jpeg, jpeg(10, 20).substr(0, 10)), "");
}

Test(image_header, png) {
    std::string ihdr = "\x89PNG\r\n\x1A\n\0\0\0\x0DIHDR"s + "\0\0\x01\0"s + "\0\0\0\x80"s;
    ImageHeader h = parse(MediaFormat::png, ihdr + "\x08\x02\0\0\0"s + "CRC!");
    cr_expect_eq(h.width, 256u);
    cr_expect_eq(h.height, 128u);
    cr_expect(!h.alpha);
    cr_expect(parse(MediaFormat::png, ihdr + "\x08\x06\0\0\0"s + "CRC!").alpha); // RGBA
    std::string trns = "\0\0\0\x06tRNS"s + std::string(6, '\0') + "CRC!";
    cr_expect(parse(MediaFormat::png, ihdr + "\x08\x02\0\0\0"s + "CRC!" + trns).alpha);
    std::string t = tiff(3, false);
    std::string exif = "\0\0\0"s + char(t.size()) + "eXIf" + t + "CRC!";
    cr_expect_eq(parse(MediaFormat::png, ihdr + "\x08\x02\0\0\0"s + "CRC!" + exif).orientation, 3u);
    cr_expect_neq(refusal(MediaFormat::png, ihdr + "\x08\x07\0\0\0"s + "CRC!"), ""); // type 7
    cr_expect_neq(refusal(MediaFormat::png, ihdr + "\x03\x02\0\0\0"s + "CRC!"), ""); // depth 3
    cr_expect_neq(refusal(MediaFormat::png, ihdr.substr(0, 20)), "");
}

Test(image_header, webp) {
    // VP8: frame tag, start code, 14-bit sizes.
    ImageHeader h = parse(MediaFormat::webp, webp("VP8 "s + le32(10) + "\x10\x02\0\x9D\x01\x2A"s +
                                                  "\x20\x03\x58\x02"s));
    cr_expect_eq(h.width, 800u);
    cr_expect_eq(h.height, 600u);
    cr_expect(!h.alpha);
    // VP8L: 0x2F, then (width-1) | (height-1) << 14 | alpha << 28.
    std::uint32_t bits = 99 | 49u << 14 | 1u << 28;
    h = parse(MediaFormat::webp, webp("VP8L"s + le32(5) + "\x2F"s + le32(bits)));
    cr_expect_eq(h.width, 100u);
    cr_expect_eq(h.height, 50u);
    cr_expect(h.alpha);
    // VP8X with alpha and an EXIF chunk.
    std::string x = "VP8X"s + le32(10) + "\x18\0\0\0"s + "\x0F\x27\0"s + "\x9F\x0F\0"s;
    std::string t = tiff(5, true);
    h = parse(MediaFormat::webp, webp(x + "EXIF" + le32(unsigned(t.size())) + t));
    cr_expect_eq(h.width, 10000u);
    cr_expect_eq(h.height, 4000u);
    cr_expect(h.alpha);
    cr_expect_eq(h.orientation, 5u);
    std::string animated = "VP8X"s + le32(10) + "\x02\0\0\0"s + "\x0F\0\0"s + "\x0F\0\0"s;
    cr_expect(refusal(MediaFormat::webp, webp(animated)).find("animated") != std::string::npos);
    cr_expect_neq(refusal(MediaFormat::webp, webp("VP8L"s + le32(5) + "\x2E\0\0\0\0"s)), "");
    cr_expect_neq(refusal(MediaFormat::webp, webp("JUNK"s + le32(0))), "");
}

Test(image_header, gif) {
    std::string screen = "GIF89a\x20\0\x10\0"s + "\x80\0\0"s + std::string(6, '\0'); // 2 colours
    std::string image = "\x2C"s + std::string(9, '\0') + "\x02\x02\x44\x01\0\x3B"s;
    ImageHeader h = parse(MediaFormat::gif, screen + image);
    cr_expect_eq(h.width, 32u);
    cr_expect_eq(h.height, 16u);
    cr_expect(!h.alpha);
    std::string control = "\x21\xF9\x04\x01\x0A\0\x01\0"s; // transparent colour 1
    cr_expect(parse(MediaFormat::gif, screen + control + image).alpha);
    cr_expect_neq(refusal(MediaFormat::gif, screen + "\x3B"s), "");          // no image
    cr_expect_neq(refusal(MediaFormat::gif, screen + "\x99"s), "");          // unknown block
    cr_expect_neq(refusal(MediaFormat::gif, "GIF89a\0\0\x10\0\0\0\0"s), ""); // zero width
}

Test(image_header, orientations) {
    const Orientation want[9] = {{0, false},  {0, false},  {0, true},  {180, false}, {180, true},
                                 {270, true}, {90, false}, {90, true}, {270, false}};
    for (unsigned v = 0; v <= 8; ++v) {
        cr_expect_eq(exif_orientation(v).rotation, want[v].rotation, "%u", v);
        cr_expect_eq(exif_orientation(v).mirrored, want[v].mirrored, "%u", v);
    }
    cr_expect_eq(exif_orientation(200).rotation, 0u);
}
