// evmone-blocks: whole blocks through evmone's own state transition.
//
// Linked with one evmone build (stock, or on evmalloc) and that build's state library
// (evmone::state: State, Host, transition, mpt_hash). For each block it builds the pre-state in
// memory (generated here, seeded: no JSON), executes the block's transactions as a client does
// (validate_transaction, state::transition, apply the state diff), timing that loop only, then
// computes the post-state root and the receipts root with evmone's mpt_hash and checks what the
// block's contracts recorded (every call made, every depth reached). One JSON object per block
// and repetition goes to stdout.
//
// Blocks (sizes: --size full | ci):
//   sweep           a driver CALLs distinct 64 KiB contracts of the devnet-8 shape, each once
//   initcode        creation transactions with 49,152-byte initcodes (the EIP-3860 limit), the
//                   5b, 605b and 00 shapes of test_worst_initcode_jumpdest_analysis (Prague)
//   initcode-large  the same with 131,072-byte initcodes, in a Paris block (before EIP-3860,
//                   no initcode limit: the size Amsterdam allows)
//   initcode-create a factory contract CREATEs the same 49,152-byte initcode again and again
//                   within a transaction (one unique initcode per transaction and shape), as
//                   test_worst_initcode_jumpdest_analysis does: every CREATE analyses it anew
//   hot             transactions over a few hot contracts: an ERC-20-like token, a router that
//                   calls it (nested calls, return data), a WETH-like contract, and
//                   OpenZeppelin's ERC20 from ../shared/corpus (real solc output)
//   mixed           hot with sweep transactions interleaved
//   deep            a contract recursing 1024 deep, each frame expanding its memory
//
// The pre-state is a TestState whose accounts' code hashes are computed once when it is built
// (a client's database holds them), so an account lookup costs no keccak of its code.
// Repetition r of a block uses seed + r: new sweep contracts and new initcodes each time (a VM
// cannot have seen them before), the same hot contracts (as a node sees them block after block).
// Warm-up repetitions use other seeds. With --callgrind, the timed loop of each measured
// repetition is the only part callgrind instruments (run under valgrind --tool=callgrind
// --instr-atstart=no), dumped per block.
//
// With --advanced the VM runs evmone's advanced interpreter (evmc option "advanced") instead of
// baseline.
//
// usage: evmone-blocks [--size full|ci] [--blocks a,b,...] [--reps N] [--warmup N] [--seed S]
//                      [--callgrind] [--advanced]
#include "contracts.hpp"

#include <evmone/evmone.h>
#include <test/state/errors.hpp>
#include <test/state/host.hpp>
#include <test/state/mpt_hash.hpp>
#include <test/state/state.hpp>
#include <test/state/test_state.hpp>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#define CALLGRIND_DUMP_STATS_AT(x)
#endif

#include <time.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace blocks
{
namespace state = evmone::state;
using evmone::test::TestAccount;
using intx::uint256;

// --- the pre-state ------------------------------------------------------------------------------

/// TestState with the code hash of every account computed once, when its code is set.
class BlockState final : public evmone::test::TestState
{
public:
    std::optional<Account> get_account(const address& addr) const noexcept override
    {
        const auto it = find(addr);
        if (it == end())
            return std::nullopt;
        const TestAccount& acc = it->second;
        return Account{acc.nonce, acc.balance, code_hash(addr, acc), !acc.storage.empty()};
    }

    /// Adds (or replaces) an account.
    TestAccount& put(const address& addr, TestAccount acc)
    {
        TestAccount& a = (*this)[addr] = std::move(acc);
        remember_hash(addr, a.code);
        return a;
    }

    /// TestState::apply, and the hash of every code the diff sets.
    void commit(const state::StateDiff& diff)
    {
        apply(diff);
        for (const auto& m : diff.modified_accounts)
            if (m.code.has_value())
                remember_hash(m.addr, *m.code);
        for (const auto& a : diff.deleted_accounts)
            hashes_.erase(a);
    }

private:
    bytes32 code_hash(const address& addr, const TestAccount& acc) const noexcept
    {
        if (acc.code.empty())
            return state::Account::EMPTY_CODE_HASH;
        if (const auto h = hashes_.find(addr); h != hashes_.end())
            return h->second;
        return keccak(acc.code);
    }

    void remember_hash(const address& addr, const bytes& code)
    {
        if (code.empty())
            hashes_.erase(addr);
        else
            hashes_[addr] = keccak(code);
    }

    std::unordered_map<address, bytes32> hashes_;
};

// --- generation -----------------------------------------------------------------------------------

/// splitmix64: small, seeded, the same on every machine.
class Rng
{
public:
    explicit Rng(std::uint64_t seed) noexcept : s_{seed} {}
    std::uint64_t next() noexcept
    {
        std::uint64_t z = (s_ += 0x9e3779b97f4a7c15);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        return z ^ (z >> 31);
    }
    std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }

private:
    std::uint64_t s_;
};

