// evmone on evmalloc, the call boundary: EVMC results whose output comes from pooled buffers
// (src/evmalloc_output.hpp) are released in any order, after their call returned and after the
// VM that made them is gone, and a caller's return data (kept as its callee's result) stays
// readable after the call returned. Linked with one evmone build (run: the evmalloc one, asserts
// on; the stock one passes too) and built with AddressSanitizer, which sees a block used after it
// went back, given back twice, or never freed (the pools outliving their last result).
//
// Every check runs on evmone's baseline interpreter, then on its advanced one (the evmc option
// "advanced", evmalloc_advanced.hpp).
//
// usage: evmone-call-boundary-test   (exit 0: every check held)
#include <evmone/evmone.h>
#include <evmc/evmc.hpp>
#include <evmc/mocked_host.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace
{
int failures = 0;
bool advanced = false;  // the interpreter of every VM make_vm() makes

evmc::VM make_vm()
{
    evmc::VM vm{evmc_create_evmone()};
    if (advanced && vm.set_option("advanced", "") != EVMC_SET_OPTION_SUCCESS)
    {
        std::fprintf(stderr, "evmone-call-boundary-test: the VM has no advanced interpreter\n");
        std::exit(2);
    }
    return vm;
}

#define CHECK(cond)                                                                           \
    do                                                                                        \
    {                                                                                         \
        if (!(cond))                                                                          \
        {                                                                                     \
            if (++failures <= 20)                                                             \
                std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
        }                                                                                     \
    } while (false)

/// Code returning `n` bytes (n >= 32): the calldata's first word at 0 and at n - 32, zeros
/// between.
std::vector<std::uint8_t> returner(std::uint32_t n)
{
    const std::uint32_t last = n - 32;
    return {0x60, 0x00, 0x35,    // CALLDATALOAD(0)
        0x80, 0x60, 0x00, 0x52,  // MSTORE(0, w)
        0x62, std::uint8_t(last >> 16), std::uint8_t(last >> 8), std::uint8_t(last), 0x52, 0x62,
        std::uint8_t(n >> 16), std::uint8_t(n >> 8), std::uint8_t(n), 0x60, 0x00, 0xf3};
}

/// The calldata word of call `k`: k + 1 in the low bytes, 0xa5 in the top byte.
evmc::bytes32 tag(std::uint64_t k)
{
    evmc::bytes32 w{};
    w.bytes[0] = 0xa5;
    for (int i = 0; i < 8; ++i)
        w.bytes[31 - i] = static_cast<std::uint8_t>((k + 1) >> (8 * i));
    return w;
}

/// The output of returner(n) called with tag(k).
bool holds(const evmc::Result& r, std::uint32_t n, std::uint64_t k)
{
    if (r.status_code != EVMC_SUCCESS || r.output_size != n || r.output_data == nullptr)
        return false;
    const evmc::bytes32 w = tag(k);
    for (std::size_t i = 0; i < n; ++i)
    {
        // The second store (at n - 32) overlaps the first when n < 64.
        const std::uint8_t want = i >= n - 32 ? w.bytes[i - (n - 32)] : i < 32 ? w.bytes[i] : 0;
        if (r.output_data[i] != want)
            return false;
    }
    return true;
}

// The sizes: every pooled size class (64 B .. 64 KiB blocks, 16 bytes of each for the header),
// their edges, and one above the largest (a block of its own).
constexpr std::uint32_t sizes[] = {
    32, 48, 49, 240, 241, 1008, 1009, 4080, 4081, 16368, 16369, 65520, 65521, 100000};

struct Call
{
    std::uint32_t n;
    std::uint64_t k;
    evmc::Result result;
};

std::vector<Call> make_calls(evmc::VM& vm, evmc::MockedHost& host, std::uint64_t first, int each)
{
    std::vector<Call> calls;
    std::uint64_t k = first;
    for (int rep = 0; rep < each; ++rep)
        for (const auto n : sizes)
        {
            const auto code = returner(n);
            const evmc::bytes32 w = tag(k);
            evmc_message msg{};
            msg.kind = EVMC_CALL;
            msg.gas = 10'000'000;
            msg.input_data = w.bytes;
            msg.input_size = sizeof(w.bytes);
            calls.push_back({n, k, vm.execute(host, EVMC_CANCUN, msg, code.data(), code.size())});
            ++k;
        }
    return calls;
}

/// Results released in a shuffled order, each checked first (a block reused while its result
/// was still out would hold another call's output).
void release_in_any_order()
{
    evmc::VM vm = make_vm();
    evmc::MockedHost host;
    std::mt19937_64 rng{19};
    for (int round = 0; round < 4; ++round)
    {
        auto calls = make_calls(vm, host, 1000 * static_cast<std::uint64_t>(round), 3);
        std::shuffle(calls.begin(), calls.end(), rng);
        while (!calls.empty())
        {
            for (const auto& c : calls)
                CHECK(holds(c.result, c.n, c.k));
            calls.pop_back();  // releases it
            // Another call between releases reuses the blocks given back.
            if (calls.size() % 7 == 0)
            {
                auto more = make_calls(vm, host, 50'000 + calls.size(), 1);
                for (const auto& c : more)
                    CHECK(holds(c.result, c.n, c.k));
            }
        }
    }
}

/// Results that outlive the VM: the pools go with the last of them.
void release_after_the_vm_is_gone()
{
    std::vector<Call> calls;
    {
        evmc::VM vm = make_vm();
        evmc::MockedHost host;
        calls = make_calls(vm, host, 7, 2);
        auto early = make_calls(vm, host, 900, 1);  // released while the VM lives
    }
    std::mt19937_64 rng{20};
    std::shuffle(calls.begin(), calls.end(), rng);
    while (!calls.empty())
    {
        for (const auto& c : calls)
            CHECK(holds(c.result, c.n, c.k));
        calls.pop_back();
    }
}

/// A result moved out of the call and released later, by its new owner.
void release_after_a_move()
{
    evmc::VM vm = make_vm();
    evmc::MockedHost host;
    auto calls = make_calls(vm, host, 3, 1);
    std::vector<evmc::Result> kept;
    for (auto& c : calls)
        kept.push_back(std::move(c.result));
    calls.clear();  // releases nothing: the results moved
    for (std::size_t i = 0; i < kept.size(); ++i)
        CHECK(kept[i].output_size == sizes[i]);
}

/// A host that runs CALLs through the VM: the callee's code returns CALL's input size bytes.
class NestedHost : public evmc::MockedHost
{
public:
    evmc::VM* vm = nullptr;
    evmc::Result call(const evmc_message& msg) noexcept override
    {
        const auto code = returner(static_cast<std::uint32_t>(msg.input_size));
        return vm->execute(*this, EVMC_CANCUN, msg, code.data(), code.size());
    }
};

/// The caller's return data is the callee's result kept: CALL with input of n bytes (the callee
/// returns n bytes), a second CALL replaces the return data (the first result released inside
/// the call), RETURNDATACOPY after the callee returned, and the caller returns what it copied.
void return_data_after_the_call()
{
    evmc::VM vm = make_vm();
    NestedHost host;
    host.vm = &vm;
    for (const std::uint32_t n : {32u, 1000u, 5000u, 70000u})
    {
        const std::uint32_t m = n + 64;  // the second call's size
        // MSTORE(0, 0x77); CALL(gas, 0xaa, 0, 0, n, 0, 0); CALL(gas, 0xaa, 0, 0, m, 0, 0);
        // RETURNDATACOPY(0, 0, RETURNDATASIZE); RETURN(0, RETURNDATASIZE)
        std::vector<std::uint8_t> code{0x60, 0x77, 0x60, 0x00, 0x52};
        for (const std::uint32_t in : {n, m})
        {
            const std::vector<std::uint8_t> call{0x60, 0x00, 0x60, 0x00, 0x62,
                std::uint8_t(in >> 16), std::uint8_t(in >> 8), std::uint8_t(in), 0x60, 0x00, 0x60,
                0x00, 0x60, 0xaa, 0x5a, 0xf1, 0x50};
            code.insert(code.end(), call.begin(), call.end());
        }
        const std::vector<std::uint8_t> tail{
            0x3d, 0x60, 0x00, 0x60, 0x00, 0x3e, 0x3d, 0x60, 0x00, 0xf3};
        code.insert(code.end(), tail.begin(), tail.end());
        evmc_message msg{};
        msg.kind = EVMC_CALL;
        msg.gas = 100'000'000;
        const evmc::Result r = vm.execute(host, EVMC_CANCUN, msg, code.data(), code.size());
        CHECK(r.status_code == EVMC_SUCCESS);
        // The second callee stored its input's first word (0x77) at 0 and at m - 32.
        CHECK(r.output_size == m);
        if (r.output_size == m)
            for (std::size_t i = 0; i < m; ++i)
                CHECK(r.output_data[i] == (i == 31 || i == m - 1 ? 0x77 : 0));
    }
}
}  // namespace

int main()
{
    for (const bool a : {false, true})
    {
        advanced = a;
        release_in_any_order();
        release_after_the_vm_is_gone();
        release_after_a_move();
        return_data_after_the_call();
    }
    if (failures != 0)
    {
        std::fprintf(stderr, "evmone-call-boundary-test: %d checks failed\n", failures);
        return 1;
    }
    std::printf("evmone-call-boundary-test: every check held\n");
    return 0;
}
