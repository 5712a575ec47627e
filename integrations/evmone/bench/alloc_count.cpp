// Heap allocations and page faults per call of an evmone VM, counted from outside evmone.
//
// Linked with one evmone library (stock or on evmalloc). Replaces malloc and its family and
// operator new/delete with counting versions (glibc: they forward to __libc_*), creates the VM
// through EVMC (evmc_create_evmone) and runs each case of a cases file (one line per case:
// "name code_hex input_hex", written by report.py from evm-benchmarks) against a host of ours
// that never allocates (storage in a fixed table). Per case it prints one JSON object:
//   first_call   allocations of the first call (new VM state at depth 0)
//   steady       allocations per call over `calls` calls after `warmup` calls
//   new_depth    allocations of one call at a depth not used before
//   output_allocs the part of those that is EVMC's result output: mallocs of exactly the
//                 output's size (evmc_make_result's copy of it; none where the output comes
//                 from a pool)
//   minflt       minor page faults per call in the steady phase (getrusage)
//   gas_used, status  the same in both VMs, or the VMs did not do the same work
//
// Then the call boundary (cases named boundary/...): a caller CALLs a callee that RETURNs n bytes
// (32, 1 KiB, 16 KiB) into its output area and returns them itself, the host running the callee
// through the same VM: two EVMC executions per call, each with output, plus the caller's return
// data. "steady" there counts both executions; "vm_calls" says 2; "output_copies" counts the
// memcpy/memmove calls of exactly n bytes per call (the return data's copies: the callee's
// RETURN into its result, the result into the caller's return data, into the caller's output
// area, and the caller's RETURN into its own result).
//
// With --advanced every VM runs evmone's advanced interpreter (evmc option "advanced"), and each
// case also prints "part_bytes": the bytes of evmalloc's advanced code part for the case's code
// (evmalloc_evmone_advanced_part_bytes, found when linked with evmone on evmalloc; absent with
// stock evmone) and "stock_reserve": what stock evmone's analysis reserves per call for it
// (advanced_analysis.cpp: 16-byte instructions for n + 2, 32-byte push values for n + 1).
//
// usage: alloc_count CASES_FILE [warmup=5] [calls=50] [--advanced]
#include <evmone/evmone.h>
#include <evmc/evmc.hpp>

#include <sys/resource.h>

#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <string>
#include <vector>

extern "C" {
// Defined by evmone on evmalloc (evmalloc_advanced.hpp); null when linked with stock evmone.
[[gnu::weak]] std::size_t evmalloc_evmone_advanced_part_bytes(std::size_t code_size) noexcept;
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
// glibc's checked copies: memcpy/memmove below forward to them (they copy as memcpy/memmove do).
void* __memcpy_chk(void*, const void*, size_t, size_t) noexcept;
void* __memmove_chk(void*, const void*, size_t, size_t) noexcept;
}

namespace
{
bool counting = false;
std::uint64_t allocations = 0;
std::size_t output_size = 0;           // the output size of the case being counted (0: none)
std::uint64_t output_allocations = 0;  // mallocs of exactly output_size bytes
std::uint64_t output_copies = 0;       // memcpy/memmove calls of exactly output_size bytes

inline void count() noexcept
{
    if (counting)
        ++allocations;
}
}  // namespace

extern "C" {
void* malloc(size_t n)
{
    count();
    if (counting && n == output_size && n != 0)
        ++output_allocations;
    return __libc_malloc(n);
}
void* calloc(size_t n, size_t m)
{
    count();
    return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n)
{
    count();
    return __libc_realloc(p, n);
}
void free(void* p)
{
    __libc_free(p);
}
// Copies of exactly the output's size: the copies of return data (evmone copies it with
// memcpy of a run-time size, std::basic_string::assign included; none is inlined).
void* memcpy(void* __restrict dest, const void* __restrict src, size_t n) noexcept
{
    if (counting && n == output_size && n != 0)
        ++output_copies;
    return __memcpy_chk(dest, src, n, n);
}
void* memmove(void* dest, const void* src, size_t n) noexcept
{
    if (counting && n == output_size && n != 0)
        ++output_copies;
    return __memmove_chk(dest, src, n, n);
}
void* aligned_alloc(size_t alignment, size_t n)
{
    count();
    return __libc_memalign(alignment, n);
}
void* memalign(size_t alignment, size_t n)
{
    count();
    return __libc_memalign(alignment, n);
}
int posix_memalign(void** p, size_t alignment, size_t n)
{
    count();
    *p = __libc_memalign(alignment, n);
    return *p != nullptr ? 0 : ENOMEM;
}
}

