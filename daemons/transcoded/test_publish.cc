// What the worker hands to metad: playlists rewritten to content addresses, renditions in
// order, metad events turned into jobs, and the settings' config and JSON forms.
#include "job.hh"
#include "publish.hh"
#include "settings.hh"

#include <criterion/criterion.h>
#include <filesystem>
#include <fstream>
#include <map>

using namespace strata;
using namespace strata::transcoded;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

std::string read(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string hex_of(std::size_t n) {
    std::string s = std::to_string(n);
    return std::string(64 - s.size(), '0') + s;
}

} // namespace

Test(publish, playlist_uris_become_addresses) {
    std::string in = "#EXTM3U\n#EXTINF:6.0,\r\nseg0.ts\r\n#EXTINF:2.0,\nseg1.ts\n#EXT-X-ENDLIST\n";
    std::string out = rewrite_playlist(in, [](const std::string& uri) {
        return uri == "seg0.ts" ? std::string("A") : uri == "seg1.ts" ? "B" : "";
    });
    cr_expect_str_eq(out.c_str(), "#EXTM3U\n#EXTINF:6.0,\nA\n#EXTINF:2.0,\nB\n#EXT-X-ENDLIST\n");
    cr_expect_throw(rewrite_playlist("#EXTM3U\nother.ts\n", [](auto&) { return std::string(); }),
                    MediaError);
}

Test(publish, a_video_ladder_is_stored_bottom_up) {
    fs::path dir = fs::temp_directory_path() / ("strata-publish-" + std::to_string(getpid()));
    fs::remove_all(dir);
    write(dir / "360p/seg00000.ts", "s0");
    write(dir / "360p/seg00001.ts", "s1");
    write(dir / "360p/index.m3u8",
          "#EXTM3U\n#EXTINF:6,\nseg00000.ts\n#EXTINF:2,\nseg00001.ts\n#EXT-X-ENDLIST\n");
    write(dir / "master.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n");
    write(dir / "poster.jpg", "jpeg");
    write(dir / "thumbs/00000.jpg", "t0");
    write(dir / "thumbs/00001.jpg", "t1");
    std::vector<OutputFile> files = {
        {"hls", "master", "master.m3u8", "application/vnd.apple.mpegurl"},
        {"360p", "playlist", "360p/index.m3u8", "application/vnd.apple.mpegurl", 640, 360},
        {"360p", "segment", "360p/seg00000.ts", "video/mp2t", 640, 360, 0, 6},
        {"360p", "segment", "360p/seg00001.ts", "video/mp2t", 640, 360, 6, 2},
        {"poster", "image", "poster.jpg", "image/jpeg", 640, 360},
        {"thumbnails", "image", "thumbs/00000.jpg", "image/jpeg", 160, 90, 0},
        {"thumbnails", "image", "thumbs/00001.jpg", "image/jpeg", 160, 90, 10},
    };
    std::vector<std::string> order;
    std::map<std::string, std::string> stored; // address -> content when stored
    auto store = [&](const fs::path& p, const std::string&) {
        order.push_back(fs::relative(p, dir).string());
        std::string id = hex_of(order.size());
        stored[id] = read(p);
        return id;
    };
    MediaInfo src;
    src.format = MediaFormat::mp4;
    src.width = 640;
    src.height = 360;
    src.duration_seconds = 8;
    src.video_codec = "h264";
    auto r = publish(src, std::string(64, 'f'), files, dir, store);
    // Segments before the playlist that names them, the playlist before the master.
    cr_assert_eq(order.size(), 7u);
    cr_expect_str_eq(order[0].c_str(), "360p/seg00000.ts");
    cr_expect_str_eq(order[2].c_str(), "360p/index.m3u8");
    cr_expect_str_eq(order[3].c_str(), "master.m3u8");
    std::string want =
        "#EXTM3U\n#EXTINF:6,\n" + hex_of(1) + "\n#EXTINF:2,\n" + hex_of(2) + "\n#EXT-X-ENDLIST\n";
    cr_expect_str_eq(stored[hex_of(3)].c_str(), want.c_str());
    cr_expect(stored[hex_of(4)].find(hex_of(3)) != std::string::npos, "the master names it");
    cr_assert_eq(r.size(), 5u, "%s", r.dump().c_str());
    cr_expect_eq(r[0]["name"], "source");
    cr_expect_eq(r[0]["manifest"], std::string(64, 'f'));
    cr_expect_eq(r[0]["duration"], 8.0);
    cr_expect_eq(r[1]["name"], "hls");
    cr_expect_eq(r[1]["manifest"], hex_of(4));
    cr_expect_eq(r[1]["rungs"], nlohmann::json::array({"360p"}));
    cr_expect_eq(r[2]["name"], "360p");
    cr_expect_eq(r[2]["segments"].size(), 2u);
    cr_expect_eq(r[2]["segments"][1], hex_of(2));
    cr_expect_eq(r[2]["duration"], 8.0);
    cr_expect_eq(r[3]["name"], "poster");
    cr_expect_eq(r[3]["bytes"], 4);
    cr_expect_eq(r.back()["name"], "thumbnails");
    cr_expect_eq(r.back()["frames"].size(), 2u);
    cr_expect_eq(r.back()["frames"][1]["time"], 10.0);
    fs::remove_all(dir);
}

