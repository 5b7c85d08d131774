# Runs doxygen and fails if it exits with an error or prints any warning.
# Usage: cmake -DDOXYGEN=<exe> -DDOXYFILE=<file> -DWORKING_DIR=<dir> -P ssmkit_run_doxygen.cmake
foreach(_var IN ITEMS DOXYGEN DOXYFILE WORKING_DIR)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "ssmkit_run_doxygen.cmake: ${_var} is not set")
  endif()
endforeach()

execute_process(
  COMMAND "${DOXYGEN}" "${DOXYFILE}"
  WORKING_DIRECTORY "${WORKING_DIR}"
  RESULT_VARIABLE _rc
  OUTPUT_VARIABLE _out
  ERROR_VARIABLE _err)

if(NOT _out STREQUAL "")
  message("${_out}")
endif()
string(STRIP "${_err}" _err)
if(NOT _rc EQUAL 0 OR NOT _err STREQUAL "" OR _out MATCHES "[Ww]arning:")
  message(FATAL_ERROR "doxygen reported problems (exit code ${_rc}):\n${_err}")
endif()
