/*
 * gc_vdb_name.h - the virtual dirty bit implementation (VDB) bdwgc runs,
 * as a short string, on every tree the project builds: bdwgc master says
 * it with GC_get_actual_vdb() (GC_VDB_WBDEV in the patched one: the name
 * only, without the backend); the wbdev-patched 8.2 trees have
 * GC_get_vdb_name() ("wbdev, uffd backend", ...), which stock 8.2 lacks
 * ("unknown" there).  Shared by the benchmarks and tests/bdwgc.
 */
#ifndef WBDEV_GC_VDB_NAME_H
#define WBDEV_GC_VDB_NAME_H

#include <gc.h>

#ifndef GC_VDB_MPROTECT
extern const char *GC_get_vdb_name(void) __attribute__((weak));
#endif

static inline const char *gc_vdb_name(void)
{
#ifdef GC_VDB_MPROTECT
	switch (GC_get_actual_vdb()) {
#ifdef GC_VDB_WBDEV
	case GC_VDB_WBDEV:
		return "wbdev";
#endif
	case GC_VDB_UFFDWP:
		return "uffdwp";
	case GC_VDB_SOFT:
		return "soft-dirty";
	case GC_VDB_MPROTECT:
		return "mprotect";
	case GC_VDB_MANUAL:
		return "manual";
	case GC_VDB_NONE:
		return "none";
	default:
		return "other";
	}
#else
	return GC_get_vdb_name ? GC_get_vdb_name() : "unknown";
#endif
}

#endif /* WBDEV_GC_VDB_NAME_H */
