// The image pipeline on real pictures generated here with GStreamer (or written by hand: GIF,
// broken files), checked by decoding what it wrote.
#include "image_pipeline.hh"
#include "test_media_dir.hh"

#include <chrono>
#include <criterion/criterion.h>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <iterator>
#include <random>
#include <string>
#include <vector>

using namespace strata::transcoded;
namespace fs = std::filesystem;

namespace {

fs::path& g_dir = testing::media_dir;

void setup() {
    testing::make_media_dir("strata-image");
}
void teardown() {
    testing::remove_media_dir();
}

// Runs a gst-launch style description whose filesink is named "out" until EOS.
fs::path generate(const std::string& name, const std::string& description) {
    fs::path path = g_dir / name;
    GError* err = nullptr;
    GstElement* p = gst_parse_launch(description.c_str(), &err);
    cr_assert(p && !err, "%s: %s", description.c_str(), err ? err->message : "");
    GstElement* out = gst_bin_get_by_name(GST_BIN(p), "out");
    g_object_set(out, "location", path.c_str(), nullptr);
    gst_object_unref(out);
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(p);
    GstMessage* msg = gst_bus_timed_pop_filtered(
        bus, 20 * GST_SECOND, GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    cr_assert(msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS, "generating %s", name.c_str());
    gst_message_unref(msg);
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
    return path;
}

// A test picture: SMPTE bars, light grey at the top left, blue at the top right.
fs::path picture(const std::string& name, unsigned w, unsigned h, const std::string& encoder,
                 const std::string& format = "I420") {
    return generate(name, "videotestsrc num-buffers=1 ! video/x-raw,format=" + format +
                              ",width=" + std::to_string(w) + ",height=" + std::to_string(h) +
                              " ! " + encoder + " ! filesink name=out");
}

fs::path write(const std::string& name, const std::string& bytes) {
    fs::path p = g_dir / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
}

std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// An output decoded back to RGBA.
struct Decoded {
    unsigned width = 0, height = 0;
    std::vector<std::uint8_t> rgba;
    const std::uint8_t* at(unsigned x, unsigned y) const { return &rgba[(y * width + x) * 4]; }
};

Decoded decode(const fs::path& path) {
    std::string dec = path.extension() == ".webp" ? "webpdec" : "jpegdec";
    GstElement* p = gst_parse_launch(("filesrc name=src ! " + dec +
                                      " ! videoconvert ! video/x-raw,format=RGBA ! "
                                      "appsink name=sink sync=false")
                                         .c_str(),
                                     nullptr);
    cr_assert(p);
    GstElement* src = gst_bin_get_by_name(GST_BIN(p), "src");
    g_object_set(src, "location", path.c_str(), nullptr);
    gst_object_unref(src);
    GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "sink");
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND);
    cr_assert(s, "decoding %s", path.c_str());
    Decoded d;
    GstStructure* st = gst_caps_get_structure(gst_sample_get_caps(s), 0);
    int w = 0, h = 0;
    gst_structure_get_int(st, "width", &w);
    gst_structure_get_int(st, "height", &h);
    d.width = w;
    d.height = h;
    GstMapInfo map;
    cr_assert(gst_buffer_map(gst_sample_get_buffer(s), &map, GST_MAP_READ));
    // Rows are padded to 4 bytes; RGBA rows already are.
    d.rgba.assign(map.data, map.data + std::size_t(w) * h * 4);
    gst_buffer_unmap(gst_sample_get_buffer(s), &map);
    gst_sample_unref(s);
    gst_object_unref(sink);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
    return d;
}

bool grey(const std::uint8_t* px) {
    return px[0] > 150 && px[1] > 150 && px[2] > 150;
}
bool blue(const std::uint8_t* px) {
    return px[2] > 150 && px[0] < 90 && px[1] < 90;
}
bool red(const std::uint8_t* px) {
    return px[0] > 200 && px[1] < 60 && px[2] < 60;
}

ImageResult run(const fs::path& input, const ImageOptions& options = {}) {
    fs::path out = g_dir / ("out-" + input.filename().string());
    fs::create_directory(out);
    return process_image(input, out, options, nullptr);
}
fs::path out_of(const fs::path& input, const OutputFile& f) {
    return g_dir / ("out-" + input.filename().string()) / f.path;
}