address make_address(std::uint64_t tag, std::uint64_t i)
{
    address a;
    for (int k = 0; k < 8; ++k)
    {
        a.bytes[k] = static_cast<std::uint8_t>(tag >> (8 * k));
        a.bytes[12 + k] = static_cast<std::uint8_t>(i >> (8 * k));
    }
    a.bytes[8] = 0xee;  // never a precompile
    return a;
}

struct Sizes
{
    std::size_t sweep_contracts;
    std::size_t sweep_calls_per_tx;
    std::size_t initcode_txs_per_shape;
    std::size_t initcode_large_txs_per_shape;
    std::size_t create_txs_per_shape;
    std::size_t creates_per_tx;
    std::size_t hot_txs;
    std::size_t mixed_hot_txs;
    std::size_t mixed_sweep_contracts;
    std::size_t deep_txs;
    std::size_t deep_depth;
};

constexpr Sizes full_sizes{2000, 250, 32, 12, 4, 64, 1000, 1000, 2000, 16, 1024};
constexpr Sizes ci_sizes{40, 20, 2, 1, 1, 3, 60, 60, 40, 1, 1024};

constexpr std::size_t initcode_size = 49152;              // EIP-3860
constexpr std::size_t initcode_large_size = 131072;       // no limit before Shanghai; Amsterdam's
constexpr std::int64_t deep_gas = std::int64_t{1} << 42;  // the 63/64 rule, 1024 times over
constexpr std::uint64_t base_fee = 7;

struct Block
{
    std::string name;
    evmc_revision rev = EVMC_PRAGUE;
    state::BlockInfo info;
    BlockState pre;
    std::vector<state::Transaction> txs;
    /// What the block's contracts must have recorded: "" when they did, else what is wrong.
    std::function<std::string(const BlockState& post)> check;
    // sizes, for the report
    std::size_t vm_calls = 0;        // EVM executions the block makes
    std::size_t distinct_codes = 0;  // distinct codes it executes
    std::size_t code_bytes = 0;      // bytes of code it executes (each execution counted)
    std::string what;
};

/// Builds one block's transactions: senders, nonces, fees.
class Builder
{
public:
    /// The generator is seeded by the block's name and `seed`: no two blocks share a contract.
    Builder(Block& b, std::uint64_t seed) : b_{b}, rng_{seed ^ name_hash(b.name)}
    {
        b.info.number = 1;
        b.info.timestamp = 1'700'000'000;
        b.info.gas_limit = std::int64_t{1} << 62;
        b.info.coinbase = make_address(0xc0, 0);
        b.info.base_fee = base_fee;
        b.info.prev_randao = word(seed);
    }

    Rng& rng() noexcept { return rng_; }

    static std::uint64_t name_hash(const std::string& name) noexcept
    {
        std::uint64_t h = 0xcbf29ce484222325;  // FNV-1a
        for (const char c : name)
            h = (h ^ static_cast<std::uint8_t>(c)) * 0x100000001b3;
        return h;
    }

