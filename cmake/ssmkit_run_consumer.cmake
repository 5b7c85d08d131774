# Configures, builds and runs tests/consumers in one consumption mode, from scratch; or, with
# MODE=install, installs the build tree BUILD_TREE into the (emptied) prefix INSTALL_PREFIX.
# Usage: cmake -DMODE=install -DBUILD_TREE=... -DINSTALL_PREFIX=... -P ssmkit_run_consumer.cmake
# Usage: cmake -DMODE=find_package|add_subdirectory|fetchcontent -DCONSUMER_SOURCE_DIR=...
#              -DBINARY_DIR=... -DSSMKIT_SOURCE_DIR=... [-DINSTALL_PREFIX=...] -DGENERATOR=...
#              [-DMAKE_PROGRAM=...] [-DCUDA_COMPILER=...] [-DCUDA_HOST_COMPILER=...]
#              [-DCXX_COMPILER=...] -P ssmkit_run_consumer.cmake
cmake_minimum_required(VERSION 3.24)

function(run_step what)
  string(REPLACE ";" " " _pretty "${ARGN}")
  message(STATUS "[${MODE}] ${what}: ${_pretty}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] ${what} failed (${_rc})")
  endif()
endfunction()

if(MODE STREQUAL "install")
  if(NOT IS_DIRECTORY "${BUILD_TREE}" OR "${INSTALL_PREFIX}" STREQUAL "")
    message(FATAL_ERROR "ssmkit_run_consumer.cmake: set BUILD_TREE and INSTALL_PREFIX")
  endif()
  file(REMOVE_RECURSE "${INSTALL_PREFIX}")
  run_step("install" "${CMAKE_COMMAND}" --install "${BUILD_TREE}" --prefix "${INSTALL_PREFIX}"
           --component ssmkit_dev)
  return()
endif()

foreach(_var IN ITEMS MODE CONSUMER_SOURCE_DIR BINARY_DIR SSMKIT_SOURCE_DIR GENERATOR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "ssmkit_run_consumer.cmake: ${_var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${BINARY_DIR}")
file(MAKE_DIRECTORY "${BINARY_DIR}")

set(_args
  -S "${CONSUMER_SOURCE_DIR}" -B "${BINARY_DIR}/build" -G "${GENERATOR}"
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_CUDA_ARCHITECTURES=75
  "-DSSMKIT_CONSUME_MODE=${MODE}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
foreach(_pair IN ITEMS "MAKE_PROGRAM:CMAKE_MAKE_PROGRAM" "CUDA_COMPILER:CMAKE_CUDA_COMPILER"
                       "CUDA_HOST_COMPILER:CMAKE_CUDA_HOST_COMPILER"
                       "CXX_COMPILER:CMAKE_CXX_COMPILER")
  string(REPLACE ":" ";" _pair "${_pair}")
  list(GET _pair 0 _in)
  list(GET _pair 1 _out)
  if(DEFINED ${_in} AND NOT "${${_in}}" STREQUAL "")
    list(APPEND _args "-D${_out}=${${_in}}")
  endif()
endforeach()

if(MODE STREQUAL "find_package")
  if(NOT IS_DIRECTORY "${INSTALL_PREFIX}")
    message(FATAL_ERROR "INSTALL_PREFIX '${INSTALL_PREFIX}' does not exist")
  endif()
  # Use a copy of the installed tree in another place: the package must be relocatable.
  set(_prefix "${BINARY_DIR}/relocated-prefix")
  file(COPY "${INSTALL_PREFIX}/" DESTINATION "${_prefix}")
  list(APPEND _args "-DCMAKE_PREFIX_PATH=${_prefix}" "-DSSMKIT_EXPECT_PREFIX=${_prefix}")
elseif(MODE STREQUAL "add_subdirectory" OR MODE STREQUAL "fetchcontent")
  list(APPEND _args "-DSSMKIT_SOURCE_DIR=${SSMKIT_SOURCE_DIR}")
else()
  message(FATAL_ERROR "Unknown MODE '${MODE}'")
endif()

run_step("configure" "${CMAKE_COMMAND}" ${_args})
run_step("build" "${CMAKE_COMMAND}" --build "${BINARY_DIR}/build" --config Release)

file(GLOB_RECURSE _exe LIST_DIRECTORIES false
     "${BINARY_DIR}/build/ssmkit_consumer" "${BINARY_DIR}/build/ssmkit_consumer.exe")
if(NOT _exe)
  message(FATAL_ERROR "[${MODE}] the consumer executable was not built")
endif()
list(GET _exe 0 _exe)
run_step("run" "${_exe}")
