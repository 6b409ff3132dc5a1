# Cross-compiling for arm64 with Debian's cross toolchain and arm64 libraries (multiarch:
# dpkg --add-architecture arm64; libcapnp-dev:arm64 libsqlite3-dev:arm64), for
# make cross-replay (scripts/cross-replay.sh). The capnp compiler is the host's.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
# CapnProtoConfig asks pkg-config where the libraries are: the arm64 ones.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