// Two frames of w x h: all palette index first, then all second. LZW with 8-bit codes
// (minimum code size 7) and a clear code every 64 pixels, so no code ever grows wider.
std::string gif(unsigned w, unsigned h, std::uint8_t first, std::uint8_t second,
                bool transparent = false) {
    std::string g = "GIF89a";
    auto le16 = [&](unsigned v) { g += char(v & 0xFF), g += char(v >> 8); };
    le16(w), le16(h);
    g += "\xF6"; // global colour table of 128 entries
    g += '\0', g += '\0';
    const unsigned char palette[4][3] = {{0, 0, 0}, {255, 0, 0}, {0, 0, 255}, {0, 255, 0}};
    for (unsigned i = 0; i < 128; ++i)
        for (unsigned c = 0; c < 3; ++c)
            g += char(i < 4 ? palette[i][c] : 0);
    for (std::uint8_t index : {first, second}) {
        g += "\x21\xF9\x04";
        g += char(transparent ? 1 : 0);
        le16(10);
        g += char(transparent ? index : 0);
        g += '\0';
        g += '\x2C';
        le16(0), le16(0), le16(w), le16(h);
        g += '\0';
        std::string codes;
        for (unsigned i = 0; i < w * h; ++i) {
            if (i % 64 == 0) codes += char(128);
            codes += char(index);
        }
        codes += char(129);
        g += '\x07';
        for (std::size_t i = 0; i < codes.size(); i += 255) {
            std::string block = codes.substr(i, 255);
            g += char(block.size());
            g += block;
        }
        g += '\0';
    }
    return g + "\x3B";
}