    /// An externally owned account with ether, `i` of `count`.
    address eoa(std::size_t i)
    {
        const address a = make_address(0xe0a, i);
        if (b_.pre.find(a) == b_.pre.end())
            b_.pre.put(a, {.nonce = 0, .balance = uint256{1} << 100, .storage = {}, .code = {}});
        return a;
    }

    state::Transaction& tx(const address& sender, std::optional<address> to, bytes data,
        std::int64_t gas, const uint256& value = 0)
    {
        auto& t = b_.txs.emplace_back();
        t.type = state::Transaction::Type::eip1559;
        t.sender = sender;
        t.to = to;
        t.data = std::move(data);
        t.gas_limit = gas;
        t.max_gas_price = base_fee + 3;
        t.max_priority_gas_price = 2;
        t.value = value;
        t.chain_id = 1;
        t.nonce = nonces_[sender]++;
        return t;
    }

private:
    Block& b_;
    Rng rng_;
    std::unordered_map<address, std::uint64_t> nonces_;
};

// sweep -------------------------------------------------------------------------------------------

struct Sweep
{
    address driver;
    std::vector<address> targets;
};

Sweep add_sweep_contracts(Block& b, Rng& rng, std::size_t count)
{
    Sweep s{make_address(0xd1, 0), {}};
    b.pre.put(s.driver, {.nonce = 1, .balance = 0, .storage = {}, .code = sweep_driver_code()});
    s.targets.reserve(count);
    while (s.targets.size() < count)
    {
        const address a =
            sweep_address(rng.next(), rng.next(), static_cast<std::uint32_t>(rng.next()));
        if (b.pre.find(a) != b.pre.end())
            continue;
        b.pre.put(a, {.nonce = 1, .balance = 0, .storage = {}, .code = sweep_target_code(a)});
        s.targets.push_back(a);
    }
    b.distinct_codes += count + 1;
    return s;
}

/// One driver transaction calling targets[first, first + n).
void add_sweep_tx(
    Block& b, Builder& bld, const Sweep& s, std::size_t first, std::size_t n, const address& sender)
{
    bytes data;
    for (std::size_t i = first; i < first + n; ++i)
        data.append(s.targets[i].bytes, sizeof(address));
    const auto gas = static_cast<std::int64_t>(100'000 + 16 * data.size() + 4'000 * n);
    bld.tx(sender, s.driver, std::move(data), gas);
    b.vm_calls += 1 + n;
    b.code_bytes += sweep_driver_code().size() + n * 65536;
}

std::string check_sweep(const BlockState& post, const address& driver, std::size_t calls)
{
    const auto it = post.find(driver);
    const auto done = it == post.end()                    ? bytes32{}
                      : it->second.storage.count(word(0)) ? it->second.storage.at(word(0))
                                                          : bytes32{};
    if (done != word(calls))
        return "the sweep driver did not see every call succeed";
    return "";
}

std::unique_ptr<Block> make_sweep(const Sizes& z, std::uint64_t seed)
{
    auto b = std::make_unique<Block>();
    b->name = "sweep";
    Builder bld{*b, seed};
    const Sweep s = add_sweep_contracts(*b, bld.rng(), z.sweep_contracts);
    std::size_t txs = 0;
    for (std::size_t i = 0; i < z.sweep_contracts; i += z.sweep_calls_per_tx, ++txs)
        add_sweep_tx(
            *b, bld, s, i, std::min(z.sweep_calls_per_tx, z.sweep_contracts - i), bld.eoa(txs % 8));
    const std::size_t calls = z.sweep_contracts;
    const address driver = s.driver;
    b->check = [=](const BlockState& post) { return check_sweep(post, driver, calls); };
    b->what = std::to_string(z.sweep_contracts) + " distinct 64 KiB contracts (devnet-8 shape), " +
              std::to_string(txs) + " driver transactions of up to " +
              std::to_string(z.sweep_calls_per_tx) + " calls";
    return b;
}

