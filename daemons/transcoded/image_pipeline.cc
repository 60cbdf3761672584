// The image pipeline's decisions: what to refuse before decoding, which format to write, the
// renditions' sizes. The decoding and encoding are in image_codec.cc.
#include "image_pipeline.hh"

#include "image_codec.hh"
#include "image_header.hh"
#include "sniff.hh"

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <string>

namespace strata::transcoded {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Generous for pictures within max_pixels on a busy machine; a stuck pipeline ends here.
constexpr auto decode_timeout = 120s;
constexpr auto encode_timeout = 60s;

std::vector<std::uint8_t> read_head(const fs::path& input) {
    std::ifstream in(input, std::ios::binary);
    if (!in) throw MediaError("cannot open " + input.string(), false);
    std::vector<std::uint8_t> head(image_header_prefix_bytes);
    in.read(reinterpret_cast<char*>(head.data()), std::streamsize(head.size()));
    if (in.bad()) throw MediaError("cannot read " + input.string(), false);
    head.resize(std::size_t(in.gcount()));
    return head;
}

// libjpeg decodes a truncated JPEG with a warning and grey where the data stops; refuse it
// instead. The end marker FF D9 cannot occur inside entropy-coded data (FF is stuffed), so
// one after the frame header means the file was written to its end. Data appended after the
// picture (a phone's motion photo) is allowed.
bool jpeg_has_end(const fs::path& input, std::size_t from) {
    std::ifstream in(input, std::ios::binary);
    if (!in) throw MediaError("cannot open " + input.string(), false);
    in.seekg(std::streamoff(from));
    std::vector<char> buf(1 << 16);
    bool after_ff = false;
    while (in) {
        in.read(buf.data(), std::streamsize(buf.size()));
        for (std::streamsize i = 0; i < in.gcount(); ++i) {
            auto c = static_cast<unsigned char>(buf[std::size_t(i)]);
            if (after_ff && c == 0xD9) return true;
            after_ff = c == 0xFF;
        }
    }
    if (in.bad()) throw MediaError("cannot read " + input.string(), false);
    return false;
}

struct Size {
    unsigned width, height;
};

// The largest size with the source's aspect that fits inside the box; never larger than the
// source.
Size fit_inside(Size src, unsigned max_w, unsigned max_h) {
    if (src.width <= max_w && src.height <= max_h) return src;
    std::uint64_t w = src.width, h = src.height;
    Size out;
    if (w * max_h >= h * max_w) { // the width limits
        out = {max_w, unsigned((h * max_w + w / 2) / w)};
    } else {
        out = {unsigned((w * max_h + h / 2) / h), max_h};
    }
    out.width = std::clamp(out.width, 1u, max_w);
    out.height = std::clamp(out.height, 1u, max_h);
    return out;
}

// The centre square of the picture, scaled to side (or to the short side when smaller).
Rendition cover_square(Size src, unsigned side) {
    unsigned s = std::min(src.width, src.height);
    Rendition r;
    r.crop_left = (src.width - s) / 2;
    r.crop_right = src.width - s - r.crop_left;
    r.crop_top = (src.height - s) / 2;
    r.crop_bottom = src.height - s - r.crop_top;
    r.width = r.height = std::min(side, s);
    return r;
}

void write_file(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    out.close();
    if (!out) throw MediaError("cannot write " + path.string(), false);
}

} // namespace

ImageResult process_image(const fs::path& input, const fs::path& out_dir,
                          const ImageOptions& options, const ProgressFn& progress) {
    if (!options.max_width || !options.max_height || !options.thumbnail_size)
        throw std::invalid_argument("image options: sizes must be above zero");
    double percent = 0;
    std::string stage = "probing";
    auto report = [&](double p, const char* s) {
        percent = p;
        stage = s;
        if (progress) progress(percent, stage);
    };
    Tick tick = [&] {
        if (progress) progress(percent, stage);
    };
    report(0, "probing");

    std::vector<std::uint8_t> head = read_head(input);
    MediaFormat format =
        sniff_bytes(std::span(head).first(std::min(head.size(), sniff_prefix_bytes)));
    if (format == MediaFormat::empty) throw MediaError("the file is empty");
    if (!is_image_format(format))
        throw MediaError(format == MediaFormat::unknown
                             ? std::string("not an image: unknown format")
                             : std::string("not an image: ") + format_name(format));
    ImageHeader header = parse_image_header(format, head);
    std::uint64_t pixels = std::uint64_t(header.width) * header.height;
    if (pixels > options.max_pixels)
        throw MediaError(std::string(format_name(format)) + " image of " +
                         std::to_string(header.width) + "x" + std::to_string(header.height) +
                         " has " + std::to_string(pixels) + " pixels, over the limit of " +
                         std::to_string(options.max_pixels));
    if (format == MediaFormat::jpeg && !jpeg_has_end(input, header.frame_end))
        throw MediaError("invalid jpeg image: truncated (no end marker)");

    std::error_code ec;
    std::uintmax_t file_size = fs::file_size(input, ec);
    if (ec) throw MediaError("cannot read " + input.string() + ": " + ec.message(), false);

    report(10, "decoding");
    Picture pic = decode_picture(input, file_size, header, decode_timeout, tick);
    if (std::uint64_t(pic.width) * pic.height > options.max_pixels)
        throw MediaError("decoded picture larger than its header said");

    Orientation o = exif_orientation(header.orientation);
    ImageResult result;
    result.source.format = format;
    result.source.width = pic.width;
    result.source.height = pic.height;
    result.source.rotation = o.rotation;
    result.source.mirrored = o.mirrored;

    unsigned quality = std::min(options.quality, 100u);
    Size src{pic.width, pic.height};

    auto make = [&](const char* name, Rendition r) {
        // JPEG has no transparency: WebP (lossy, the same quality) keeps it at a similar
        // size. GStreamer's webpenc takes 16 to 16383 pixels a side; a rendition outside that
        // (a sliver of a picture) is JPEG, its transparency flattened.
        r.webp = header.alpha && r.width >= 16 && r.height >= 16 && r.width <= 16383 &&
                 r.height <= 16383;
        r.quality = quality;
        std::string file = std::string(name) + (r.webp ? ".webp" : ".jpg");
        write_file(out_dir / file, encode_picture(pic, r, encode_timeout, tick));
        OutputFile f;
        f.rendition = name;
        f.role = "image";
        f.path = file;
        f.media_type = r.webp ? "image/webp" : "image/jpeg";
        f.width = r.width;
        f.height = r.height;
        result.files.push_back(std::move(f));
    };

    report(50, "encoding");
    Size display = fit_inside(src, options.max_width, options.max_height);
    Rendition whole;
    whole.width = display.width;
    whole.height = display.height;
    make("display", whole);
    report(80, "thumbnail");
    make("thumbnail", cover_square(src, options.thumbnail_size));
    report(100, "done");
    return result;
}

} // namespace strata::transcoded