// operator new/delete: counted here, served by glibc directly (not counted twice).
void* operator new(std::size_t n)
{
    count();
    if (void* p = __libc_malloc(n != 0 ? n : 1))
        return p;
    throw std::bad_alloc{};
}
void* operator new[](std::size_t n)
{
    return ::operator new(n);
}
void* operator new(std::size_t n, std::align_val_t a)
{
    count();
    if (void* p = __libc_memalign(static_cast<std::size_t>(a), n != 0 ? n : 1))
        return p;
    throw std::bad_alloc{};
}
void* operator new[](std::size_t n, std::align_val_t a)
{
    return ::operator new(n, a);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept
{
    count();
    return __libc_malloc(n != 0 ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept
{
    count();
    return __libc_malloc(n != 0 ? n : 1);
}
void operator delete(void* p) noexcept
{
    __libc_free(p);
}
void operator delete[](void* p) noexcept
{
    __libc_free(p);
}
void operator delete(void* p, std::size_t) noexcept
{
    __libc_free(p);
}
void operator delete[](void* p, std::size_t) noexcept
{
    __libc_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept
{
    __libc_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept
{
    __libc_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept
{
    __libc_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept
{
    __libc_free(p);
}

namespace
{
/// A host that never allocates: storage in a fixed table, everything else empty; nested
/// calls are not executed (as evmc::MockedHost, which evmone-bench uses).
class Host final : public evmc::Host
{
    struct Slot
    {
        evmc::address addr;
        evmc::bytes32 key;
        evmc::bytes32 value;
    };
    std::array<Slot, 4096> slots_{};
    std::size_t used_ = 0;

    const Slot* find(const evmc::address& a, const evmc::bytes32& k) const noexcept
    {
        for (std::size_t i = 0; i < used_; ++i)
            if (slots_[i].addr == a && slots_[i].key == k)
                return &slots_[i];
        return nullptr;
    }

public:
    void clear() noexcept { used_ = 0; }

    bool account_exists(const evmc::address&) const noexcept override { return false; }
    evmc::bytes32 get_storage(
        const evmc::address& a, const evmc::bytes32& k) const noexcept override
    {
        const Slot* s = find(a, k);
        return s != nullptr ? s->value : evmc::bytes32{};
    }
    evmc_storage_status set_storage(
        const evmc::address& a, const evmc::bytes32& k, const evmc::bytes32& v) noexcept override
    {
        if (const Slot* s = find(a, k))
            const_cast<Slot*>(s)->value = v;
        else if (used_ < slots_.size())
            slots_[used_++] = {a, k, v};
        return EVMC_STORAGE_ASSIGNED;
    }
    evmc::uint256be get_balance(const evmc::address&) const noexcept override { return {}; }
    size_t get_code_size(const evmc::address&) const noexcept override { return 0; }
    evmc::bytes32 get_code_hash(const evmc::address&) const noexcept override { return {}; }
    size_t copy_code(const evmc::address&, size_t, uint8_t*, size_t) const noexcept override
    {
        return 0;
    }
    bool selfdestruct(const evmc::address&, const evmc::address&) noexcept override
    {
        return false;
    }
    evmc::Result call(const evmc_message& msg) noexcept override
    {
        if (nested_vm != nullptr)  // the call boundary cases: run the callee
            return nested_vm->execute(
                *this, EVMC_ISTANBUL, msg, nested_code.data(), nested_code.size());
        return evmc::Result{EVMC_SUCCESS, msg.gas, 0};
    }

    /// When set, CALLs run nested_code through nested_vm.
    evmc::VM* nested_vm = nullptr;
    std::vector<std::uint8_t> nested_code;
    evmc_tx_context get_tx_context() const noexcept override { return {}; }
    evmc::bytes32 get_block_hash(int64_t) const noexcept override { return {}; }
    void emit_log(const evmc::address&, const uint8_t*, size_t, const evmc::bytes32[],
        size_t) noexcept override
    {}
    evmc_access_status access_account(const evmc::address&) noexcept override
    {
        return EVMC_ACCESS_WARM;
    }
    evmc_access_status access_storage(const evmc::address&, const evmc::bytes32&) noexcept override
    {
        return EVMC_ACCESS_WARM;
    }
    evmc::bytes32 get_transient_storage(
        const evmc::address&, const evmc::bytes32&) const noexcept override
    {
        return {};
    }
    void set_transient_storage(
        const evmc::address&, const evmc::bytes32&, const evmc::bytes32&) noexcept override
    {}
};

std::vector<std::uint8_t> from_hex(const std::string& hex)
{
    std::vector<std::uint8_t> out;
    std::size_t i = (hex.rfind("0x", 0) == 0) ? 2 : 0;
    out.reserve(hex.size() / 2);
    for (; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    return out;
}

long minflt() noexcept
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}
}  // namespace

int main(int argc, char** argv)
{
    bool advanced = false;
    std::vector<const char*> args;
    for (int i = 1; i < argc; ++i)
    {
        if (std::strcmp(argv[i], "--advanced") == 0)
            advanced = true;
        else
            args.push_back(argv[i]);
    }
    if (args.empty())
    {
        std::fprintf(stderr, "usage: %s CASES_FILE [warmup] [calls] [--advanced]\n", argv[0]);
        return 2;
    }
    const int warmup = args.size() > 1 ? std::atoi(args[1]) : 5;
    const int calls = args.size() > 2 ? std::atoi(args[2]) : 50;
    const auto make_vm = [advanced] {
        evmc::VM vm{evmc_create_evmone()};
        if (advanced && vm.set_option("advanced", "") != EVMC_SET_OPTION_SUCCESS)
        {
            std::fprintf(stderr, "alloc_count: the VM has no advanced interpreter\n");
            std::exit(2);
        }
        return vm;
    };
    constexpr auto rev = EVMC_ISTANBUL;  // evmone-bench's default revision
    constexpr auto gas = std::numeric_limits<int64_t>::max();

    std::ifstream in{args[0]};
    std::string name, code_hex, input_hex;
    int rc = 0;
    while (in >> name >> code_hex >> input_hex)
    {
        const auto code = from_hex(code_hex);
        const auto input = input_hex == "-" ? std::vector<std::uint8_t>{} : from_hex(input_hex);

        // A fresh VM per case: the first call is the first at depth 0.
        evmc::VM vm = make_vm();
        Host host;
        evmc_message msg{};
        msg.kind = EVMC_CALL;
        msg.gas = gas;
        msg.input_data = input.data();
        msg.input_size = input.size();

        auto run = [&](int depth) {
            host.clear();
            msg.depth = depth;
            const evmc::Result r = vm.execute(host, rev, msg, code.data(), code.size());
            return std::array<std::int64_t, 3>{
                r.status_code, gas - r.gas_left, static_cast<std::int64_t>(r.output_size)};
        };

        allocations = 0;
        counting = true;
        const auto first = run(0);
        counting = false;
        const std::uint64_t first_allocs = allocations;

        for (int i = 0; i < warmup; ++i)
            run(0);

        allocations = 0;
        output_allocations = 0;
        output_size = static_cast<std::size_t>(first[2]);
        const long f0 = minflt();
        counting = true;
        for (int i = 0; i < calls; ++i)
            run(0);
        counting = false;
        const long f1 = minflt();
        const std::uint64_t steady_allocs = allocations;
        output_size = 0;

        allocations = 0;
        counting = true;
        run(7);
        counting = false;
        const std::uint64_t depth_allocs = allocations;

        std::printf("{\"name\": \"%s\", \"status\": %" PRId64 ", \"gas_used\": %" PRId64
                    ", \"output_size\": %" PRId64 ", \"first_call\": %" PRIu64
                    ", \"steady\": %.3f, \"output_allocs\": %.3f, \"new_depth\": %" PRIu64
                    ", \"minflt\": %.3f, \"calls\": %d",
            name.c_str(), first[0], first[1], first[2], first_allocs,
            static_cast<double>(steady_allocs) / calls,
            static_cast<double>(output_allocations) / calls, depth_allocs,
            static_cast<double>(f1 - f0) / calls, calls);
        if (advanced)
        {
            const std::size_t n = code.size();
            std::printf(
                ", \"code_size\": %zu, \"stock_reserve\": %zu", n, 16 * (n + 2) + 32 * (n + 1));
            if (evmalloc_evmone_advanced_part_bytes != nullptr)
                std::printf(", \"part_bytes\": %zu", evmalloc_evmone_advanced_part_bytes(n));
        }
        std::printf("}\n");
        if (first[0] != EVMC_SUCCESS)
            rc = 1;
    }
    // --- the call boundary -------------------------------------------------------------------
    for (const unsigned n : {32u, 1024u, 16384u})
    {
        const auto hi = static_cast<std::uint8_t>(n >> 8), lo = static_cast<std::uint8_t>(n);
        // CALL(gas, 0xaa, 0, 0, 0, 0, n); POP; RETURN(0, n)
        const std::vector<std::uint8_t> caller{0x61, hi, lo, 0x60, 0, 0x60, 0, 0x60, 0, 0x60, 0,
            0x60, 0xaa, 0x5a, 0xf1, 0x50, 0x61, hi, lo, 0x60, 0, 0xf3};
        evmc::VM vm = make_vm();
        Host host;
        host.nested_vm = &vm;
        host.nested_code = {0x61, hi, lo, 0x60, 0, 0xf3};  // RETURN(0, n)
        evmc_message msg{};
        msg.kind = EVMC_CALL;
        msg.gas = 10'000'000;
        auto run = [&]() {
            const evmc::Result r =
                vm.execute(host, EVMC_ISTANBUL, msg, caller.data(), caller.size());
            return std::array<std::int64_t, 3>{
                r.status_code, msg.gas - r.gas_left, static_cast<std::int64_t>(r.output_size)};
        };
        allocations = 0;
        counting = true;
        const auto first = run();
        counting = false;
        const std::uint64_t first_allocs = allocations;
        for (int i = 0; i < warmup; ++i)
            run();
        allocations = 0;
        output_allocations = 0;
        output_copies = 0;
        output_size = n;
        counting = true;
        for (int i = 0; i < calls; ++i)
            run();
        counting = false;
        output_size = 0;
        std::printf("{\"name\": \"boundary/call_output_%u\", \"status\": %" PRId64
                    ", \"gas_used\": %" PRId64 ", \"output_size\": %" PRId64
                    ", \"first_call\": %" PRIu64 ", \"steady\": %.3f, \"output_allocs\": %.3f, "
                    "\"new_depth\": 0, \"minflt\": 0, \"calls\": %d, \"vm_calls\": 2, "
                    "\"output_copies\": %.3f}\n",
            n, first[0], first[1], first[2], first_allocs, static_cast<double>(allocations) / calls,
            static_cast<double>(output_allocations) / calls, calls,
            static_cast<double>(output_copies) / calls);
        if (first[0] != EVMC_SUCCESS || first[2] != n)
            rc = 1;
    }
    return rc;
}