// initcode -------------------------------------------------------------------------------------

std::unique_ptr<Block> make_initcode(const std::string& name, evmc_revision rev, std::size_t size,
    std::size_t per_shape, std::uint64_t seed)
{
    auto b = std::make_unique<Block>();
    b->name = name;
    b->rev = rev;
    Builder bld{*b, seed};
    struct Created
    {
        address sender;
        std::uint64_t nonce;
    };
    std::vector<Created> created;
    std::size_t k = 0;
    for (std::size_t i = 0; i < per_shape; ++i)
    {
        for (const auto shape :
            {InitcodeShape::jumpdest, InitcodeShape::push1_jumpdest, InitcodeShape::zero})
        {
            const address sender = bld.eoa(k++ % 8);
            bytes code = initcode(shape, size, bld.rng().next());
            const auto gas = static_cast<std::int64_t>(100'000 + 60 * size);
            const auto& t = bld.tx(sender, std::nullopt, std::move(code), gas);
            created.push_back({sender, t.nonce});
            b->vm_calls += 1;
            b->code_bytes += size;
        }
    }
    b->distinct_codes = created.size();
    b->check = [created](const BlockState& post) -> std::string {
        for (const auto& c : created)
        {
            const auto it = post.find(state::compute_create_address(c.sender, c.nonce));
            if (it == post.end() || it->second.nonce != 1)
                return "a creation transaction created no account";
        }
        return "";
    };
    b->what = std::to_string(created.size()) + " creation transactions, " +
              std::to_string(per_shape) + " per shape (5b, 605b, 00), " + std::to_string(size) +
              "-byte initcodes, each unique";
    return b;
}

std::unique_ptr<Block> make_initcode_create(const Sizes& z, std::uint64_t seed)
{
    auto b = std::make_unique<Block>();
    b->name = "initcode-create";
    Builder bld{*b, seed};
    const address factory = make_address(0xfac, 0);
    b->pre.put(
        factory, {.nonce = 1, .balance = 0, .storage = {}, .code = factory_code(z.creates_per_tx)});
    const std::size_t factory_size = b->pre.at(factory).code.size();
    std::size_t k = 0;
    for (std::size_t i = 0; i < z.create_txs_per_shape; ++i)
    {
        for (const auto shape :
            {InitcodeShape::jumpdest, InitcodeShape::push1_jumpdest, InitcodeShape::zero})
        {
            bytes code = initcode(shape, initcode_size, bld.rng().next());
            const auto gas = static_cast<std::int64_t>(
                100'000 + 60 * initcode_size + z.creates_per_tx * (40'000 + initcode_size / 8));
            bld.tx(bld.eoa(k++ % 8), factory, std::move(code), gas);
            b->vm_calls += 1 + z.creates_per_tx;
            b->code_bytes += factory_size + z.creates_per_tx * initcode_size;
            b->distinct_codes += 1;
        }
    }
    b->distinct_codes += 1;
    const std::uint64_t nonce = 1 + k * z.creates_per_tx;
    b->check = [=](const BlockState& post) -> std::string {
        if (post.at(factory).nonce != nonce)
            return "the factory did not create every contract";
        return "";
    };
    b->what = std::to_string(k) + " transactions to a factory, each CREATEing its " +
              std::to_string(initcode_size) +
              "-byte initcode (5b, 605b, 00; one per transaction) " +
              std::to_string(z.creates_per_tx) + " times";
    return b;
}

// hot ---------------------------------------------------------------------------------------------

struct Hot
{
    address token, router, weth, oz;
    std::vector<address> senders, recipients;
    std::unordered_map<address, std::uint64_t> weth_deposits;
    std::size_t txs = 0;
};

