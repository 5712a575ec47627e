# evmone on evmalloc: included by evmone's lib/evmone/CMakeLists.txt (evmone.patch) after the
# evmone target is defined. Adds our glue (src/) to the evmone library and evmalloc's headers
# to its include path. evmalloc's headers are not marked SYSTEM: they compile under evmone's
# own flags (-fno-exceptions, -fno-rtti, -Werror and its warning set).
#   EVMALLOC_ROOT           this repository (required)
#   EVMALLOC_INCLUDE_DIR    evmalloc's headers (default: ${EVMALLOC_ROOT}/include)
#   EVMONE_EVMALLOC_ASSERTS ON: evmalloc's contract checks on (EVMALLOC_ENABLE_ASSERTS=1), also
#                           in evmone's Release build
if(NOT EVMALLOC_ROOT)
    message(FATAL_ERROR "evmone on evmalloc: set EVMALLOC_ROOT to the evmalloc repository")
endif()
if(NOT EVMALLOC_INCLUDE_DIR)
    set(EVMALLOC_INCLUDE_DIR ${EVMALLOC_ROOT}/include)
endif()
option(EVMONE_EVMALLOC_ASSERTS "Build evmalloc with its asserts on" OFF)

target_sources(evmone PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src/evmalloc_call.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/evmalloc_output.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/evmalloc_advanced.cpp)
target_include_directories(evmone PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src ${EVMALLOC_INCLUDE_DIR})
# evmalloc_call.hpp includes evmone's own headers of this directory.
target_include_directories(evmone PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
if(EVMONE_EVMALLOC_ASSERTS)
    target_compile_definitions(evmone PUBLIC EVMALLOC_ENABLE_ASSERTS=1)
endif()
message(STATUS "evmone on evmalloc: ${EVMALLOC_INCLUDE_DIR} (asserts: ${EVMONE_EVMALLOC_ASSERTS})")
