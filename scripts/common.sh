# Shared by scripts/check and scripts/bench: install what is missing,
# then configure an out-of-tree build in $WBDEV_BUILDDIR (default build/).
# Sourced, not run.

top=$(cd "$(dirname "$0")/.." && pwd)
build=${WBDEV_BUILDDIR:-$top/build}

step() { printf '\n=== %s\n' "$*"; }

prepare_build() {
	step "installing dependencies (scripts/install-deps)"
	"$top/scripts/install-deps"
	if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ] ||
	   [ -n "$(find "$top" -name Makefile.inc -newer "$top/configure" 2>/dev/null)" ] ||
	   [ "$top/Makefile.am" -nt "$top/configure" ]; then
		step "autoreconf"
		(cd "$top" && autoreconf -fi) >"${TMPDIR:-/tmp}/wbdev-autoreconf.log" 2>&1 || {
			cat "${TMPDIR:-/tmp}/wbdev-autoreconf.log" >&2
			echo "autoreconf failed: see the log above" >&2
			return 1
		}
	fi
	mkdir -p "$build"
	if [ ! -f "$build/Makefile" ] || [ "$top/configure" -nt "$build/Makefile" ]; then
		step "configure ($build)"
		(cd "$build" && "$top/configure" -q) || {
			echo "configure failed: see $build/config.log" >&2
			return 1
		}
	fi
	step "make"
	make -C "$build" -j2 -s
}
