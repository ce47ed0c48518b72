#!/usr/bin/env bash
# The aarch64 kernels, built for aarch64 and run under qemu-user: CPU
# feature detection and its proof tokens (crates/cpu), the f32 NEON kernel
# and the int8 `sdot` kernel (crates/scan/src/**/aarch64.rs) are checked bit
# for bit against the scalar kernels, and the int8 scan and its rescoring
# against the f32 scan, by the same unit tests and proptests as on x86_64
# (`cargo test -p semsearch-cpu -p semsearch-scan`). Only the layer crates
# are built for the target (the encoder is linted, not run: it has no
# aarch64 kernel), so no C (ring, for rustls) is cross-compiled.
#
# Two CPUs: `-cpu max` (NEON + dot product: the sdot kernel runs) and
# `-cpu cortex-a72` (NEON without dot product: detection must fall back to
# the scalar int8 kernel).
#
# Needs the rustup target and Debian's cross linker and qemu-user; installs
# what is missing. The build goes to target/aarch64-unknown-linux-gnu.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$target"; then
  echo "aarch64: rustup target add $target"
  rustup target add "$target"
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then
  echo "aarch64: installing the cross linker and qemu-user (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
layers=(-p semsearch-cpu -p semsearch-scan)
echo "aarch64: cargo clippy (the aarch64-only code is invisible to the x86_64 lint)"
cargo clippy -q --target "$target" "${layers[@]}" -p semsearch-minilm --lib --tests -- -D warnings

kernels_test=int8::kernel::tests::every_kernel_equals_the_scalar_kernel_on_every_tail
for cpu in max cortex-a72; do
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu $cpu -L /usr/aarch64-linux-gnu"
  # Every test of both crates where the sdot kernel runs; on the older core,
  # which only shows that detection falls back, the detection and kernel
  # tests alone.
  tests=()
  [ "$cpu" = max ] || tests=(detect:: aarch64:: kernel::)
  echo "aarch64: cargo test ${layers[*]} --lib ${tests[*]} under qemu-aarch64 -cpu $cpu"
  cargo test -q --target "$target" "${layers[@]}" --lib -- "${tests[@]}"
  # Which kernels that run compared (the test prints them): a check that
  # quietly ran only the scalar kernel would prove nothing.
  kernels="$(cargo test -q --target "$target" -p semsearch-scan --lib -- --exact "$kernels_test" --nocapture 2>&1 | grep 'int8 kernels on this CPU')"
  echo "aarch64: -cpu $cpu: $kernels"
  case "$cpu:$kernels" in
    max:*'"neon-sdot"'*) ;;
    max:*) echo "aarch64: -cpu max did not run the sdot kernel" >&2; exit 1 ;;
    *:*'"neon-sdot"'*) echo "aarch64: $cpu has no dot product, yet the sdot kernel was chosen" >&2; exit 1 ;;
  esac
done
echo "aarch64: ok"
