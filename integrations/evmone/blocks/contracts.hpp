// The contracts of the block harness, in raw bytecode written here (asm.hpp), plus helpers for
// their storage layout and calldata.
//
//   token         ERC-20-like: transfer(address,uint256) and balanceOf(address); balances in a
//                 mapping at slot 0 (keccak256(holder . 0), as Solidity lays it out), a Transfer
//                 log per transfer
//   router        route(address token, address to, uint256 amount): CALLs token.transfer(to,
//                 amount) from its own balance (output into its memory), STATICCALLs
//                 token.balanceOf(to) (output through RETURNDATACOPY), returns both words
//   weth          WETH9-like: deposit() payable, withdraw(uint256) sends the value back (a
//                 value-carrying CALL)
//   sweep target  the devnet-8 shape: PUSH2 ffff JUMP, then JUMPDEST + its own 20-byte address
//                 repeated to 64 KiB, a JUMPDEST at 0xffff
//   sweep driver  CALLs every 20-byte address of its calldata once, adds the successes to slot 0
//   deep          calls itself with n - 1 until n is 0, each frame first expanding its memory to
//                 the calldata's size; returns a depth count up the chain (slot 2 at the top),
//                 slot 1 counts the bottoms reached
//   initcode      STOP, a PUSH8 salt (each initcode unique), then a pattern (5b, 605b or 00) to
//                 the size: execution-specs' test_worst_initcode_jumpdest_analysis shapes
//   factory       CREATEs its calldata (an initcode) `count` times, reverting if one fails: the
//                 same initcode analysed again at every CREATE, as in that test
#pragma once

#include "asm.hpp"

#include <test/state/hash_utils.hpp>

#include <cstdint>
#include <string_view>