bytes read_corpus(const std::string& file)
{
    const char* dir = std::getenv("EVMALLOC_CORPUS");
    const std::string path = std::string{dir != nullptr ? dir : "../shared/corpus"} + "/" + file;
    std::ifstream in{path};
    std::string hex;
    if (!(in >> hex))
        throw std::runtime_error("cannot read " + path + " (set EVMALLOC_CORPUS)");
    bytes out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    return out;
}

Hot add_hot_contracts(Block& b, Builder& bld)
{
    Hot h;
    h.token = make_address(0x70c, 0);
    h.router = make_address(0x707, 0);
    h.weth = make_address(0x7e7, 0);
    h.oz = make_address(0x0e2, 0);
    for (std::size_t i = 0; i < 64; ++i)
        h.senders.push_back(bld.eoa(100 + i));
    for (std::size_t i = 0; i < 256; ++i)
        h.recipients.push_back(make_address(0x2ec, i));

    const bytes32 rich = word(std::uint64_t{1} << 62);
    TestAccount token{.nonce = 1, .balance = 0, .storage = {}, .code = token_code()};
    TestAccount oz{
        .nonce = 1, .balance = 0, .storage = {}, .code = read_corpus("real/oz_erc20.hex")};
    TestAccount weth{.nonce = 1, .balance = uint256{1} << 80, .storage = {}, .code = weth_code()};
    std::vector<address> holders = h.senders;
    holders.push_back(h.router);
    for (const auto& a : holders)
    {
        token.storage[mapping_slot(a, 0)] = rich;
        oz.storage[mapping_slot(a, 0)] = rich;  // OpenZeppelin ERC20: _balances at slot 0
        weth.storage[mapping_slot(a, 0)] = word(std::uint64_t{1} << 40);
    }
    oz.storage[word(2)] =  // _totalSupply
        intx::be::store<bytes32>(uint256{holders.size()} << 62);
    b.pre.put(h.token, std::move(token));
    b.pre.put(h.oz, std::move(oz));
    b.pre.put(h.weth, std::move(weth));
    b.pre.put(h.router, {.nonce = 1, .balance = 0, .storage = {}, .code = router_code()});
    b.distinct_codes += 4;
    return h;
}

void add_hot_tx(Block& b, Builder& bld, Hot& h)
{
    Rng& r = bld.rng();
    const address from = h.senders[h.txs++ % h.senders.size()];
    const address to = h.recipients[r.below(h.recipients.size())];
    const std::uint64_t amount = 1 + r.below(1000);
    const auto transfer = selector("transfer(address,uint256)");
    const auto route = selector("route(address,address,uint256)");
    const std::uint64_t kind = r.below(100);
    constexpr std::int64_t gas = 300'000;
    const std::size_t token_size = b.pre.at(h.token).code.size();
    const std::size_t router_size = b.pre.at(h.router).code.size();
    const std::size_t oz_size = b.pre.at(h.oz).code.size();
    const std::size_t weth_size = b.pre.at(h.weth).code.size();
    if (kind < 35)
    {
        bld.tx(from, h.token, calldata(transfer, {word(to), word(amount)}), gas);
        b.vm_calls += 1;
        b.code_bytes += token_size;
    }
    else if (kind < 60)
    {
        bld.tx(from, h.router, calldata(route, {word(h.token), word(to), word(amount)}), gas);
        b.vm_calls += 3;
        b.code_bytes += router_size + 2 * token_size;
    }
    else if (kind < 75)
    {
        bld.tx(from, h.router, calldata(route, {word(h.oz), word(to), word(amount)}), gas);
        b.vm_calls += 3;
        b.code_bytes += router_size + 2 * oz_size;
    }
    else if (kind < 90)
    {
        bld.tx(from, h.oz, calldata(transfer, {word(to), word(amount)}), gas);
        b.vm_calls += 1;
        b.code_bytes += oz_size;
    }
    else if (kind < 95 || h.weth_deposits[from] < amount)
    {
        bld.tx(from, h.weth, calldata(selector("deposit()"), {}), gas, amount * 1000);
        h.weth_deposits[from] += amount * 1000;
        b.vm_calls += 1;
        b.code_bytes += weth_size;
    }
    else
    {
        bld.tx(from, h.weth, calldata(selector("withdraw(uint256)"), {word(amount)}), gas);
        h.weth_deposits[from] -= amount;
        b.vm_calls += 1;  // the value sent back goes to an account without code
        b.code_bytes += weth_size;
    }
}

