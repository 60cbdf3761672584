// Unit tests of the manifest encoding (manifest.hh) and media type helpers (media_type.hh).

#include "manifest.hh"
#include "media_type.hh"

#include <criterion/criterion.h>
#include <string>

using namespace strata::blockd;

static const std::string H1(64, 'a'), H2(64, 'b'), WHOLE(64, 'c');

Test(manifest, roundtrip_with_and_without_type) {
    Manifest m;
    m.size = 7;
    m.sha256 = WHOLE;
    m.blocks = {{H1, 3}, {H2, 4}};
    auto plain = Manifest::decode(m.encode());
    cr_assert(plain.has_value());
    cr_expect(plain->type.empty() && plain->blocks.size() == 2 && plain->size == 7);
    m.type = "video/mp4";
    std::string text = m.encode();
    cr_expect(text.find("\ntype video/mp4\n") != std::string::npos, "%s", text.c_str());
    auto typed = Manifest::decode(text);
    cr_assert(typed.has_value());
    cr_expect_eq(typed->type, "video/mp4");
    cr_expect_eq(typed->blocks[1].sha256, H2);
}

Test(manifest, rejects_damage) {
    std::string head = "strata-manifest 1\nsize 3\nsha256 " + WHOLE + "\n";
    std::string block = "block " + H1 + " 3\n";
    cr_expect(Manifest::decode(head + block).has_value());
    cr_expect(Manifest::decode(head + "type image/png\n" + block).has_value());
    cr_expect(!Manifest::decode(head + "type Image/PNG\n" + block), "types are stored lowercase");
    cr_expect(!Manifest::decode(head + "type image/png; x=1\n" + block), "no parameters");
    cr_expect(!Manifest::decode(head + "type nonsense\n" + block));
    cr_expect(!Manifest::decode(head + block + "type image/png\n"), "type only before blocks");
    cr_expect(!Manifest::decode(head + "block " + H1 + " 2\n"), "sizes must add up");
    cr_expect(!Manifest::decode(head + "block " + H1 + " 3"), "every line ends with a newline");
    cr_expect(!Manifest::decode("strata-manifest 2\nsize 3\nsha256 " + WHOLE + "\n" + block));
}

Test(media_type, normalize_and_classify) {
    cr_expect_eq(normalize_media_type("Video/MP4").value_or(""), "video/mp4");
    cr_expect_eq(normalize_media_type("application/vnd.apple.mpegurl").value_or(""),
                 "application/vnd.apple.mpegurl");
    cr_expect(!normalize_media_type("text/html\r\nX-Evil: 1"));
    cr_expect(!normalize_media_type("text/html; charset=utf-8"));
    cr_expect(!normalize_media_type("/png"));
    cr_expect(!normalize_media_type("image/"));
    cr_expect(!normalize_media_type("image"));
    cr_expect(is_active_media_type("text/html") && is_active_media_type("image/svg+xml") &&
              is_active_media_type("application/javascript"));
    cr_expect(!is_active_media_type("image/png") && !is_active_media_type("text/plain") &&
              !is_active_media_type("video/mp4"));
    std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    cr_expect_eq(detect_media_type(png), "image/png");
    cr_expect_eq(detect_media_type("plain words, nothing more\n"), "text/plain");
}
