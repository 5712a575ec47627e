// evmalloc: what names an op table in the analysis caches.
//
// A cached code part built through an op table holds that table's handlers, so an entry answers
// only a lookup through the same table. "The same" is decided by a TableId, never by the
// table's address: a table rebuilt per revision, a table on the stack or a temporary can take
// the address of a destroyed one with other handlers, and an address would hand it the old
// handlers back.
//
// Two ways to get one:
//   table_id(table)   the table's contents, hashed (keyed_code_hash() of its object
//                     representation; for a 256-entry table of 8-byte handlers, 2 KiB): equal
//                     contents give equal ids. Compute it once, when the table is built.
//   TableId{n}        an id the caller gives, such as the revision the table is for. The caller
//                     promises that one id always names tables of the same contents (as a
//                     CodeHash promises its code), within one cache.
// Do not mix the two ways in one cache unless the given ids cannot equal a hash (the chance
// that a given small number equals a 64-bit hash is 2^-64 per table).
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>

#include "keyed_hash.hpp"

namespace evmalloc
{
/// The identity of an op table in a cache (see the top of this header). TableId{} (0) is the
/// id of "no table", for code parts that take none.
struct TableId
{
    std::uint64_t value = 0;
    friend constexpr bool operator==(TableId, TableId) noexcept = default;
};

/// True when table_id() can hash a Table's bytes: no padding and no representation that two
/// equal values may spell differently.
template <class Table>
inline constexpr bool hashable_table =
    std::is_trivially_copyable_v<Table>&& std::has_unique_object_representations_v<Table>;

/// The id of `table`'s contents: equal contents give equal ids within a process. Costs one
/// hash of sizeof(Table) bytes: compute it when the table is built. Never TableId{} (that is
/// "no table").
template <class Table>
    requires hashable_table<Table>
[[nodiscard]] TableId table_id(const Table& table) noexcept
{
    const std::uint64_t h =
        keyed_code_hash({reinterpret_cast<const std::uint8_t*>(&table), sizeof(Table)});
    return TableId{h != 0 ? h : 1};
}
}  // namespace evmalloc
