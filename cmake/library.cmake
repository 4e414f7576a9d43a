# library.cmake — libpixdiff.so (soname libpixdiff.so.MAJOR) and libpixdiff.a from the rooms'
# objects (PD_OBJECTS), and the install tree (issue 19): bin/pixdiff, lib/, include/, the
# pkg-config file, the CMake package (find_package(pixdiff) -> pixdiff::pixdiff), and
# share/pixdiff/{models,configs}. Every installed path is relative to the prefix (pixdiff.pc uses
# ${pcfiledir}, the CMake package its own location, the library core/data_dir.c), so the prefix
# can be moved after install.

add_library(pixdiff_shared SHARED ${PD_OBJECTS})
add_library(pixdiff_static STATIC ${PD_OBJECTS})
# Only the public pd_* names leave the shared library (cmake/pixdiff.map).
set_target_properties(pixdiff_shared PROPERTIES
  OUTPUT_NAME pixdiff VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  EXPORT_NAME pixdiff LINK_DEPENDS ${CMAKE_SOURCE_DIR}/cmake/pixdiff.map)
target_link_options(pixdiff_shared PRIVATE -Wl,--version-script=${CMAKE_SOURCE_DIR}/cmake/pixdiff.map
                    -Wl,--no-undefined)
set_target_properties(pixdiff_static PROPERTIES OUTPUT_NAME pixdiff)
target_link_libraries(pixdiff_shared PRIVATE ${PD_EXTERNAL})
target_link_libraries(pixdiff_static PUBLIC ${PD_EXTERNAL})
target_include_directories(pixdiff_shared INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
# A sanitized library (PD_SANITIZE, `make sanitize`) needs ASan's runtime to come first in the
# program that loads it, so pixdiff.pc and the CMake package of such a build ask every consumer to
# link with the same -fsanitize flags (docs/testing.md "Sanitizers"); an ordinary build adds none.
if(PD_SANITIZE)
  set(PD_PC_SANITIZE " -fsanitize=address,undefined")
  target_link_options(pixdiff_shared INTERFACE -fsanitize=address,undefined)
else()
  set(PD_PC_SANITIZE "")
endif()

# The build tree's data directory: build/share/pixdiff/{models,configs} link to the sources, so
# build/pixdiff finds the shipped files the way an installed one does (core/data_dir.c).
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/share/pixdiff)
foreach(d models configs)
  if(NOT EXISTS ${CMAKE_BINARY_DIR}/share/pixdiff/${d})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${d} ${CMAKE_BINARY_DIR}/share/pixdiff/${d} SYMBOLIC)
  endif()
endforeach()

install(TARGETS pixdiff_shared EXPORT pixdiffTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS pixdiff_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/pixdiff.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/pixdiff/models
        FILES_MATCHING PATTERN "*.safetensors")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/pixdiff/configs
        FILES_MATCHING PATTERN "*.yaml")

# pkg-config: the prefix from the .pc file's own place; the static link line (--static) lists the
# Debian libraries by their own .pc files (Requires.private) and OpenBLAS's OpenMP build by path.
file(RELATIVE_PATH PD_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" PD_PC_TO_PREFIX "${PD_PC_TO_PREFIX}")
get_filename_component(PD_OPENBLAS_DIR ${OPENBLAS_LIB} DIRECTORY)
configure_file(${CMAKE_SOURCE_DIR}/cmake/pixdiff.pc.in ${CMAKE_BINARY_DIR}/pixdiff.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/pixdiff.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

include(CMakePackageConfigHelpers)
set(PD_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/pixdiff)
install(EXPORT pixdiffTargets NAMESPACE pixdiff:: DESTINATION ${PD_CMAKEDIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/pixdiffConfig.cmake.in
  ${CMAKE_BINARY_DIR}/pixdiffConfig.cmake INSTALL_DESTINATION ${PD_CMAKEDIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/pixdiffConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/pixdiffConfig.cmake ${CMAKE_BINARY_DIR}/pixdiffConfigVersion.cmake
        DESTINATION ${PD_CMAKEDIR})
