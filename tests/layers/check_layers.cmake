# Checks every header's includes against the layer table: a header may include headers of its
# own layer or of a layer below it, never above. A header that is not in the table fails the
# check too, so a new header must be placed in a layer here (and drawn in docs/layers.md).
#
#   cmake -DINCLUDE_DIR=<dir holding evmalloc/*.hpp> -P tests/layers/check_layers.cmake
#
# Run by ctest as layers:includes_point_down. Prints every violation, then fails.

cmake_minimum_required(VERSION 3.25)

# Lowest first. A name with no header (yet) is allowed: the table may place a header before it lands.
set(layers core resources components frame composition tools)
set(layer_core config result allocation tier traits sanitizer opcodes upstream intrusive_list code_hash
    admission keyed_hash table_id)
set(layer_resources monotonic_arena slot_pool object_pool buffer_pool synchronized statistics
    transaction_arena)
set(layer_components stack analysis jumpdest_scan jumpdest_analysis instruction_array memory padded_code code_part)
set(layer_frame frame_layout frame_pool analysis_cache stack_frame)
set(layer_composition evm_allocator)
set(layer_tools layout evmalloc)

if(NOT DEFINED INCLUDE_DIR)
    message(FATAL_ERROR "check_layers.cmake: pass -DINCLUDE_DIR=<dir holding evmalloc/*.hpp>")
endif()

# layer_of(<header name without .hpp> <out var>): the layer's index, or -1 when not in the table.
function(layer_of name out)
    set(index 0)
    foreach(layer IN LISTS layers)
        if(name IN_LIST layer_${layer})
            set(${out} ${index} PARENT_SCOPE)
            return()
        endif()
        math(EXPR index "${index} + 1")
    endforeach()
    set(${out} -1 PARENT_SCOPE)
endfunction()

file(GLOB headers "${INCLUDE_DIR}/evmalloc/*.hpp")
if(NOT headers)
    message(FATAL_ERROR "check_layers.cmake: no headers in ${INCLUDE_DIR}/evmalloc")
endif()

set(problems "")
set(edges 0)
foreach(header IN LISTS headers)
    get_filename_component(name "${header}" NAME_WE)
    layer_of(${name} from)
    if(from EQUAL -1)
        list(APPEND problems "${name}.hpp is not in the layer table: add it to its layer in tests/layers/check_layers.cmake")
        continue()
    endif()
    list(GET layers ${from} from_layer)
    file(STRINGS "${header}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*(\"[^\"]+\"|<evmalloc/[^>]+>)")
    foreach(line IN LISTS includes)
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[\"<](evmalloc/)?([^\">]+)[\">].*$" "\\2" included "${line}")
        get_filename_component(included_name "${included}" NAME_WE)
        layer_of(${included_name} to)
        if(to EQUAL -1)
            list(APPEND problems "${name}.hpp includes ${included}, which is not in the layer table")
        elseif(to GREATER from)
            list(GET layers ${to} to_layer)
            list(APPEND problems "upward include: ${name}.hpp (${from_layer}) includes ${included} (${to_layer})")
        endif()
        math(EXPR edges "${edges} + 1")
    endforeach()
endforeach()

list(LENGTH headers header_count)
if(problems)
    list(JOIN problems "\n  " text)
    message(FATAL_ERROR "layer check failed:\n  ${text}\n"
                        "Layers, lowest first: ${layers} (a header includes its own layer or lower ones).")
endif()
message(STATUS "layer check: ${header_count} headers, ${edges} includes, all pointing down or sideways")
