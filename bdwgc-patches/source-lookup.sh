# source-lookup.sh - shared by git-tree, format-series and upstream-tarball
# (sourced, not run): the pinned source of a series from bdwgc-patches/sources.
#
# lookup_source NAME sets src_tarball, src_sha256 and src_series (absolute
# path of the series file), or fails with a line naming the known series.
# Where a tarball is looked for by default: 8.2.2 in the download cache
# ($WBDEV_CACHE, fetched by scripts/fetch-bdwgc), the upstream snapshots in
# $WBDEV_UPSTREAM_DIR, else ../shared/upstream next to the clone.
patches_dir=$(cd "$(dirname "$0")" && pwd)

lookup_source() {
	line=$(sed -e 's/#.*//' "$patches_dir/sources" | awk -v n="$1" '$1 == n')
	if [ -z "$line" ]; then
		echo "$prog: error: unknown series '$1' (known: $(sed -e 's/#.*//' "$patches_dir/sources" | awk 'NF {printf "%s ", $1}'))" >&2
		exit 1
	fi
	set -- $line
	src_tarball=$2
	src_sha256=$3
	src_series=$patches_dir/$4
}

default_tarball_dir() {
	case $1 in
	8.2.2) echo "${WBDEV_CACHE:-$patches_dir/../build/cache}" ;;
	*) echo "${WBDEV_UPSTREAM_DIR:-$patches_dir/../../shared/upstream}" ;;
	esac
}

# How to get a missing tarball, in one line.
how_to_get() {
	case $1 in
	8.2.2) echo "run scripts/fetch-bdwgc (make bdwgc-fetch) or pass --tarball-dir DIR holding $src_tarball" ;;
	*) echo "get $src_tarball (a git archive of upstream bdwgc, see bdwgc-patches/README.md) and name its directory with --tarball-dir DIR, WBDEV_UPSTREAM_DIR=DIR or configure --with-bdwgc-upstream-dir=DIR" ;;
	esac
}