std::string hot_what(std::size_t txs)
{
    return std::to_string(txs) +
           " transactions: token transfers 35%, router -> token 25%, router -> OpenZeppelin "
           "ERC20 15%, OpenZeppelin ERC20 transfers 15%, WETH-like deposit/withdraw 10%";
}

std::unique_ptr<Block> make_hot(const Sizes& z, std::uint64_t seed)
{
    auto b = std::make_unique<Block>();
    b->name = "hot";
    Builder bld{*b, seed};
    Hot h = add_hot_contracts(*b, bld);
    for (std::size_t i = 0; i < z.hot_txs; ++i)
        add_hot_tx(*b, bld, h);
    b->check = [](const BlockState&) { return std::string{}; };
    b->what = hot_what(z.hot_txs);
    return b;
}

std::unique_ptr<Block> make_mixed(const Sizes& z, std::uint64_t seed)
{
    auto b = std::make_unique<Block>();
    b->name = "mixed";
    Builder bld{*b, seed};
    Hot h = add_hot_contracts(*b, bld);
    const Sweep s = add_sweep_contracts(*b, bld.rng(), z.mixed_sweep_contracts);
    const std::size_t sweep_txs =
        (z.mixed_sweep_contracts + z.sweep_calls_per_tx - 1) / z.sweep_calls_per_tx;
    // One sweep transaction after every `every` hot ones: the hot set is called between sweeps.
    const std::size_t every = z.mixed_hot_txs / (sweep_txs + 1);
    std::size_t next_target = 0, sent = 0;
    for (std::size_t i = 0; i < z.mixed_hot_txs; ++i)
    {
        add_hot_tx(*b, bld, h);
        if ((i + 1) % every == 0 && next_target < z.mixed_sweep_contracts)
        {
            const std::size_t n =
                std::min(z.sweep_calls_per_tx, z.mixed_sweep_contracts - next_target);
            add_sweep_tx(*b, bld, s, next_target, n, bld.eoa(sent++ % 8));
            next_target += n;
        }
    }
    const std::size_t calls = next_target;
    const address driver = s.driver;
    b->check = [=](const BlockState& post) { return check_sweep(post, driver, calls); };
    b->what = hot_what(z.mixed_hot_txs) + "; with " + std::to_string(sent) +
              " sweep transactions between them calling " + std::to_string(calls) +
              " distinct 64 KiB contracts";
    return b;
}

// deep --------------------------------------------------------------------------------------------

std::unique_ptr<Block> make_deep(const Sizes& z, std::uint64_t seed)
{
    auto b = std::make_unique<Block>();
    b->name = "deep";
    Builder bld{*b, seed};
    const address deep = make_address(0xdee, 0);
    b->pre.put(deep, {.nonce = 1, .balance = 0, .storage = {}, .code = deep_code()});
    const std::size_t code_size = b->pre.at(deep).code.size();
    for (std::size_t i = 0; i < z.deep_txs; ++i)
    {
        const std::uint64_t memory = 1024 * (1 + bld.rng().below(8));
        bytes data;
        data += bytes{word(z.deep_depth).bytes, 32};
        data += bytes{word(memory).bytes, 32};
        bld.tx(bld.eoa(i % 8), deep, std::move(data), deep_gas);
        b->vm_calls += z.deep_depth + 1;
        b->code_bytes += (z.deep_depth + 1) * code_size;
    }
    b->distinct_codes = 1;
    const std::size_t txs = z.deep_txs, depth = z.deep_depth;
    b->check = [=](const BlockState& post) -> std::string {
        const auto& st = post.at(deep).storage;
        const auto get = [&](std::uint64_t k) {
            const auto it = st.find(word(k));
            return it == st.end() ? bytes32{} : it->second;
        };
        if (get(1) != word(txs))
            return "the recursion did not reach the bottom in every transaction";
        if (get(2) != word(depth))
            return "the depth count did not come back up the chain";
        return "";
    };
    b->what = std::to_string(z.deep_txs) + " transactions, each recursing " +
              std::to_string(z.deep_depth) +
              " deep (1025 frames), each frame expanding its memory to 1-8 KiB and returning 64 "
              "bytes to its caller";
    return b;
}

