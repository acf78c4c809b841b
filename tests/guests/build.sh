#!/bin/sh
# Builds dlmalloc_guest.wasm from dlmalloc_guest.c with Debian's clang and
# wasi-libc (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32).
# It exports its malloc, so the host borrows its buffers from it.
set -eu
cd "$(dirname "$0")"
clang --target=wasm32-wasi --sysroot=/usr -O2 -nostartfiles \
  -Wl,--no-entry -Wl,--export=malloc -Wl,--strip-all \
  -o dlmalloc_guest.wasm dlmalloc_guest.c
