// admission.hpp: the aged counts and the history, and the analysis cache's bookkeeping under
// both policies against a plain model (tests/support/admission_model.hpp) on random operation
// sequences long enough for the counts to halve.
#include "catch.hpp"
#include "support/admission_model.hpp"

#include <evmalloc/admission.hpp>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using evmalloc::Admission;
using evmalloc::detail::AdmissionHistory;
using evmalloc::detail::aged_count;

TEST_CASE("a count halves once per epoch passed, and is 0 after 8, across the wrap", "[admission]")
{
    CHECK(aged_count(15, 3, 3) == 15);
    CHECK(aged_count(15, 3, 4) == 7);
    CHECK(aged_count(15, 3, 6) == 1);
    CHECK(aged_count(15, 3, 11) == 0);
    CHECK(aged_count(12, 255, 1) == 3);  // two epochs, across 255 -> 0
}

TEST_CASE("the history counts a code per slot, forgets it when another takes the slot, and "
          "hands the count over on take()",
    "[admission]")
{
    std::vector<std::uint64_t> storage(AdmissionHistory::storage_bytes / 8);
    AdmissionHistory h;
    CHECK(h.count(7) == 0);
    h.record(7);  // no storage: nothing kept
    CHECK(h.count(7) == 0);
    h.attach(storage.data());
    for (int i = 0; i < 20; ++i)
        h.record(7);
    CHECK(h.count(7) == AdmissionHistory::max_count);  // saturates
    // A key of the same slot (the slot index is the top 12 bits of key * 0x9e3779b1).
    std::uint32_t other = 8;
    while (((other * 0x9e3779b1U) >> 20) != ((7U * 0x9e3779b1U) >> 20))
        ++other;
    h.record(other);
    CHECK(h.count(7) == 0);
    CHECK(h.count(other) == 1);
    CHECK(h.take(other) == 1);
    CHECK(h.count(other) == 0);
    h.remember(9, 8);
    for (std::uint32_t i = 0; i < AdmissionHistory::window; ++i)
        h.tick();
    CHECK(h.count(9) == 4);  // one epoch: halved
}

TEST_CASE("TinyLFU's decision: seen before, and more than the victim", "[admission]")
{
    using evmalloc::detail::admit_over;
    CHECK(admit_over(3, true, 2));
    CHECK(!admit_over(2, true, 2));  // a tie keeps the resident
    CHECK(!admit_over(1, false, 0));
    CHECK(!admit_over(1, true, 0));  // seen once: never displaces anything
    CHECK(admit_over(2, false, 0));
}

TEST_CASE("the cache's admission, recency and eviction follow the model on random sequences",
    "[admission]")
{
    for (const Admission policy : {Admission::tiny_lfu, Admission::always})
    {
        for (const std::size_t budget_entries : {0U, 3U, 8U, 30U})
        {
            INFO("policy " << static_cast<int>(policy) << ", budget " << budget_entries);
            std::mt19937 rng{static_cast<std::uint32_t>(budget_entries * 2 + 1)};
            std::vector<std::uint8_t> ops(40000);
            // Mostly calls, skewed to low code indices (a hot set), some kept frames, rare clears.
            std::geometric_distribution<int> code{0.12};
            std::uniform_int_distribution<int> kind{0, 99};
            for (auto& op : ops)
            {
                const int k = kind(rng);
                if (k == 0)
                    op = 0xFF;
                else if (k < 15)
                    op = static_cast<std::uint8_t>(0xC0 + kind(rng) % 0x38);
                else
                    op = static_cast<std::uint8_t>(
                        (k < 25 ? 0x40 : 0) | (std::min(code(rng), 23) & 0x3F));
            }
            const std::size_t one = evmalloc::test::entry_bytes<evmalloc::test::ModelTraits>(400);
            CHECK(evmalloc::test::run_admission_model(ops, policy, budget_entries * one) ==
                  std::string{});
        }
    }
}
