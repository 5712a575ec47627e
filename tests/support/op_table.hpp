// Test and benchmark support: an op table of 256 distinct handler addresses, so a test can
// tell from ops()[i] exactly which opcode instruction i was given.
#pragma once

#include <evmalloc/stack_frame.hpp>

#include <cstddef>

namespace evmalloc::test
{
inline const StackFrame<>::OpTable& distinct_op_table()
{
    static const char handlers[256] = {};
    static const StackFrame<>::OpTable table = [] {
        StackFrame<>::OpTable t{};
        for (std::size_t i = 0; i < t.size(); ++i)
            t[i] = &handlers[i];
        return t;
    }();
    return table;
}

/// distinct_op_table()'s TableId, hashed once.
inline evmalloc::TableId distinct_op_table_id()
{
    static const evmalloc::TableId id = evmalloc::table_id(distinct_op_table());
    return id;
}
}  // namespace evmalloc::test
