// AllocationStatistics and the recording policies: exact counters, size classes, computed
// ratios, the summary, and to_json() parsed back by a strict JSON reader written here.
#include <evmalloc/statistics.hpp>

#include <evmalloc/evm_allocator.hpp>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "catch.hpp"

namespace
{
// A strict JSON reader (RFC 8259 grammar): enough to check that to_json() is JSON and to read
// its values back. Any deviation (trailing comma, bare NaN, unescaped control character,
// leading zero, text after the value) makes parse() return nullopt.
struct Json
{
    enum class Kind
    {
        null,
        boolean,
        number,
        string,
        array,
        object
    };
    Kind kind = Kind::null;
    bool boolean = false;
    double number = 0;
    std::string text;
    std::vector<Json> items;
    std::map<std::string, Json> members;

    const Json& operator[](const std::string& key) const { return members.at(key); }
};

class JsonReader
{
public:
    static std::optional<Json> parse(std::string_view s)
    {
        JsonReader r{s};
        Json v;
        if (!r.value(v, 0))
            return std::nullopt;
        r.skip_ws();
        if (r.pos_ != s.size())
            return std::nullopt;
        return v;
    }

private:
    explicit JsonReader(std::string_view s) : s_{s} {}

    void skip_ws()
    {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }
    bool eat(char c)
    {
        if (pos_ < s_.size() && s_[pos_] == c)
        {
            ++pos_;
            return true;
        }
        return false;
    }
    bool literal(std::string_view word)
    {
        if (s_.substr(pos_, word.size()) != word)
            return false;
        pos_ += word.size();
        return true;
    }
    bool digit() const { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; }

    bool value(Json& v, int depth)
    {
        if (depth > 64)
            return false;
        skip_ws();
        if (pos_ >= s_.size())
            return false;
        const char c = s_[pos_];
        if (c == '{')
            return object(v, depth);
        if (c == '[')
            return array(v, depth);
        if (c == '"')
        {
            v.kind = Json::Kind::string;
            return string(v.text);
        }
        if (literal("true"))
        {
            v.kind = Json::Kind::boolean;
            v.boolean = true;
            return true;
        }
        if (literal("false"))
        {
            v.kind = Json::Kind::boolean;
            return true;
        }
        if (literal("null"))
            return true;
        return number(v);
    }

    bool object(Json& v, int depth)
    {
        v.kind = Json::Kind::object;
        ++pos_;
        skip_ws();
        if (eat('}'))
            return true;
        for (;;)
        {
            skip_ws();
            std::string key;
            if (pos_ >= s_.size() || s_[pos_] != '"' || !string(key))
                return false;
            skip_ws();
            if (!eat(':'))
                return false;
            Json member;
            if (!value(member, depth + 1))
                return false;
            if (!v.members.emplace(key, std::move(member)).second)
                return false;  // a repeated key is legal JSON but never right for us
            skip_ws();
            if (eat('}'))
                return true;
            if (!eat(','))
                return false;
        }
    }

    bool array(Json& v, int depth)
    {
        v.kind = Json::Kind::array;
        ++pos_;
        skip_ws();
        if (eat(']'))
            return true;
        for (;;)
        {
            Json item;
            if (!value(item, depth + 1))
                return false;
            v.items.push_back(std::move(item));
            skip_ws();
            if (eat(']'))
                return true;
            if (!eat(','))
                return false;
        }
    }

