#include "address_list.hh"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace strata::gatewayd {

std::optional<Address> parse_address(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    Address a{};
    if (inet_pton(AF_INET6, buf, a.data()) == 1) return a;
    in_addr v4{};
    if (inet_pton(AF_INET, buf, &v4) != 1) return std::nullopt;
    a[10] = a[11] = 0xff;
    std::memcpy(a.data() + 12, &v4, 4);
    return a;
}

bool Cidr::contains(const Address& a) const {
    int full = bits / 8, rest = bits % 8;
    if (std::memcmp(a.data(), base.data(), static_cast<std::size_t>(full)) != 0) return false;
    if (rest == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[static_cast<std::size_t>(full)] & mask) == base[static_cast<std::size_t>(full)];
}

Cidr parse_cidr(std::string_view text) {
    auto fail = [&](std::string_view why) -> Cidr {
        throw std::invalid_argument(std::string(why) + ": \"" + std::string(text) + "\"");
    };
    auto slash = text.find('/');
    auto addr = parse_address(text.substr(0, slash));
    if (!addr) return fail("not an IPv4 or IPv6 address");
    bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
    int max = v4 ? 32 : 128;
    int bits = max;
    if (slash != std::string_view::npos) {
        std::string_view n = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), bits);
        if (n.empty() || ec != std::errc() || end != n.data() + n.size() || bits < 0 || bits > max)
            return fail(v4 ? "an IPv4 prefix length is 0-32" : "an IPv6 prefix length is 0-128");
    }
    Cidr c{*addr, v4 ? bits + 96 : bits};
    Cidr masked = c;
    for (int i = c.bits; i < 128; ++i)
        masked.base[static_cast<std::size_t>(i / 8)] &=
            static_cast<std::uint8_t>(~(0x80 >> (i % 8)));
    if (masked.base != c.base) return fail("address bits are set past the prefix length");
    return c;
}

AddressList AddressList::parse(std::string_view list) {
    AddressList out;
    std::size_t s = 0;
    while (s <= list.size()) {
        auto comma = list.find(',', s);
        out.add(parse_cidr(list.substr(s, comma == list.npos ? list.npos : comma - s)));
        if (comma == list.npos) break;
        s = comma + 1;
    }
    return out;
}

bool AddressList::contains(const Address& a) const {
    for (const auto& b : blocks_)
        if (b.contains(a)) return true;
    return false;
}

bool AddressFilter::admits(std::string_view remote) const {
    if (empty() || remote.empty()) return true;
    auto a = parse_address(remote);
    if (!a) return false; // a TCP client whose address we cannot read is nobody we allowed
    if (deny.contains(*a)) return false;
    return allow.empty() || allow.contains(*a);
}

} // namespace strata::gatewayd