std::unique_ptr<Block> make_block(const std::string& name, const Sizes& z, std::uint64_t seed)
{
    if (name == "sweep")
        return make_sweep(z, seed);
    if (name == "initcode")
        return make_initcode(name, EVMC_PRAGUE, initcode_size, z.initcode_txs_per_shape, seed);
    if (name == "initcode-large")
        return make_initcode(
            name, EVMC_PARIS, initcode_large_size, z.initcode_large_txs_per_shape, seed);
    if (name == "initcode-create")
        return make_initcode_create(z, seed);
    if (name == "hot")
        return make_hot(z, seed);
    if (name == "mixed")
        return make_mixed(z, seed);
    if (name == "deep")
        return make_deep(z, seed);
    throw std::runtime_error("unknown block: " + name);
}

// execution ---------------------------------------------------------------------------------------

double cpu_now_ms() noexcept
{
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

struct Outcome
{
    double cpu_ms = 0;
    double wall_ms = 0;
    std::int64_t gas_used = 0;
    std::size_t failed_txs = 0;
    std::size_t rejected_txs = 0;
    bytes32 state_root;
    bytes32 receipts_root;
    std::string check;
};

Outcome execute(Block& b, evmc::VM& vm, bool instrument)
{
    Outcome out;
    const evmone::test::TestBlockHashes hashes;
    std::vector<state::TransactionReceipt> receipts;
    receipts.reserve(b.txs.size());
    std::int64_t block_gas_left = b.info.gas_limit;
    std::string first_error;

    if (instrument)
    {
        CALLGRIND_ZERO_STATS;
        CALLGRIND_START_INSTRUMENTATION;
    }
    const auto wall0 = std::chrono::steady_clock::now();
    const double cpu0 = cpu_now_ms();
    for (const auto& tx : b.txs)
    {
        const auto props = state::validate_transaction(b.pre, b.info, tx, b.rev, block_gas_left, 0);
        if (const auto* err = std::get_if<std::error_code>(&props))
        {
            ++out.rejected_txs;
            if (first_error.empty())
                first_error = err->message();
            continue;
        }
        auto receipt = state::transition(
            b.pre, b.info, hashes, tx, b.rev, vm, std::get<state::TransactionProperties>(props));
        b.pre.commit(receipt.state_diff);
        out.gas_used += receipt.gas_used;
        block_gas_left -= receipt.gas_used;
        receipt.cumulative_gas_used = out.gas_used;
        if (receipt.status != EVMC_SUCCESS)
            ++out.failed_txs;
        receipts.push_back(std::move(receipt));
    }
    out.cpu_ms = cpu_now_ms() - cpu0;
    out.wall_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall0).count();
    if (instrument)
    {
        CALLGRIND_STOP_INSTRUMENTATION;
        CALLGRIND_DUMP_STATS_AT(b.name.c_str());
    }

    out.state_root = state::mpt_hash(b.pre);
    out.receipts_root = state::mpt_hash(receipts);
    out.check = b.check(b.pre);
    if (out.check.empty() && out.rejected_txs != 0)
        out.check = "transactions rejected: " + first_error;
    if (out.check.empty() && out.failed_txs != 0)
        out.check = std::to_string(out.failed_txs) + " transactions failed";
    return out;
}