namespace blocks
{
using evmc::address;
using evmc::bytes;
using evmc::bytes32;

inline bytes32 keccak(evmc::bytes_view data)
{
    return evmone::keccak256(data);
}

/// The 4-byte selector of a Solidity function signature.
inline std::uint32_t selector(std::string_view signature)
{
    const auto h =
        keccak({reinterpret_cast<const std::uint8_t*>(signature.data()), signature.size()});
    return (std::uint32_t{h.bytes[0]} << 24) | (std::uint32_t{h.bytes[1]} << 16) |
           (std::uint32_t{h.bytes[2]} << 8) | h.bytes[3];
}

inline bytes32 word(std::uint64_t v)
{
    bytes32 w{};
    for (int i = 0; i < 8; ++i)
        w.bytes[31 - i] = static_cast<std::uint8_t>(v >> (8 * i));
    return w;
}

inline bytes32 word(const address& a)
{
    bytes32 w{};
    std::copy(std::begin(a.bytes), std::end(a.bytes), w.bytes + 12);
    return w;
}

/// The storage slot of `key` in a Solidity mapping at slot `index`: keccak256(key . index).
inline bytes32 mapping_slot(const address& key, std::uint64_t index)
{
    bytes data(64, 0);
    const bytes32 k = word(key), i = word(index);
    std::copy(std::begin(k.bytes), std::end(k.bytes), data.begin());
    std::copy(std::begin(i.bytes), std::end(i.bytes), data.begin() + 32);
    return keccak(data);
}

/// Calldata: a selector, then 32-byte words.
inline bytes calldata(std::uint32_t sel, std::initializer_list<bytes32> args)
{
    bytes data;
    for (int i = 3; i >= 0; --i)
        data.push_back(static_cast<std::uint8_t>(sel >> (8 * i)));
    for (const auto& a : args)
        data.append(a.bytes, sizeof(a.bytes));
    return data;
}

namespace detail
{
/// [key] -> [keccak256(key . 0)]: the slot of `key` in the mapping at slot 0 (uses memory 0..64).
inline Asm& balance_slot(Asm& a)
{
    return a.push(0)
        .op(op::MSTORE)
        .push(0)
        .push(32)
        .op(op::MSTORE)
        .push(64)
        .push(0)
        .op(op::KECCAK256);
}

inline Asm& revert_label(Asm& a)
{
    return a.label("fail").push(0).op(op::DUP1, op::REVERT);
}

/// Jumps to `target` when the selector on top of the stack is `sel` (the selector stays).
inline Asm& dispatch(Asm& a, std::uint32_t sel, const std::string& target)
{
    return a.op(op::DUP1).push(sel).op(op::EQ).jumpi(target);
}

/// [] -> [selector]
inline Asm& load_selector(Asm& a)
{
    return a.push(0).op(op::CALLDATALOAD).push(224).op(op::SHR);
}

/// Returns the word on top of the stack.
inline Asm& return_word(Asm& a)
{
    return a.push(0).op(op::MSTORE).push(32).push(0).op(op::RETURN);
}

/// The "balanceOf" label: balanceOf(address) of the mapping at slot 0, returned.
inline Asm& balance_of(Asm& a)
{
    a.label("balanceOf").op(op::POP).push(4).op(op::CALLDATALOAD);
    balance_slot(a).op(op::SLOAD);
    return return_word(a);
}
}  // namespace detail

inline const bytes32 transfer_topic =
    keccak({reinterpret_cast<const std::uint8_t*>("Transfer(address,address,uint256)"), 33});

inline bytes token_code()
{
    using namespace op;
    Asm a;
    detail::load_selector(a);
    detail::dispatch(a, selector("transfer(address,uint256)"), "transfer");
    detail::dispatch(a, selector("balanceOf(address)"), "balanceOf");
    a.jump("fail");

    detail::balance_of(a);

    a.label("transfer").op(POP).push(36).op(CALLDATALOAD);  // [amount]
    a.op(CALLER);
    detail::balance_slot(a);                  // [from_slot, amount]
    a.op(DUP1, SLOAD);                        // [from_bal, from_slot, amount]
    a.op(DUP1, dup(4), GT).jumpi("fail");     // amount > from_bal: revert
    a.op(dup(3), SWAP1, SUB, SWAP1, SSTORE);  // from_bal - amount; [amount]
    a.push(4).op(CALLDATALOAD);
    detail::balance_slot(a);                        // [to_slot, amount]
    a.op(DUP1, SLOAD, dup(3), ADD, SWAP1, SSTORE);  // to_bal + amount; [amount]
    a.push(0).op(MSTORE);                           // the log's data: amount
    a.push(4).op(CALLDATALOAD, CALLER).push(transfer_topic).push(32).push(0).op(LOG3);
    a.push(1);
    detail::return_word(a);
    detail::revert_label(a);
    return a.build();
}

inline bytes router_code()
{
    using namespace op;
    Asm a;
    // token.transfer(to, amount): calldata in memory 0..68, its bool output into memory 128.
    a.push(selector("transfer(address,uint256)")).push(224).op(SHL).push(0).op(MSTORE);
    a.push(36).op(CALLDATALOAD).push(4).op(MSTORE);
    a.push(68).op(CALLDATALOAD).push(36).op(MSTORE);
    a.push(32).push(128).push(68).push(0).push(0).push(4).op(CALLDATALOAD, GAS, CALL);
    a.op(ISZERO).jumpi("fail");
    a.push(128).op(MLOAD, ISZERO).jumpi("fail");
    // token.balanceOf(to): no output area, the output comes through RETURNDATACOPY.
    a.push(selector("balanceOf(address)")).push(224).op(SHL).push(0).op(MSTORE);
    a.push(36).op(CALLDATALOAD).push(4).op(MSTORE);
    a.push(0).push(0).push(36).push(0).push(4).op(CALLDATALOAD, GAS, STATICCALL);
    a.op(ISZERO).jumpi("fail");
    a.op(RETURNDATASIZE).push(0).push(160).op(RETURNDATACOPY);
    a.push(64).push(128).op(RETURN);  // [true, balance]
    detail::revert_label(a);
    return a.build();
}

inline bytes weth_code()
{
    using namespace op;
    Asm a;
    detail::load_selector(a);
    detail::dispatch(a, selector("deposit()"), "deposit");
    detail::dispatch(a, selector("withdraw(uint256)"), "withdraw");
    detail::dispatch(a, selector("balanceOf(address)"), "balanceOf");
    a.jump("fail");

    a.label("deposit").op(POP, CALLER);
    detail::balance_slot(a);  // [slot]
    a.op(DUP1, SLOAD, CALLVALUE, ADD, SWAP1, SSTORE, STOP);

    a.label("withdraw").op(POP).push(4).op(CALLDATALOAD, CALLER);  // [caller, wad]
    detail::balance_slot(a);                                       // [slot, wad]
    a.op(DUP1, SLOAD);                                             // [bal, slot, wad]
    a.op(DUP1, dup(4), GT).jumpi("fail");
    a.op(dup(3), SWAP1, SUB, SWAP1, SSTORE);  // [wad]
    // CALL(gas 0 + stipend, caller, wad, 0, 0, 0, 0)
    a.push(0).push(0).push(0).push(0).op(dup(5), CALLER).push(0).op(CALL);
    a.op(ISZERO).jumpi("fail");
    a.op(STOP);

    detail::balance_of(a);
    detail::revert_label(a);
    return a.build();
}

/// An address whose bytes are all single-byte instructions (none of PUSH1..PUSH32), so that
/// the sweep target's JUMPDESTs all stay instruction starts.
inline address sweep_address(std::uint64_t a, std::uint64_t b, std::uint32_t c)
{
    address addr;
    for (int i = 0; i < 8; ++i)
    {
        addr.bytes[i] = static_cast<std::uint8_t>(a >> (8 * i));
        addr.bytes[8 + i] = static_cast<std::uint8_t>(b >> (8 * i));
    }
    for (int i = 0; i < 4; ++i)
        addr.bytes[16 + i] = static_cast<std::uint8_t>(c >> (8 * i));
    for (auto& byte : addr.bytes)
        if (byte >= op::PUSH1 && byte <= op::PUSH32)
            byte ^= 0x80;
    return addr;
}

/// The devnet-8 shape, exactly 64 KiB: PUSH2 ffff JUMP, then JUMPDEST + `self` repeated, the
/// rest JUMPDESTs (the last one, at 0xffff, is where the code jumps). \requires `self` is a
/// sweep_address (no PUSH byte).
inline bytes sweep_target_code(const address& self)
{
    constexpr std::size_t size = 65536;
    bytes code;
    code.reserve(size);
    code += {op::PUSH2, 0xff, 0xff, op::JUMP};
    while (code.size() + 1 + sizeof(self.bytes) < size)
    {
        code.push_back(op::JUMPDEST);
        code.append(self.bytes, sizeof(self.bytes));
    }
    code.resize(size, op::JUMPDEST);
    return code;
}

inline bytes sweep_driver_code()
{
    using namespace op;
    Asm a;
    a.push(0).push(0);  // [i, successes]
    a.label("loop").op(CALLDATASIZE, dup(2), LT, ISZERO).jumpi("end");
    a.push(0).push(0).push(0).push(0).push(0);               // out, in, value: none
    a.op(dup(6), CALLDATALOAD).push(96).op(SHR, GAS, CALL);  // [ok, i, successes]
    a.op(dup(3), ADD, swap(2), POP);                         // [i, successes + ok]
    a.push(20).op(ADD).jump("loop");
    a.label("end").op(POP).push(0).op(SLOAD, ADD).push(0).op(SSTORE, STOP);
    return a.build();
}

/// calldata: n (frames still to call), memory bytes per frame (>= 256).
inline bytes deep_code()
{
    using namespace op;
    Asm a;
    a.push(0).op(CALLDATALOAD);                                            // [n]
    a.op(DUP1).push(32).op(CALLDATALOAD).push(32).op(SWAP1, SUB, MSTORE);  // mem[size - 32] = n
    a.op(DUP1, ISZERO).jumpi("bottom");
    a.push(1).op(dup(2), SUB).push(0).op(MSTORE);     // mem[0] = n - 1
    a.push(32).op(CALLDATALOAD).push(32).op(MSTORE);  // mem[32] = size
    a.push(64).push(64).push(64).push(0).push(0).op(ADDRESS, GAS, CALL);
    a.op(ISZERO).jumpi("fail");
    a.push(64).op(MLOAD).push(1).op(ADD).push(64).op(MSTORE);  // the count, plus this frame
    a.op(ORIGIN, CALLER, EQ, ISZERO).jumpi("return");
    a.push(64).op(MLOAD).push(2).op(SSTORE);  // the top: slot 2 = the count
    a.label("return").push(64).push(64).op(RETURN);
    a.label("bottom").push(1).op(SLOAD).push(1).op(ADD).push(1).op(SSTORE);
    a.push(0).push(64).op(MSTORE).push(64).push(64).op(RETURN);
    detail::revert_label(a);
    return a.build();
}

/// CREATE(0, 0, CALLDATASIZE) of its calldata `count` times (count < 65536).
inline bytes factory_code(std::uint64_t count)
{
    using namespace op;
    Asm a;
    a.op(CALLDATASIZE).push(0).push(0).op(CALLDATACOPY);  // memory = the initcode
    a.push(count);                                        // [i]
    a.label("loop").op(DUP1, ISZERO).jumpi("end");
    a.op(CALLDATASIZE).push(0).push(0).op(CREATE, ISZERO).jumpi("fail");
    a.push(1).op(SWAP1, SUB).jump("loop");
    a.label("end").op(STOP);
    detail::revert_label(a);
    return a.build();
}

enum class InitcodeShape
{
    jumpdest,        // 5b
    push1_jumpdest,  // 605b
    zero,            // 00
};

inline const char* name(InitcodeShape s)
{
    switch (s)
    {
    case InitcodeShape::jumpdest:
        return "5b";
    case InitcodeShape::push1_jumpdest:
        return "605b";
    case InitcodeShape::zero:
    default:
        return "00";
    }
}

/// STOP, PUSH8 salt, then the shape's pattern to `size` bytes.
inline bytes initcode(InitcodeShape shape, std::size_t size, std::uint64_t salt)
{
    bytes code{op::STOP, 0x67};
    for (int i = 7; i >= 0; --i)
        code.push_back(static_cast<std::uint8_t>(salt >> (8 * i)));
    code.reserve(size);
    while (code.size() < size)
    {
        switch (shape)
        {
        case InitcodeShape::jumpdest:
            code.push_back(op::JUMPDEST);
            break;
        case InitcodeShape::push1_jumpdest:
            code.push_back(op::PUSH1);
            if (code.size() < size)
                code.push_back(op::JUMPDEST);
            break;
        case InitcodeShape::zero:
            code.push_back(op::STOP);
            break;
        }
    }
    return code;
}
}  // namespace blocks