    bool string(std::string& out)
    {
        ++pos_;  // the opening quote
        while (pos_ < s_.size())
        {
            const char c = s_[pos_++];
            if (c == '"')
                return true;
            if (static_cast<unsigned char>(c) < 0x20)
                return false;
            if (c != '\\')
            {
                out += c;
                continue;
            }
            if (pos_ >= s_.size())
                return false;
            const char e = s_[pos_++];
            switch (e)
            {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u':
            {
                if (pos_ + 4 > s_.size())
                    return false;
                unsigned code = 0;
                for (int i = 0; i < 4; ++i)
                {
                    const char h = s_[pos_++];
                    if (!std::isxdigit(static_cast<unsigned char>(h)))
                        return false;
                    code = code * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(h))
                                                                 ? h - '0'
                                                                 : (std::tolower(static_cast<unsigned char>(h)) - 'a' + 10));
                }
                out += code < 0x80 ? static_cast<char>(code) : '?';
                break;
            }
            default:
                return false;
            }
        }
        return false;
    }

    bool number(Json& v)
    {
        const std::size_t start = pos_;
        eat('-');
        if (eat('0'))
        {
            if (digit())
                return false;  // no leading zeros
        }
        else
        {
            if (!digit())
                return false;
            while (digit())
                ++pos_;
        }
        if (eat('.'))
        {
            if (!digit())
                return false;
            while (digit())
                ++pos_;
        }
        if (eat('e') || eat('E'))
        {
            if (!eat('+'))
                eat('-');
            if (!digit())
                return false;
            while (digit())
                ++pos_;
        }
        v.kind = Json::Kind::number;
        v.number = std::stod(std::string{s_.substr(start, pos_ - start)});
        return true;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

using evmalloc::AllocationStatistics;
using evmalloc::CountingStatistics;
using evmalloc::NoStatistics;
}  // namespace

TEST_CASE("the JSON reader itself rejects what is not JSON", "[statistics][json]")
{
    CHECK(JsonReader::parse(R"({"a":[1,2.5,-3e2,true,false,null,"x\n"]})"));
    CHECK(JsonReader::parse(R"(  {}  )"));
    CHECK_FALSE(JsonReader::parse(R"({"a":1,})"));
    CHECK_FALSE(JsonReader::parse(R"({"a":nan})"));
    CHECK_FALSE(JsonReader::parse(R"({"a":01})"));
    CHECK_FALSE(JsonReader::parse(R"({"a":1.})"));
    CHECK_FALSE(JsonReader::parse(R"({"a":1} x)"));
    CHECK_FALSE(JsonReader::parse(R"({"a":"tab	inside"})"));
    CHECK_FALSE(JsonReader::parse(R"({a:1})"));
    CHECK_FALSE(JsonReader::parse(R"([1 2])"));
    CHECK_FALSE(JsonReader::parse(R"({"a":1,"a":2})"));
    CHECK_FALSE(JsonReader::parse(""));
}

TEST_CASE("size classes: small < 256 <= medium <= 4096 < large", "[statistics]")
{
    using evmalloc::SizeDistribution;
    STATIC_REQUIRE(SizeDistribution::size_class(0) == 0);
    STATIC_REQUIRE(SizeDistribution::size_class(255) == 0);
    STATIC_REQUIRE(SizeDistribution::size_class(256) == 1);
    STATIC_REQUIRE(SizeDistribution::size_class(4096) == 1);
    STATIC_REQUIRE(SizeDistribution::size_class(4097) == 2);
    STATIC_REQUIRE(SizeDistribution::size_class(~std::size_t{0}) == 2);
}

