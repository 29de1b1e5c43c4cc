#!/usr/bin/env bash
# `sam build` of template.yaml, then a check of what it produced:
# .aws-sam/build/{AuthFunction,UsersFunction,GatewayFunction}/bootstrap, each an
# executable ELF for the architecture built. The emulated API runs these files.
#
# Usage: scripts/emulator/sam_build.sh [--release] [--arch arm64|x86_64] [-- extra sam build args]
#   default        debug profile (SAM_BUILD_MODE=debug: `cargo lambda build` without
#                  --release): minutes faster than the release profile's fat LTO
#   --release      the release profile, as deployed (also SAM_BUILD_RELEASE=1)
#   --arch ARCH    the template's Architecture parameter (also SAM_BUILD_ARCH=ARCH).
#                  Unset: arm64, the template's default, when rustup has the Rust
#                  standard library for aarch64-unknown-linux-gnu; otherwise x86_64,
#                  and the script says so.
#
# Tools come from .tools/venv (sam, cargo-lambda, zig; scripts/tools.sh). Needs no
# network beyond crates.io, and none once ~/.cargo holds the crates of Cargo.lock.
# cargo-lambda builds into the workspace's target/ (target/<triple>/<profile>, then
# target/lambda/<bin>/bootstrap). On 2 cores, debug: about 3 min from an empty target/
# (up to 7.5 min measured while other builds shared the machine; 5 to 6.5 min of CPU),
# about 4 s when nothing changed, about 15 s after a change in crates/.
# Not `sam build --cached`: it hashes only each CodeUri (functions/<name>), so after a
# change in crates/ it copies the old bootstraps; and it would save ~2 s.
# Not `--parallel`: cargo's lock on the target directory runs the three builds one
# after another anyway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh

log() { echo "sam_build: $*" >&2; }
die() { log "$*"; exit 1; }

release="${SAM_BUILD_RELEASE:-0}"
arch="${SAM_BUILD_ARCH:-}"
extra=()
while (($#)); do
  case "$1" in
    --release) release=1 ;;
    --debug) release=0 ;;
    --arch) (($# >= 2)) || die "--arch needs a value (arm64 or x86_64)"; arch="$2"; shift ;;
    --arch=*) arch="${1#--arch=}" ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
case "$release" in 0 | 1) ;; *) die "SAM_BUILD_RELEASE must be 0 or 1, got '$release'" ;; esac

# Lambda architecture -> Rust target whose standard library cargo-lambda needs, and
# the ELF e_machine of the binaries it produces.
declare -A TRIPLE=([arm64]=aarch64-unknown-linux-gnu [x86_64]=x86_64-unknown-linux-gnu)
declare -A MACHINE=([arm64]=aarch64 [x86_64]=x86-64)

# The toolchain cargo uses here (rust-toolchain files included), and its installed std
# libraries: rustup keeps each under <sysroot>/lib/rustlib/<triple>/lib.
sysroot="$(rustc --print sysroot)" || die "rustc not found (install Rust with rustup)"
has_std() { compgen -G "$sysroot/lib/rustlib/$1/lib/libstd-*" >/dev/null; }

if [[ -z "$arch" ]]; then
  if has_std "${TRIPLE[arm64]}"; then
    arch=arm64
  else
    arch=x86_64
    log "building x86_64, not the template's arm64: the Rust standard library for ${TRIPLE[arm64]} is not installed (for arm64: rustup target add ${TRIPLE[arm64]})"
  fi
fi
[[ -n "${TRIPLE[$arch]:-}" ]] || die "unknown architecture '$arch' (arm64 or x86_64)"
# cargo-lambda would try to download a missing target itself; say what to do instead.
has_std "${TRIPLE[$arch]}" \
  || die "cannot build $arch: the Rust standard library for ${TRIPLE[$arch]} is not installed (rustup target add ${TRIPLE[$arch]})"

tools_venv
# cargo-lambda always builds in the source tree; saying so spares sam's warning that
# it "does not support value False for building in source".
args=(--template-file template.yaml --build-in-source)
# Only when it differs from the template's default, so a plain `sam build` and this
# script build the same thing where arm64 can be built.
[[ "$arch" == arm64 ]] || args+=(--parameter-overrides "Architecture=$arch")
if ((release)); then
  unset SAM_BUILD_MODE
  profile=release
else
  export SAM_BUILD_MODE=debug
  profile=debug
fi

args+=("${extra[@]}")

# sam's cargo-lambda workflow builds in the workspace's target directory (it sets
# CARGO_TARGET_DIR from `cargo metadata`), and cargo-lambda moves each binary to
# <target>/lambda/<bin>/bootstrap: one path for every profile and architecture. When
# it finds no binary after `cargo build` it only warns, and sam copies whatever that
# path holds. Removing them first turns that into a failure instead of a stale copy.
target_dir="$(cargo metadata --no-deps --format-version 1 \
  | "$TOOLS_VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')" \
  || die "cargo metadata failed"
rm -f "$target_dir"/lambda/{auth,users,gateway}/bootstrap
log "sam build ${args[*]} ($arch, $profile profile; minutes from an empty target/, seconds when warm)"
start=$SECONDS
sam build "${args[@]}"
log "built in $((SECONDS - start)) s"

# Each bootstrap: present, executable, an ELF of the right machine, and the very file
# cargo-lambda just left in the workspace's target directory. A stale or foreign file
# here would make the emulated API run the wrong code or fail to exec.
"$TOOLS_VENV/bin/python" - "$arch" "${MACHINE[$arch]}" "$target_dir" <<'PY' || exit 1
import filecmp, os, struct, sys

arch, want, target_dir = sys.argv[1], sys.argv[2], sys.argv[3]
BINARIES = {"AuthFunction": "auth", "UsersFunction": "users", "GatewayFunction": "gateway"}
MACHINES = {62: "x86-64", 183: "aarch64"}  # ELF e_machine values
ok = True
print(f"sam_build: bootstraps ({arch}):", file=sys.stderr)
for fid, binary in BINARIES.items():
    path = f".aws-sam/build/{fid}/bootstrap"
    built = os.path.join(target_dir, "lambda", binary, "bootstrap")
    problem = None
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError as e:
        problem = f"missing ({e.strerror})"
    else:
        if head[:4] != b"\x7fELF" or len(head) < 20:
            problem = "not an ELF file"
        else:
            order = "<" if head[5] == 1 else ">"
            machine = MACHINES.get(struct.unpack(order + "H", head[18:20])[0], f"e_machine {head[18:20].hex()}")
            if machine != want:
                problem = f"an ELF for {machine}, expected {want}"
            elif not os.access(path, os.X_OK):
                problem = "not executable"
            elif not os.path.isfile(built) or not filecmp.cmp(path, built, shallow=False):
                problem = f"not the binary this build left at {built}"
    if problem:
        ok = False
        print(f"sam_build:   {path}: {problem}", file=sys.stderr)
    else:
        size = os.path.getsize(path) / 2**20
        print(f"sam_build:   {path}  ELF {machine}, {size:.1f} MiB (= {built})", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
