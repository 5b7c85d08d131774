# CTest tests (label "cmake") that build and run tests/consumers against this source tree in
# the three ways a downstream project can use ssmkit. Included from the top-level CMakeLists.

# Consumers build with Ninja where it exists, otherwise with this project's generator.
if(CMAKE_GENERATOR MATCHES "Ninja")
  set(_ssmkit_consumer_generator "Ninja")
  set(_ssmkit_consumer_make "${CMAKE_MAKE_PROGRAM}")
else()
  find_program(SSMKIT_NINJA_EXECUTABLE NAMES ninja ninja-build)
  mark_as_advanced(SSMKIT_NINJA_EXECUTABLE)
  if(SSMKIT_NINJA_EXECUTABLE)
    set(_ssmkit_consumer_generator "Ninja")
    set(_ssmkit_consumer_make "${SSMKIT_NINJA_EXECUTABLE}")
  else()
    set(_ssmkit_consumer_generator "${CMAKE_GENERATOR}")
    set(_ssmkit_consumer_make "")
  endif()
endif()

set(_ssmkit_consumer_prefix "${CMAKE_BINARY_DIR}/consumer-prefix")

# Installs the package files of this build tree into a private prefix (emptied first).
add_test(NAME consumer_install
  COMMAND "${CMAKE_COMMAND}"
          -DMODE=install
          "-DBUILD_TREE=${CMAKE_BINARY_DIR}"
          "-DINSTALL_PREFIX=${_ssmkit_consumer_prefix}"
          -P "${PROJECT_SOURCE_DIR}/cmake/ssmkit_run_consumer.cmake")
set_tests_properties(consumer_install PROPERTIES LABELS cmake FIXTURES_SETUP ssmkit_installed)

foreach(_mode IN ITEMS find_package add_subdirectory fetchcontent)
  set(_name "consumer_${_mode}")
  add_test(NAME ${_name}
    COMMAND "${CMAKE_COMMAND}"
            "-DMODE=${_mode}"
            "-DCONSUMER_SOURCE_DIR=${PROJECT_SOURCE_DIR}/tests/consumers"
            "-DBINARY_DIR=${CMAKE_BINARY_DIR}/consumers/${_mode}"
            "-DSSMKIT_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
            "-DINSTALL_PREFIX=${_ssmkit_consumer_prefix}"
            "-DGENERATOR=${_ssmkit_consumer_generator}"
            "-DMAKE_PROGRAM=${_ssmkit_consumer_make}"
            "-DCUDA_COMPILER=${CMAKE_CUDA_COMPILER}"
            "-DCUDA_HOST_COMPILER=${CMAKE_CUDA_HOST_COMPILER}"
            "-DCXX_COMPILER=${CMAKE_CXX_COMPILER}"
            -P "${PROJECT_SOURCE_DIR}/cmake/ssmkit_run_consumer.cmake")
  set_tests_properties(${_name} PROPERTIES LABELS cmake TIMEOUT 1200)
endforeach()
set_tests_properties(consumer_find_package PROPERTIES FIXTURES_REQUIRED ssmkit_installed)
