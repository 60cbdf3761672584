// Client address lists for the gateway's filters: CIDR blocks, IPv4 and IPv6, as in route
// options allow=10.0.0.0/8,2001:db8::/32 and deny=..., and [public] allow/deny.
// IPv4 clients that reach an IPv6 socket ("::ffff:192.0.2.1") match IPv4 blocks, so one
// list serves both families whatever the listener is.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::gatewayd {

// An address as 16 bytes, IPv4 mapped into ::ffff:0:0/96.
using Address = std::array<std::uint8_t, 16>;

// Parses "192.0.2.1", "2001:db8::1" or "::ffff:192.0.2.1"; nullopt when it is none.
std::optional<Address> parse_address(std::string_view text);

struct Cidr {
    Address base{}; // host bits cleared
    int bits = 0;   // of the 128-bit mapped form
    bool contains(const Address& a) const;
};

// "10.0.0.0/8", "2001:db8::/32", or a single address (a /32 or /128). Host bits set below
// the prefix ("10.0.0.1/8") are refused: they usually mean a typo. Throws
// std::invalid_argument naming the text.
Cidr parse_cidr(std::string_view text);

class AddressList {
public:
    AddressList() = default;
    // Comma-separated CIDR blocks, as in allow=A,B; throws std::invalid_argument.
    static AddressList parse(std::string_view comma_list);
    void add(Cidr c) { blocks_.push_back(c); }
    bool empty() const { return blocks_.empty(); }
    bool contains(const Address& a) const;
    std::size_t size() const { return blocks_.size(); }

private:
    std::vector<Cidr> blocks_;
};

// The filter of a route or of the whole listener: a client is refused when `deny` holds its
// address, or when `allow` is not empty and does not. Unix-socket clients have no address
// and are always let through (they are local, and the socket's mode already decides).
struct AddressFilter {
    AddressList allow, deny;
    bool empty() const { return allow.empty() && deny.empty(); }
    // remote: the request's remote_address ("" for unix-socket clients).
    bool admits(std::string_view remote) const;
};

} // namespace strata::gatewayd