Test(events, a_processing_file_created_is_a_job) {
    nlohmann::json e = {{"id", "9"},
                        {"type", "file.created"},
                        {"node", "42"},
                        {"data",
                         {{"version", 3u},
                          {"size", 1000u},
                          {"type", "video/mp4"},
                          {"manifest", std::string(64, 'a')},
                          {"state", "processing"}}}};
    auto job = job_of_event(e);
    cr_assert(job.has_value());
    cr_expect_eq(job->file_id, 42u);
    cr_expect_eq(job->version, 3u);
    cr_expect(job->kind == Kind::video);
    cr_expect_eq(job->bytes, 1000u);
    e["data"]["type"] = "image/png";
    cr_expect(job_of_event(e)->kind == Kind::image);
    auto ready = e;
    ready["data"]["state"] = "ready";
    cr_expect(!job_of_event(ready), "a ready file needs nothing");
    auto text = e;
    text["data"]["type"] = "text/plain";
    cr_expect(!job_of_event(text), "neither image nor video");
    auto other = e;
    other["type"] = "share.added";
    cr_expect(!job_of_event(other));
    auto bad = e;
    bad["node"] = 42;
    cr_expect_throw(job_of_event(bad), std::invalid_argument);
    bad["node"] = "-1";
    cr_expect_throw(job_of_event(bad), std::invalid_argument);
    auto no_manifest = e;
    no_manifest["data"].erase("manifest");
    cr_expect_throw(job_of_event(no_manifest), std::invalid_argument);
}

Test(settings, rungs_and_their_errors) {
    cr_expect_str_eq(check_rung("720p 720 2800").c_str(), "");
    Rung r = parse_rung("  720p   720 2800 ");
    cr_expect_str_eq(r.name.c_str(), "720p");
    cr_expect_eq(r.height, 720u);
    cr_expect_eq(r.video_kbps, 2800u);
    for (const char* bad : {"720p 720", "720p 721 2800", "720p 720 10", "720P 720 2800",
                            "a/b 720 2800", "720p 720 2800 x", "720p -720 2800", ""})
        cr_expect_str_neq(check_rung(bad).c_str(), "", "%s accepted", bad);
    cr_expect_throw(parse_rung("x"), std::invalid_argument);
}

Test(settings, the_worker_gets_them_back_as_json) {
    PipelineSettings p;
    p.blockd = "unix:/tmp/b.sock";
    p.video.ladder = {{"a", 480, 900}, {"b", 240, 300}};
    p.video.preset = "fast";
    p.image.quality = 70;
    p.image.max_pixels = 1234;
    auto back = pipeline_settings_of(to_json(p));
    cr_expect_str_eq(back.blockd.c_str(), "unix:/tmp/b.sock");
    cr_assert_eq(back.video.ladder.size(), 2u);
    cr_expect_str_eq(back.video.ladder[1].name.c_str(), "b");
    cr_expect_eq(back.video.ladder[1].height, 240u);
    cr_expect_str_eq(back.video.preset.c_str(), "fast");
    cr_expect_eq(back.image.quality, 70u);
    cr_expect_eq(back.image.max_pixels, 1234u);
    auto broken = to_json(p);
    broken["video"].erase("ladder");
    cr_expect_throw(pipeline_settings_of(broken), std::invalid_argument);
}
