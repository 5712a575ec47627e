// A small EVM assembler for the block harness: opcodes, pushes of the smallest width, and
// labels (JUMPDESTs) that PUSH2 references resolve to when the code is built.
#pragma once

#include <evmc/evmc.hpp>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace blocks
{
/// The opcodes the harness's contracts use.
namespace op
{
inline constexpr std::uint8_t STOP = 0x00, ADD = 0x01, SUB = 0x03, LT = 0x10, GT = 0x11, EQ = 0x14,
                              ISZERO = 0x15, SHL = 0x1b, SHR = 0x1c, KECCAK256 = 0x20,
                              ADDRESS = 0x30, ORIGIN = 0x32, CALLER = 0x33, CALLVALUE = 0x34,
                              CALLDATALOAD = 0x35, CALLDATASIZE = 0x36, CALLDATACOPY = 0x37,
                              RETURNDATASIZE = 0x3d, RETURNDATACOPY = 0x3e, POP = 0x50,
                              MLOAD = 0x51, MSTORE = 0x52, SLOAD = 0x54, SSTORE = 0x55, JUMP = 0x56,
                              JUMPI = 0x57, GAS = 0x5a, JUMPDEST = 0x5b, PUSH1 = 0x60, PUSH2 = 0x61,
                              PUSH20 = 0x73, PUSH32 = 0x7f, DUP1 = 0x80, SWAP1 = 0x90, LOG3 = 0xa3,
                              CREATE = 0xf0, CALL = 0xf1, RETURN = 0xf3, STATICCALL = 0xfa,
                              REVERT = 0xfd;
/// DUPn and SWAPn, n = 1..16.
constexpr std::uint8_t dup(int n) noexcept
{
    return static_cast<std::uint8_t>(DUP1 + n - 1);
}
constexpr std::uint8_t swap(int n) noexcept
{
    return static_cast<std::uint8_t>(SWAP1 + n - 1);
}
}  // namespace op

class Asm
{
public:
    /// Appends opcodes as they are.
    template <class... Ops>
    Asm& op(Ops... ops)
    {
        (code_.push_back(static_cast<std::uint8_t>(ops)), ...);
        return *this;
    }

    /// PUSHn of the fewest bytes holding `value` (PUSH1 0 for 0: no PUSH0, so that the code
    /// also runs before Shanghai).
    Asm& push(std::uint64_t value)
    {
        int n = 1;
        while (n < 8 && (value >> (8 * n)) != 0)
            ++n;
        code_.push_back(static_cast<std::uint8_t>(op::PUSH1 + n - 1));
        for (int i = n - 1; i >= 0; --i)
            code_.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
        return *this;
    }

    Asm& push(const evmc::address& a)
    {
        code_.push_back(op::PUSH20);
        code_.append(a.bytes, sizeof(a.bytes));
        return *this;
    }

    Asm& push(const evmc::bytes32& w)
    {
        code_.push_back(op::PUSH32);
        code_.append(w.bytes, sizeof(w.bytes));
        return *this;
    }

    /// PUSH2 of a label's offset (resolved by build()).
    Asm& push_label(const std::string& name)
    {
        code_.push_back(op::PUSH2);
        fixups_.emplace_back(code_.size(), name);
        code_.append(2, 0);
        return *this;
    }

    /// A JUMPDEST here, named `name`.
    Asm& label(const std::string& name)
    {
        if (!labels_.emplace(name, code_.size()).second)
            throw std::logic_error("label defined twice: " + name);
        code_.push_back(op::JUMPDEST);
        return *this;
    }

    Asm& jump(const std::string& name) { return push_label(name).op(op::JUMP); }
    Asm& jumpi(const std::string& name) { return push_label(name).op(op::JUMPI); }

    /// The code with every label reference resolved.
    [[nodiscard]] evmc::bytes build() const
    {
        evmc::bytes code = code_;
        for (const auto& [at, name] : fixups_)
        {
            const auto it = labels_.find(name);
            if (it == labels_.end() || it->second > 0xffff)
                throw std::logic_error("label not defined: " + name);
            code[at] = static_cast<std::uint8_t>(it->second >> 8);
            code[at + 1] = static_cast<std::uint8_t>(it->second);
        }
        return code;
    }

private:
    evmc::bytes code_;
    std::map<std::string, std::size_t> labels_;
    std::vector<std::pair<std::size_t, std::string>> fixups_;
};
}  // namespace blocks
