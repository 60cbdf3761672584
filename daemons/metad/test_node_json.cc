// Unit tests of metad's direct JSON writer: string escaping (the fast copy of plain ASCII
// runs and every case around it) and whole nodes, each checked by parsing the text back.
#include "node_json.hh"
#include "store_db.hh"

#include <criterion/criterion.h>
#include <nlohmann/json.hpp>
#include <string>

using namespace strata::metad;
using nlohmann::json;

static std::string json_literal(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

Test(node_json, plain_ascii_is_copied_as_is) {
    cr_assert_eq(json_literal(""), "\"\"");
    cr_assert_eq(json_literal("file00042.txt"), "\"file00042.txt\"");
    std::string all; // every printable ASCII byte but the two that need escapes
    for (int c = 0x20; c < 0x7f; ++c)
        if (c != '"' && c != '\\') all.push_back(static_cast<char>(c));
    all.push_back('\x7f'); // DEL is allowed unescaped in JSON
    cr_assert_eq(json_literal(all), "\"" + all + "\"");
}

Test(node_json, quotes_backslashes_and_controls_are_escaped) {
    cr_assert_eq(json_literal("a\"b"), "\"a\\\"b\"");
    cr_assert_eq(json_literal("\\"), "\"\\\\\"");
    cr_assert_eq(json_literal(std::string("a\0b", 3)), "\"a\\u0000b\"");
    cr_assert_eq(json_literal("\n\t\x1f"), "\"\\u000a\\u0009\\u001f\"");
    cr_assert_eq(json_literal("x\"\"y"), "\"x\\\"\\\"y\"");
}

Test(node_json, utf8_is_kept_and_invalid_bytes_become_replacement_characters) {
    cr_assert_eq(json_literal("Café Lisboa"), "\"Café Lisboa\"");
    cr_assert_eq(json_literal("日本語.jpg"), "\"日本語.jpg\"");
    cr_assert_eq(json_literal("😀"), "\"😀\"");
    cr_assert_eq(json_literal("a\xff"
                              "b"),
                 "\"a\xef\xbf\xbd"
                 "b\"");
    cr_assert_eq(json_literal("\xc3"), "\"\xef\xbf\xbd\""); // truncated sequence at the end
    cr_assert_eq(json_literal("\xed\xa0\x80"),
                 "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");               // surrogate
    cr_assert_eq(json_literal("\xc0\xaf"), "\"\xef\xbf\xbd\xef\xbf\xbd\""); // overlong
}

Test(node_json, every_byte_string_parses_back) {
    // Each byte value alone and between ASCII runs: the writer's output is always valid
    // JSON, and a valid UTF-8 input comes back unchanged.
    for (int c = 0; c < 256; ++c) {
        std::string s = "ab";
        s.push_back(static_cast<char>(c));
        s += "cd";
        json j = json::parse(json_literal(s));
        if (c < 0x80)
            cr_assert_eq(j.get<std::string>(), s, "byte %d", c);
        else
            cr_assert_eq(j.get<std::string>(),
                         "ab\xef\xbf\xbd"
                         "cd",
                         "byte %d", c);
    }
}

Test(node_json, a_node_is_a_json_object_with_its_fields) {
    Node n;
    n.id = 121424307485151233ull;
    n.parent = 7;
    n.owner = n.creator = 3;
    n.name = "say \"hi\"\n.txt";
    n.kind = NodeKind::file;
    n.version = 4;
    n.created = 1000;
    n.modified = 2000;
    n.tags = {"a", "b\\c"};
    n.size = 4096;
    n.media_type = "text/plain";
    std::string out;
    append_node_json(out, n);
    json j = json::parse(out);
    cr_assert_eq(j.at("id").get<std::string>(), "121424307485151233");
    cr_assert_eq(j.at("parent").get<std::string>(), "7");
    cr_assert_eq(j.at("name").get<std::string>(), n.name);
    cr_assert_eq(j.at("kind").get<std::string>(), "file");
    cr_assert_eq(j.at("version").get<std::uint64_t>(), 4u);
    cr_assert_eq(j.at("tags"), json::array({"a", "b\\c"}));
    cr_assert_eq(j.at("size").get<std::uint64_t>(), 4096u);
    cr_assert_eq(j.at("type").get<std::string>(), "text/plain");
}

// Listings write nodes from their stored records in place: the same JSON as from a Node,
// and the view reads back every field.
Test(node_json, a_stored_record_viewed_in_place_writes_the_same_json) {
    Node n;
    n.id = 99;
    n.parent = 7;
    n.owner = 3;
    n.creator = 5;
    n.name = "Café \"x\".mp4";
    n.kind = NodeKind::file;
    n.version = 2;
    n.created = -5;
    n.modified = 2000;
    n.trashed = 3000;
    n.tags = {"trip", "é", ""};
    n.size = 1u << 20;
    n.media_type = "video/mp4";
    n.sha256 = std::string(64, 'a');
    n.manifest = std::string(64, 'b');
    n.state = FileState::processing;
    n.renditions = json::array({{{"name", "720p"}, {"bytes", 12}}});
    for (bool folder : {false, true}) {
        if (folder) {
            n.kind = NodeKind::folder;
            n.tags.clear();
            n.renditions = json::array();
        }
        std::string record = encode_node(n);
        NodeView v;
        cr_assert(view_node(record, v));
        std::string from_node, from_view;
        append_node_json(from_node, n);
        append_node_json(from_view, v);
        cr_expect_eq(from_view, from_node, "%s", from_view.c_str());
        Node back = node_of(v);
        cr_expect(back.name == n.name && back.tags == n.tags && back.renditions == n.renditions &&
                  back.trashed == n.trashed && back.creator == n.creator && back.state == n.state &&
                  back.created == n.created);
    }
    NodeView v;
    cr_expect(!view_node(R"({"id":5})", v), "a JSON-era record is not viewed in place");
    std::string record = encode_node(n);
    cr_expect_throw(view_node(std::string_view(record).substr(0, record.size() - 2), v),
                    std::runtime_error);
}