std::string hex(const bytes32& h)
{
    return "0x" + evmc::hex({h.bytes, sizeof(h.bytes)});
}

std::string json_escape(const std::string& s)
{
    std::string out;
    for (const char c : s)
    {
        if (c == '"' || c == '\\')
            out += '\\';
        out += c;
    }
    return out;
}

std::vector<std::string> split(const std::string& s)
{
    std::vector<std::string> out;
    std::stringstream in{s};
    for (std::string item; std::getline(in, item, ',');)
        if (!item.empty())
            out.push_back(item);
    return out;
}

int main(int argc, char** argv)
{
    std::string size = "full";
    std::vector<std::string> names{
        "sweep", "initcode", "initcode-large", "initcode-create", "hot", "mixed", "deep"};
    int reps = 3, warmup = 1;
    std::uint64_t seed = 1;
    bool callgrind = false;
    bool advanced = false;
    for (int i = 1; i < argc; ++i)
    {
        const std::string arg = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                throw std::runtime_error(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--size")
            size = value();
        else if (arg == "--blocks")
            names = split(value());
        else if (arg == "--reps")
            reps = std::stoi(value());
        else if (arg == "--warmup")
            warmup = std::stoi(value());
        else if (arg == "--seed")
            seed = std::stoull(value());
        else if (arg == "--callgrind")
            callgrind = true;
        else if (arg == "--advanced")
            advanced = true;
        else
            throw std::runtime_error("unknown argument: " + arg);
    }
    if (size != "full" && size != "ci")
        throw std::runtime_error("--size is full or ci");
    const Sizes& z = size == "ci" ? ci_sizes : full_sizes;

    evmc::VM vm{evmc_create_evmone()};
    if (advanced && vm.set_option("advanced", "") != EVMC_SET_OPTION_SUCCESS)
        throw std::runtime_error("the VM has no advanced interpreter");
    int rc = 0;
    for (const auto& name : names)
    {
        for (int r = -warmup; r < reps; ++r)
        {
            const bool measured = r >= 0;
            const std::uint64_t s = measured ? seed + static_cast<std::uint64_t>(r)
                                             : seed + 1000 + static_cast<std::uint64_t>(-r);
            auto block = make_block(name, z, s);
            const Outcome o = execute(*block, vm, callgrind && measured);
            if (!o.check.empty())
            {
                std::fprintf(stderr, "evmone-blocks: block %s (seed %" PRIu64 "): %s\n",
                    name.c_str(), s, o.check.c_str());
                rc = 1;
            }
            if (!measured)
                continue;
            std::printf(
                "{\"block\": \"%s\", \"size\": \"%s\", \"rep\": %d, \"seed\": %" PRIu64
                ", \"cpu_ms\": %.4f, \"wall_ms\": %.4f, \"txs\": %zu, \"gas_used\": %" PRId64
                ", \"vm_calls\": %zu, \"distinct_codes\": %zu, \"code_bytes\": %zu, "
                "\"state_root\": \"%s\", \"receipts_root\": \"%s\", \"ok\": %s, \"what\": "
                "\"%s\"}\n",
                name.c_str(), size.c_str(), r, s, o.cpu_ms, o.wall_ms, block->txs.size(),
                o.gas_used, block->vm_calls, block->distinct_codes, block->code_bytes,
                hex(o.state_root).c_str(), hex(o.receipts_root).c_str(),
                o.check.empty() ? "true" : "false", json_escape(block->what).c_str());
            std::fflush(stdout);
        }
    }
    return rc;
}
}  // namespace blocks

int main(int argc, char** argv)
{
    try
    {
        return blocks::main(argc, argv);
    }
    catch (const std::exception& e)
    {
        std::fprintf(stderr, "evmone-blocks: %s\n", e.what());
        return 2;
    }
}