TEST_CASE("CountingStatistics counts a known sequence exactly", "[statistics]")
{
    CountingStatistics rec;
    // (requested, reserved): reserved is the slot the request was rounded to.
    rec.record_allocation(20, 20);      // small
    rec.record_allocation(32, 32);      // small
    rec.record_allocation(100, 256);    // small
    rec.record_allocation(256, 256);    // medium
    rec.record_allocation(3000, 4096);  // medium
    rec.record_allocation(5000, 5000);  // large

    auto s = rec.snapshot();
    CHECK(s.enabled);
    CHECK(s.total_allocations == 6);
    CHECK(s.total_deallocations == 0);
    CHECK(s.total_bytes_allocated == 20 + 32 + 100 + 256 + 3000 + 5000);
    CHECK(s.current_bytes == 8408);
    CHECK(s.peak_bytes == 8408);
    CHECK(s.reserved_bytes == 20 + 32 + 256 + 256 + 4096 + 5000);
    CHECK(s.size_distribution == evmalloc::SizeDistribution{3, 2, 1});

    rec.record_deallocation(5000, 5000);
    rec.record_deallocation(3000, 4096);
    s = rec.snapshot();
    CHECK(s.total_deallocations == 2);
    CHECK(s.total_bytes_deallocated == 8000);
    CHECK(s.current_bytes == 408);
    CHECK(s.peak_bytes == 8408);  // kept after frees
    CHECK(s.reserved_bytes == 20 + 32 + 256 + 256);
    // 1 - 408 / 564 of the live reservation is rounding waste.
    CHECK(s.fragmentation() == Approx(1.0 - 408.0 / 564.0));

    rec.record_allocation(1, 20);  // a new peak only when current passes the old one
    s = rec.snapshot();
    CHECK(s.peak_bytes == 8408);
    CHECK(s.current_bytes == 409);
    CHECK(s.size_distribution.small == 4);
}

TEST_CASE("statistics: ratios computed when asked", "[statistics]")
{
    AllocationStatistics s;
    CHECK(s.fragmentation() == 0.0);  // nothing reserved
    CHECK(s.pool_utilization() == 0.0);
    CHECK(s.allocation_rate() == 0.0);  // counting off

    s.enabled = true;
    s.total_allocations = 500;
    const auto t0 = AllocationStatistics::Clock::now();
    s.start_time = t0;
    CHECK(s.allocation_rate(t0 + std::chrono::milliseconds(250)) == Approx(2000.0));
    CHECK(s.allocation_rate(t0) == 0.0);  // no time passed: 0, not infinity

    s.pool_count = 2;
    s.pools[0] = {"a", 32, 10, 5};     // 160 of 320 bytes
    s.pools[1] = {"b", 256, 4, 1};     // 256 of 1024 bytes
    CHECK(s.pools[0].utilization() == Approx(0.5));
    CHECK(s.pool_utilization() == Approx(416.0 / 1344.0));

    s.current_bytes = 30;
    s.reserved_bytes = 40;
    CHECK(s.fragmentation() == Approx(0.25));
}

TEST_CASE("NoStatistics is empty and records nothing", "[statistics]")
{
    STATIC_REQUIRE(std::is_empty_v<NoStatistics>);
    STATIC_REQUIRE_FALSE(NoStatistics::compiled_in);
    STATIC_REQUIRE(CountingStatistics::compiled_in);
    struct Holder
    {
        [[no_unique_address]] NoStatistics stats;
        void* p;
    };
    STATIC_REQUIRE(sizeof(Holder) == sizeof(void*));

    NoStatistics none;
    none.record_allocation(100, 256);
    const auto s = none.snapshot();
    CHECK_FALSE(s.enabled);
    CHECK(s.total_allocations == 0);
    CHECK(s.total_bytes_allocated == 0);
}

TEST_CASE("print_summary names every counter", "[statistics]")
{
    CountingStatistics rec;
    rec.record_allocation(300, 1024);
    auto s = rec.snapshot();
    s.pool_count = 1;
    s.pools[0] = {"buffer1024", 1024, 8, 1};
    std::ostringstream out;
    s.print_summary(out);
    const std::string text = out.str();
    CHECK(text.find("allocations:   1 (300 bytes)") != std::string::npos);
    CHECK(text.find("reserved 1024 bytes") != std::string::npos);
    CHECK(text.find("small 0, medium 1, large 0") != std::string::npos);
    CHECK(text.find("buffer1024 (1024 B): 1 of 8 slots") != std::string::npos);
    CHECK(text.find("counting off") == std::string::npos);

    std::ostringstream off;
    AllocationStatistics{}.print_summary(off);
    CHECK(off.str().find("counting off") != std::string::npos);
}

