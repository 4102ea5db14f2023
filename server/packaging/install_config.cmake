# Run by `cmake --install` (server/packaging/CMakeLists.txt's install(CODE)): writes the
# wrapper, the unit and the conf for the prefix being installed to and installs them.
# CMAKE_INSTALL_PREFIX is that prefix here (CPack's is /usr, with DESTDIR the staging
# tree); file(INSTALL) adds DESTDIR itself. Expects tc_source_dir, tc_work_dir, tc_bindir,
# tc_libexecdir and TC_PRESETS.
set(tc_prefix "${CMAKE_INSTALL_PREFIX}")
# One work folder per destination, so that installs running at once (the tests stage some)
# never write the same files.
string(MD5 tc_dest_hash "$ENV{DESTDIR}|${tc_prefix}")
string(APPEND tc_work_dir "/${tc_dest_hash}")
# GNUInstallDirs' rule: the /usr prefix keeps its configuration in /etc.
if(tc_prefix STREQUAL "/usr" OR tc_prefix STREQUAL "/usr/")
  set(tc_etc "/etc")
else()
  set(tc_etc "${tc_prefix}/etc")
endif()
set(TC_BIN "${tc_prefix}/${tc_bindir}/tinycached")
set(TC_WRAPPER "${tc_prefix}/${tc_libexecdir}/tinycached/systemd-tinycached-wrapper")
set(TC_CONF "${tc_etc}/tinycached.conf")

foreach(f systemd-tinycached-wrapper tinycached.service tinycached.conf)
  configure_file("${tc_source_dir}/${f}.in" "${tc_work_dir}/${f}" @ONLY)
endforeach()
file(INSTALL "${tc_work_dir}/systemd-tinycached-wrapper"
     DESTINATION "${tc_prefix}/${tc_libexecdir}/tinycached"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                      WORLD_READ WORLD_EXECUTE)
file(INSTALL "${tc_work_dir}/tinycached.service" DESTINATION "${tc_prefix}/lib/systemd/system")
# An existing conf is the operator's: keep it (the package's conffile handling does the same
# for dpkg).
if(EXISTS "$ENV{DESTDIR}${TC_CONF}")
  message(STATUS "Keeping: $ENV{DESTDIR}${TC_CONF}")
else()
  file(INSTALL "${tc_work_dir}/tinycached.conf" DESTINATION "${tc_etc}")
endif()
