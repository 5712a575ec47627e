// evmalloc: the layout report of a struct, at compile time.
//
// layout_report<T>() says how many bytes of an aggregate T are padding and how small T would
// be with its fields reordered by alignment, largest first. It reads T's fields with
// Boost.PFR, so T must be an aggregate PFR can reflect: no base classes, no reference or
// bit-field members, no user-declared constructors. This is the only evmalloc header that
// needs Boost (Debian: libboost1.81-dev); evmalloc.hpp does not include it.
//
//     static_assert(evmalloc::layout_report<MyHeader>().padding_bytes == 0);
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/pfr/core.hpp>

#include "allocation.hpp"

namespace evmalloc
{
struct LayoutReport
{
    std::size_t size;           ///< sizeof(T)
    std::size_t alignment;      ///< alignof(T)
    std::size_t field_count;    ///< direct fields (an array member counts once)
    std::size_t padding_bytes;  ///< size minus the sum of the fields' sizes
    std::size_t optimal_size;   ///< sizeof T with fields sorted by alignment, largest first
    std::size_t savings;        ///< size - optimal_size

    friend constexpr bool operator==(const LayoutReport&, const LayoutReport&) noexcept = default;
};

namespace detail
{
struct FieldShape
{
    std::size_t size;
    std::size_t alignment;
};

template <class T, std::size_t... I>
constexpr std::array<FieldShape, sizeof...(I)> field_shapes(std::index_sequence<I...>) noexcept
{
    return {FieldShape{
        sizeof(boost::pfr::tuple_element_t<I, T>), alignof(boost::pfr::tuple_element_t<I, T>)}...};
}
}  // namespace detail

/// The layout of the aggregate T. Usable in constant expressions.
/// \requires T is an aggregate Boost.PFR can reflect.
template <class T>
[[nodiscard]] constexpr LayoutReport layout_report() noexcept
{
    static_assert(std::is_aggregate_v<T>, "layout_report needs an aggregate (Boost.PFR)");
    constexpr std::size_t n = boost::pfr::tuple_size_v<T>;
    auto fields = detail::field_shapes<T>(std::make_index_sequence<n>{});

    std::size_t field_bytes = 0;
    for (const auto& f : fields)
        field_bytes += f.size;

    // Largest alignment first (an insertion sort: stable, and constexpr in C++20).
    for (std::size_t i = 1; i < n; ++i)
    {
        const detail::FieldShape f = fields[i];
        std::size_t j = i;
        for (; j > 0 && fields[j - 1].alignment < f.alignment; --j)
            fields[j] = fields[j - 1];
        fields[j] = f;
    }
    std::size_t offset = 0;
    for (const auto& f : fields)
        offset = align_up(offset, f.alignment) + f.size;
    const std::size_t optimal = std::max<std::size_t>(align_up(offset, alignof(T)), 1);

    return LayoutReport{
        sizeof(T),
        alignof(T),
        n,
        // Saturating: [[no_unique_address]] fields may take less room than their sizeof.
        sizeof(T) > field_bytes ? sizeof(T) - field_bytes : 0,
        std::min(optimal, sizeof(T)),
        sizeof(T) > optimal ? sizeof(T) - optimal : 0,
    };
}
}  // namespace evmalloc
