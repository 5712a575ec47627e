// AllocationStatistics and the recording policies: exact counters, size classes, computed
// ratios, the summary, and to_json() parsed back with nlohmann/json (duplicate keys refused).
#include <evmalloc/statistics.hpp>

#include <evmalloc/evm_allocator.hpp>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "catch.hpp"

namespace
{
using nlohmann::json;

/// to_json()'s text parsed by nlohmann/json, which rejects what RFC 8259 does (a trailing comma,
/// a bare NaN, a leading zero, an unescaped control character, text after the value); on top,
/// a key given twice in one object is an error here (nlohmann would keep the last).
std::optional<json> parse_strict(const std::string& text)
{
    std::vector<std::set<std::string>> keys;  // one set per object being read
    bool duplicate = false;
    const json::parser_callback_t check = [&](int, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start)
            keys.emplace_back();
        else if (event == json::parse_event_t::object_end)
            keys.pop_back();
        else if (event == json::parse_event_t::key &&
                 !keys.back().insert(parsed.get<std::string>()).second)
            duplicate = true;
        return true;
    };
    json j = json::parse(text, check, /*allow_exceptions=*/false);
    if (j.is_discarded() || duplicate)
        return std::nullopt;
    return j;
}

using evmalloc::AllocationStatistics;
using evmalloc::CountingStatistics;
using evmalloc::NoStatistics;
}  // namespace

TEST_CASE("the strict parse rejects what is not JSON, and duplicate keys", "[statistics][json]")
{
    CHECK(parse_strict(R"({"a":[1,2.5,-3e2,true,false,null,"x\n"]})"));
    CHECK(parse_strict(R"(  {}  )"));
    CHECK(parse_strict(R"({"a":{"a":1},"b":{"a":2}})"));  // the same key in different objects
    CHECK_FALSE(parse_strict(R"({"a":1,})"));
    CHECK_FALSE(parse_strict(R"({"a":nan})"));
    CHECK_FALSE(parse_strict(R"({"a":01})"));
    CHECK_FALSE(parse_strict(R"({"a":1.})"));
    CHECK_FALSE(parse_strict(R"({"a":1} x)"));
    CHECK_FALSE(parse_strict(R"({"a":"tab	inside"})"));
    CHECK_FALSE(parse_strict(R"({a:1})"));
    CHECK_FALSE(parse_strict(R"([1 2])"));
    CHECK_FALSE(parse_strict(R"({"a":1,"a":2})"));
    CHECK_FALSE(parse_strict(R"({"b":{"a":1,"a":2}})"));
    CHECK_FALSE(parse_strict(""));
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
    s.pools[0] = {"a", 32, 10, 5};  // 160 of 320 bytes
    s.pools[1] = {"b", 256, 4, 1};  // 256 of 1024 bytes
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
    s.analysis_cache = {3, 1, 0, 1, 4096};
    std::ostringstream out;
    s.print_summary(out);
    const std::string text = out.str();
    CHECK(text.find("allocations:   1 (300 bytes)") != std::string::npos);
    CHECK(text.find("reserved 1024 bytes") != std::string::npos);
    CHECK(text.find("small 0, medium 1, large 0") != std::string::npos);
    CHECK(text.find("buffer1024 (1024 B): 1 of 8 slots") != std::string::npos);
    CHECK(text.find(
              "analyses:      3 hits, 1 misses (75 % hits), 0 evictions, 1 entries, 4096 bytes") !=
          std::string::npos);
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
    s.analysis_cache = {30, 10, 2, 8, 65536};

    const std::string text = s.to_json();
    INFO(text);
    const auto parsed = parse_strict(text);
    REQUIRE(parsed);
    const json& j = *parsed;
    REQUIRE(j.is_object());
    CHECK(j.size() == 16);  // every field, each once
    CHECK(j.at("enabled") == true);
    CHECK(j.at("total_allocations") == 3);
    CHECK(j.at("total_deallocations") == 1);
    CHECK(j.at("total_bytes_allocated") == 9720);
    CHECK(j.at("total_bytes_deallocated") == 9000);
    CHECK(j.at("current_bytes") == 720);
    CHECK(j.at("peak_bytes") == 9720);
    CHECK(j.at("reserved_bytes") == 1044);
    CHECK(j.at("size_distribution") == json{{"small", 1}, {"medium", 1}, {"large", 1}});
    CHECK(j.at("fragmentation").get<double>() == Approx(1.0 - 720.0 / 1044.0).epsilon(1e-5));
    CHECK(j.at("allocation_rate").is_number());
    CHECK(j.at("pool_utilization").get<double>() == Approx(s.pool_utilization()).epsilon(1e-5));
    CHECK(j.at("arena_bytes_used") == 123);
    CHECK(j.at("arena_bytes_reserved") == 4096);
    const json& cache = j.at("analysis_cache");
    CHECK(cache.at("hits") == 30);
    CHECK(cache.at("misses") == 10);
    CHECK(cache.at("evictions") == 2);
    CHECK(cache.at("entries") == 8);
    CHECK(cache.at("bytes") == 65536);
    CHECK(cache.at("hit_rate").get<double>() == Approx(0.75));
    const json& pools = j.at("pools");
    REQUIRE(pools.is_array());
    REQUIRE(pools.size() == 2);
    CHECK(pools[0].at("name") == "address");
    CHECK(pools[0].at("block_size") == 20);
    CHECK(pools[0].at("capacity") == 64);
    CHECK(pools[0].at("in_use") == 1);
    CHECK(pools[1].at("name") == "odd \"name\"\\");
    CHECK(pools[1].at("utilization").get<double>() == Approx(0.5));

    // A snapshot with statistics off is JSON too.
    const auto off = parse_strict(AllocationStatistics{}.to_json());
    REQUIRE(off);
    CHECK(off->at("enabled") == false);
    CHECK(off->at("pools").empty());
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
    const auto parsed = parse_strict(s.to_json());
    REQUIRE(parsed);
    const json& j = *parsed;
    CHECK(j.at("total_allocations") == 3);
    CHECK(j.at("total_deallocations") == 1);
    CHECK(j.at("current_bytes") == 3020);
    CHECK(j.at("peak_bytes") == 13020);
    CHECK(j.at("reserved_bytes") == evmalloc::EvmAllocator::AddressPool::slot_size + 4096);
    CHECK(j.at("arena_bytes_used").get<std::uint64_t>() >= 500);
    const json& pools = j.at("pools");
    REQUIRE(pools.size() == 5);
    const char* const names[] = {"address", "word", "buffer256", "buffer1024", "buffer4096"};
    const std::size_t in_use[] = {1, 0, 0, 0, 1};
    for (std::size_t i = 0; i < 5; ++i)
    {
        CHECK(pools[i].at("name") == names[i]);
        CHECK(pools[i].at("in_use") == in_use[i]);
        CHECK(pools[i].at("block_size") == s.pools[i].block_size);
    }
    a.deallocate(p, 20, 1);
    a.deallocate(q, 3000, 8);
}