std::uint32_t crc32(const std::string& bytes) {
    std::uint32_t c = 0xFFFFFFFF;
    for (unsigned char b : bytes) {
        c ^= b;
        for (int k = 0; k < 8; ++k)
            c = c & 1 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

std::string be32(std::uint32_t v) {
    return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

// A PNG whose IHDR (valid, CRC included) claims w x h, followed by a tiny IDAT.
std::string png_claiming(std::uint32_t w, std::uint32_t h) {
    std::string ihdr = "IHDR" + be32(w) + be32(h) + std::string("\x08\x02\0\0\0", 5);
    std::string idat = "IDAT" + std::string("\x78\x9C\x03\0\0\0\0\x01", 8);
    return std::string("\x89PNG\r\n\x1A\n", 8) + be32(13) + ihdr + be32(crc32(ihdr)) + be32(8) +
           idat + be32(crc32(idat));
}

// Refused as bad input, with a message, quickly.
void expect_refused(const fs::path& input, const char* needle, const ImageOptions& o = {}) {
    auto start = std::chrono::steady_clock::now();
    try {
        run(input, o);
        cr_assert_fail("%s was accepted", input.filename().c_str());
    } catch (const MediaError& e) {
        cr_log_info("%s: %s", input.filename().c_str(), e.what());
        cr_expect(e.permanent, "%s: %s", input.filename().c_str(), e.what());
        cr_expect(std::strstr(e.what(), needle), "%s: \"%s\" lacks \"%s\"",
                  input.filename().c_str(), e.what(), needle);
    }
    auto took = std::chrono::steady_clock::now() - start;
    cr_expect(took < std::chrono::seconds(5), "%s took too long", input.filename().c_str());
}

} // namespace

TestSuite(image, .init = setup, .fini = teardown, .timeout = 50);

Test(image, large_jpeg_fits_the_box) {
    fs::path in = picture("large.jpg", 3000, 2000, "jpegenc");
    std::vector<std::pair<double, std::string>> seen;
    fs::create_directory(g_dir / "out");
    ImageResult r = process_image(in, g_dir / "out", {},
                                  [&](double p, const std::string& s) { seen.emplace_back(p, s); });
    cr_expect_eq(r.source.format, MediaFormat::jpeg);
    cr_expect_eq(r.source.width, 3000u);
    cr_expect_eq(r.source.height, 2000u);
    cr_expect_eq(r.source.rotation, 0u);
    cr_assert_eq(r.files.size(), 2u);
    const OutputFile& d = r.files[0];
    cr_expect_eq(d.rendition, "display");
    cr_expect_eq(d.role, "image");
    cr_expect_eq(d.path, "display.jpg");
    cr_expect_eq(d.media_type, "image/jpeg");
    cr_expect_eq(d.width, 1620u); // the height limits: 2000 -> 1080
    cr_expect_eq(d.height, 1080u);
    Decoded dd = decode(g_dir / "out" / d.path);
    cr_expect_eq(dd.width, 1620u);
    cr_expect_eq(dd.height, 1080u);
    cr_expect(grey(dd.at(10, 10)) && blue(dd.at(1609, 10)), "picture not kept");
    const OutputFile& t = r.files[1];
    cr_expect_eq(t.rendition, "thumbnail");
    cr_expect_eq(t.path, "thumbnail.jpg");
    cr_expect_eq(t.width, 300u);
    cr_expect_eq(t.height, 300u);
    Decoded td = decode(g_dir / "out" / t.path);
    cr_expect_eq(td.width, 300u);
    cr_expect_eq(td.height, 300u);
    // Centre crop: the outer bars (grey, blue) are cut off on both sides.
    cr_expect(!grey(td.at(5, 5)) && !blue(td.at(294, 5)), "thumbnail is not the centre");
    cr_assert(!seen.empty());
    cr_expect_eq(seen.back().first, 100.0);
    for (std::size_t i = 1; i < seen.size(); ++i)
        cr_expect(seen[i].first >= seen[i - 1].first, "progress went back");
}

Test(image, wide_jpeg_limited_by_width) {
    fs::path in = picture("wide.jpg", 4000, 1000, "jpegenc");
    ImageResult r = run(in);
    cr_expect_eq(r.files[0].width, 1920u);
    cr_expect_eq(r.files[0].height, 480u);
    Decoded d = decode(out_of(in, r.files[0]));
    cr_expect_eq(d.width, 1920u);
    cr_expect_eq(d.height, 480u);
}

Test(image, small_png_not_upscaled) {
    fs::path in = picture("small.png", 200, 100, "pngenc", "RGB");
    ImageResult r = run(in);
    cr_expect_eq(r.source.format, MediaFormat::png);
    cr_assert_eq(r.files.size(), 2u);
    cr_expect_eq(r.files[0].media_type, "image/jpeg");
    Decoded d = decode(out_of(in, r.files[0]));
    cr_expect_eq(d.width, 200u);
    cr_expect_eq(d.height, 100u);
    // The thumbnail of a picture smaller than 300 is the centre square of its short side.
    Decoded t = decode(out_of(in, r.files[1]));
    cr_expect_eq(t.width, 100u);
    cr_expect_eq(t.height, 100u);
    cr_expect_eq(r.files[1].width, 100u);
}

Test(image, webp_decoded) {
    fs::path in = picture("photo.webp", 800, 600, "webpenc");
    ImageResult r = run(in);
    cr_expect_eq(r.source.format, MediaFormat::webp);
    cr_expect_eq(r.source.width, 800u);
    cr_expect_eq(r.files[0].media_type, "image/jpeg");
    Decoded d = decode(out_of(in, r.files[0]));
    cr_expect_eq(d.width, 800u);
    cr_expect_eq(d.height, 600u);
    cr_expect(grey(d.at(5, 5)) && blue(d.at(794, 5)));
    Decoded t = decode(out_of(in, r.files[1]));
    cr_expect_eq(t.width, 300u);
    cr_expect_eq(t.height, 300u);
}

Test(image, gif_first_frame) {
    fs::path in = write("two.gif", gif(40, 30, 1, 2)); // red, then blue
    ImageResult r = run(in);
    cr_expect_eq(r.source.format, MediaFormat::gif);
    cr_expect_eq(r.source.width, 40u);
    cr_expect_eq(r.source.height, 30u);
    cr_expect_eq(r.files[0].media_type, "image/jpeg");
    Decoded d = decode(out_of(in, r.files[0]));
    cr_expect_eq(d.width, 40u);
    cr_expect_eq(d.height, 30u);
    const std::uint8_t* px = d.at(20, 15);
    cr_expect(red(px), "not the first frame: %u,%u,%u", px[0], px[1], px[2]);
}

Test(image, transparent_gif_gives_webp) {
    fs::path in = write("clear.gif", gif(40, 30, 1, 2, true));
    ImageResult r = run(in);
    cr_expect_eq(r.files[0].path, "display.webp");
    Decoded d = decode(out_of(in, r.files[0]));
    cr_expect(d.at(20, 15)[3] < 50, "transparency lost: alpha %u", d.at(20, 15)[3]);
}

// Each EXIF orientation, from GStreamer's tag names (jifmux writes them as EXIF), and where
// the source's top-left (grey) and top-right (blue) corners must end up.
struct Case {
    const char* tag;
    unsigned rotation;
    bool mirrored;
    int grey_x, grey_y, blue_x, blue_y; // 0: near the low edge, 1: near the high edge
};
const Case cases[] = {
    {"rotate-0", 0, false, 0, 0, 1, 0},         {"flip-rotate-0", 0, true, 1, 0, 0, 0},
    {"rotate-180", 180, false, 1, 1, 0, 1},     {"flip-rotate-180", 180, true, 0, 1, 1, 1},
    {"flip-rotate-270", 270, true, 0, 0, 0, 1}, {"rotate-90", 90, false, 1, 0, 1, 1},
    {"flip-rotate-90", 90, true, 1, 1, 1, 0},   {"rotate-270", 270, false, 0, 1, 0, 0},
};

Test(image, exif_orientations) {
    for (const Case& c : cases) {
        fs::path in = picture(std::string(c.tag) + ".jpg", 320, 160,
                              std::string("taginject tags=\"image-orientation=") + c.tag +
                                  "\" ! jpegenc ! jifmux");
        cr_assert(read(in).find(std::string("Exif\0\0", 6)) != std::string::npos);
        ImageResult r = run(in);
        bool turned = c.rotation == 90 || c.rotation == 270;
        unsigned w = turned ? 160 : 320, h = turned ? 320 : 160;
        cr_expect_eq(r.source.rotation, c.rotation, "%s", c.tag);
        cr_expect_eq(r.source.mirrored, c.mirrored, "%s", c.tag);
        cr_expect_eq(r.source.width, w, "%s", c.tag);
        cr_expect_eq(r.source.height, h, "%s", c.tag);
        Decoded d = decode(out_of(in, r.files[0]));
        cr_assert_eq(d.width, w, "%s", c.tag);
        cr_assert_eq(d.height, h, "%s", c.tag);
        auto x = [&](int edge) { return edge ? w - 8 : 8u; };
        auto y = [&](int edge) { return edge ? h - 8 : 8u; };
        cr_expect(grey(d.at(x(c.grey_x), y(c.grey_y))), "%s: grey corner", c.tag);
        cr_expect(blue(d.at(x(c.blue_x), y(c.blue_y))), "%s: blue corner", c.tag);
    }
}

Test(image, metadata_stripped) {
    fs::path in = picture("tagged.jpg", 640, 480,
                          "taginject tags=\"image-orientation=rotate-90,artist=someone\" ! "
                          "jpegenc ! jifmux");
    std::string src = read(in);
    cr_assert(src.find(std::string("Exif\0\0", 6)) != std::string::npos);
    cr_assert(src.find("http://ns.adobe.com/xap/") != std::string::npos); // XMP in the source
    ImageResult r = run(in);
    for (const OutputFile& f : r.files) {
        std::string out = read(out_of(in, f));
        cr_assert(out.size() > 100);
        cr_expect(out.find(std::string("Exif\0\0", 6)) == std::string::npos, "EXIF kept");
        cr_expect(out.find("http://ns.adobe.com/xap/") == std::string::npos, "XMP kept");
        cr_expect(out.find("ICC_PROFILE") == std::string::npos, "ICC kept");
        cr_expect(out.find("someone") == std::string::npos, "artist kept");
    }
}

Test(image, alpha_png_gives_webp) {
    fs::path in = generate("alpha.png", "videotestsrc num-buffers=1 ! "
                                        "video/x-raw,width=640,height=400 ! alpha alpha=0.5 ! "
                                        "pngenc ! filesink name=out");
    ImageResult r = run(in);
    cr_assert_eq(r.files.size(), 2u);
    cr_expect_eq(r.files[0].path, "display.webp");
    cr_expect_eq(r.files[0].media_type, "image/webp");
    cr_expect_eq(r.files[1].path, "thumbnail.webp");
    std::string out = read(out_of(in, r.files[0]));
    cr_assert(out.compare(0, 4, "RIFF") == 0 && out.compare(8, 4, "WEBP") == 0);
    Decoded d = decode(out_of(in, r.files[0]));
    cr_expect_eq(d.width, 640u);
    cr_expect_eq(d.height, 400u);
    unsigned a = d.at(100, 100)[3];
    cr_expect(a > 100 && a < 160, "alpha %u, not about half", a);
    Decoded t = decode(out_of(in, r.files[1]));
    cr_expect_eq(t.width, 300u);
    cr_expect(t.at(150, 150)[3] < 160, "thumbnail lost its transparency");
}

Test(image, bad_inputs_refused) {
    expect_refused(write("empty.jpg", ""), "empty");
    expect_refused(write("notes.jpg", "this is a text file, not a picture\n"), "not an image");
    expect_refused(write("movie.png", std::string("\0\0\0\x20"
                                                  "ftypisom",
                                                  12)),
                   "mp4");
    std::mt19937 rng(7);
    std::string noise(5000, '\0');
    for (char& c : noise)
        c = char(rng());
    expect_refused(write("random.jpg", noise), "not an image");
    // A JPEG start then noise: past the sniffer, refused by the header parser.
    expect_refused(write("noise.jpg", "\xFF\xD8\xFF\xE0" + noise), "invalid jpeg");

    std::string jpeg = read(picture("whole.jpg", 640, 480, "jpegenc"));
    expect_refused(write("truncated.jpg", jpeg.substr(0, jpeg.size() / 2)), "truncated");
    expect_refused(write("header-only.jpg", jpeg.substr(0, 300)), "invalid jpeg");

    expect_refused(write("bomb.png", png_claiming(40000, 40000)), "over the limit");
    expect_refused(write("zero.png", png_claiming(0, 10)), "zero");
    std::string png = read(picture("whole.png", 320, 240, "pngenc", "RGB"));
    std::string corrupt = png;
    for (std::size_t i = 100; i < 400 && i < corrupt.size(); ++i)
        corrupt[i] ^= 0x55;
    expect_refused(write("corrupt.png", corrupt), "cannot decode the png");
    expect_refused(write("truncated.png", png.substr(0, png.size() / 2)), "png");

    std::string gif_bytes = gif(40, 30, 1, 2);
    expect_refused(write("screen-only.gif", gif_bytes.substr(0, 13)), "gif");
    expect_refused(write("broken.webp", std::string("RIFF\x20\0\0\0WEBPVP8 \x10\0\0\0", 20)),
                   "invalid webp");

    // A real picture over a lower limit.
    ImageOptions small;
    small.max_pixels = 100'000;
    expect_refused(picture("big.jpg", 400, 300, "jpegenc"), "over the limit", small);
}

Test(image, slivers) {
    // Transparent but too small for webpenc (16 pixels a side): JPEG.
    fs::path tiny = generate("tiny.png", "videotestsrc num-buffers=1 ! "
                                         "video/x-raw,width=8,height=8 ! alpha alpha=0.5 ! "
                                         "pngenc ! filesink name=out");
    ImageResult r = run(tiny);
    cr_expect_eq(r.files[0].path, "display.jpg");
    cr_expect_eq(decode(out_of(tiny, r.files[0])).width, 8u);
    // 7001x3 fits as 1920x1, never 0 high.
    fs::path flat = picture("flat.png", 7001, 3, "pngenc", "RGB");
    r = run(flat);
    Decoded d = decode(out_of(flat, r.files[0]));
    cr_expect_eq(d.width, 1920u);
    cr_expect_eq(d.height, 1u);
    Decoded t = decode(out_of(flat, r.files[1]));
    cr_expect_eq(t.width, 3u);
    cr_expect_eq(t.height, 3u);
}
