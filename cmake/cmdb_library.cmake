# cmdb_library(<name> SOURCES ... [PUBLIC deps...] [PRIVATE deps...])
# Declares the static library cmdb_<name> of one folder (Abseil's one-call-per-target style):
# includes start at the repository root, our warnings apply to our own sources only.
function(cmdb_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC;PRIVATE" ${ARGN})
  add_library(cmdb_${name} STATIC ${ARG_SOURCES})
  target_include_directories(cmdb_${name} PUBLIC "${PROJECT_SOURCE_DIR}")
  target_link_libraries(cmdb_${name} PUBLIC ${ARG_PUBLIC} PRIVATE cmdb_warnings ${ARG_PRIVATE})
endfunction()