TEST_CASE("to_json is valid JSON carrying every field", "[statistics][json]")
{
    CountingStatistics rec;
    rec.record_allocation(20, 20);
    rec.record_allocation(700, 1024);
    rec.record_allocation(9000, 9000);
    rec.record_deallocation(9000, 9000);
    auto s = rec.snapshot();
    s.pool_count = 2;
    s.pools[0] = {"address", 20, 64, 1};
    s.pools[1] = {"odd \"name\"\\", 1024, 2, 1};  // escaping is part of being valid
    s.arena_bytes_used = 123;
    s.arena_bytes_reserved = 4096;

    const std::string text = s.to_json();
    INFO(text);
    const auto parsed = JsonReader::parse(text);
    REQUIRE(parsed);
    const Json& j = *parsed;
    REQUIRE(j.kind == Json::Kind::object);
    CHECK(j["enabled"].boolean);
    CHECK(j["total_allocations"].number == 3);
    CHECK(j["total_deallocations"].number == 1);
    CHECK(j["total_bytes_allocated"].number == 9720);
    CHECK(j["total_bytes_deallocated"].number == 9000);
    CHECK(j["current_bytes"].number == 720);
    CHECK(j["peak_bytes"].number == 9720);
    CHECK(j["reserved_bytes"].number == 1044);
    CHECK(j["size_distribution"]["small"].number == 1);
    CHECK(j["size_distribution"]["medium"].number == 1);
    CHECK(j["size_distribution"]["large"].number == 1);
    CHECK(j["fragmentation"].number == Approx(1.0 - 720.0 / 1044.0).epsilon(1e-5));
    CHECK(j["allocation_rate"].kind == Json::Kind::number);
    CHECK(j["pool_utilization"].number == Approx(s.pool_utilization()).epsilon(1e-5));
    CHECK(j["arena_bytes_used"].number == 123);
    CHECK(j["arena_bytes_reserved"].number == 4096);
    const Json& pools = j["pools"];
    REQUIRE(pools.kind == Json::Kind::array);
    REQUIRE(pools.items.size() == 2);
    CHECK(pools.items[0]["name"].text == "address");
    CHECK(pools.items[0]["capacity"].number == 64);
    CHECK(pools.items[1]["name"].text == "odd \"name\"\\");
    CHECK(pools.items[1]["utilization"].number == Approx(0.5));

    // A snapshot with statistics off is JSON too.
    const auto off = JsonReader::parse(AllocationStatistics{}.to_json());
    REQUIRE(off);
    CHECK_FALSE((*off)["enabled"].boolean);
    CHECK((*off)["pools"].items.empty());
}

TEST_CASE("an EvmAllocator's statistics as JSON, parsed back", "[statistics][json]")
{
    evmalloc::EvmAllocator a;
    void* p = a.allocate(20, 1);
    void* q = a.allocate(3000, 8);
    void* r = a.allocate(10000, 8);
    a.deallocate(r, 10000, 8);
    static_cast<void>(a.arena().allocate(500, 8));

    const auto s = a.statistics();
    const auto parsed = JsonReader::parse(s.to_json());
    REQUIRE(parsed);
    const Json& j = *parsed;
    CHECK(j["total_allocations"].number == 3);
    CHECK(j["total_deallocations"].number == 1);
    CHECK(j["current_bytes"].number == 3020);
    CHECK(j["peak_bytes"].number == 13020);
    CHECK(j["reserved_bytes"].number ==
          static_cast<double>(evmalloc::EvmAllocator::AddressPool::slot_size + 4096));
    CHECK(j["arena_bytes_used"].number >= 500);
    REQUIRE(j["pools"].items.size() == 5);
    CHECK(j["pools"].items[0]["name"].text == "address");
    CHECK(j["pools"].items[0]["in_use"].number == 1);
    CHECK(j["pools"].items[4]["name"].text == "buffer4096");
    CHECK(j["pools"].items[4]["in_use"].number == 1);
    a.deallocate(p, 20, 1);
    a.deallocate(q, 3000, 8);
}
