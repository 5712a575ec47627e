# Runs a death-test executable: `EXE CASE`. Passes only when the process aborts (SIGABRT) AND
# its stderr contains the text EXPECT; a normal exit, another signal or a missing message fail.
#   cmake -DEXE=<path> -DCASE=<name> -DEXPECT=<text> -P check.cmake
execute_process(COMMAND "${EXE}" "${CASE}"
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT result MATCHES "aborted")
    message(FATAL_ERROR "${CASE}: expected an abort, the process ended with '${result}'\n"
                        "stdout:\n${out}\nstderr:\n${err}")
endif()
string(FIND "${err}" "${EXPECT}" at)
if(at EQUAL -1)
    message(FATAL_ERROR "${CASE}: aborted, but stderr lacks '${EXPECT}'\nstderr:\n${err}")
endif()
message(STATUS "${CASE}: aborted with '${EXPECT}'")
