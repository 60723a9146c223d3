/*
 * testutil.h - helpers shared by the tests run against the patched bdwgc
 * (the .c files here).  Each test prints "VDB: <name>" so a run on a
 * fallback VDB is visible, exits 0 on success and 1 on the first failed
 * check (with the reason on stderr).
 */
#ifndef WBDEV_TESTS_BDWGC_TESTUTIL_H
#define WBDEV_TESTS_BDWGC_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gc.h"

#include "../../benchmarks/gc_vdb_name.h"	/* gc_vdb_name() */

#define CHECK(cond, ...)                                                \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "%s:%d: check failed: %s: ",    \
				__FILE__, __LINE__, #cond);             \
			fprintf(stderr, __VA_ARGS__);                   \
			fputc('\n', stderr);                            \
			exit(1);                                        \
		}                                                       \
	} while (0)


/* Turn incremental mode on and insist that the wbdev VDB runs, unless
 * WBDEV_TEST_ALLOW_FALLBACK is set (to show a stock VDB failing). */
static inline const char *test_enable_incremental(void)
{
	const char *vdb;

	GC_INIT();
	GC_enable_incremental();
	vdb = gc_vdb_name();
	printf("VDB: %s\n", vdb);
	fflush(stdout);
	if (!getenv("WBDEV_TEST_ALLOW_FALLBACK"))
		CHECK(strncmp(vdb, "wbdev", 5) == 0,
		      "the wbdev VDB is not in use (%s)", vdb);
	return vdb;
}

/* Resident set size in bytes, from /proc/self/statm. */
static inline long test_rss_bytes(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* Small deterministic PRNG (xorshift64*), so failures reproduce. */
static inline unsigned long long test_rand(unsigned long long *state)
{
	unsigned long long x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

#endif
