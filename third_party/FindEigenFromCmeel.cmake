# Eigen comes from the pinned `cmeel-eigen` build requirement (pyproject.toml), which
# installs headers and Eigen3Config.cmake under `<site-packages>/cmeel.prefix`.
# Inside pip's isolated build the interpreter's purelib is not where the build
# requirements live, so ask the build interpreter for every `cmeel.prefix` on its
# sys.path and hand them to find_package.  No Eigen sources are vendored.
function(pyfacerig_find_eigen)
  if(NOT Python_EXECUTABLE)
    find_package(Python COMPONENTS Interpreter REQUIRED)
  endif()
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
      "import sys, os; print(';'.join(os.path.join(p, 'cmeel.prefix') for p in sys.path if os.path.isdir(os.path.join(p, 'cmeel.prefix'))))"
    OUTPUT_VARIABLE _cmeel_prefixes
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND CMAKE_PREFIX_PATH ${_cmeel_prefixes})
  find_package(Eigen3 3.4 REQUIRED NO_MODULE)
  message(STATUS "pyfacerig: Eigen ${Eigen3_VERSION} from ${Eigen3_DIR}")
endfunction()
