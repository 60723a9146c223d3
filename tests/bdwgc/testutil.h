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

/* argv[*a] is "--no-incremental": step past it and return 0; else 1. */
static inline int test_incremental_arg(int argc, char **argv, int *a)
{
	if (*a < argc && strcmp(argv[*a], "--no-incremental") == 0) {
		++*a;
		return 0;
	}
	return 1;
}

/* GC_INIT; then incremental mode on the wbdev VDB, as
 * test_enable_incremental, or none, said as "VDB: none". */
static inline void test_init(int incremental)
{
	if (incremental) {
		test_enable_incremental();
	} else {
		GC_INIT();
		printf("VDB: none (non-incremental)\n");
		fflush(stdout);
	}
}

/* Live data of the allocating tests: chains of TEST_CHAIN nodes, every
 * node of a chain holding the chain's value. */
#define TEST_NODE 48
#define TEST_CHAIN 256

struct test_node {
	struct test_node *next;
	unsigned long value;
	unsigned long pad[TEST_NODE / sizeof(unsigned long) - 2];
};

static inline struct test_node *test_new_chain(unsigned long value)
{
	struct test_node *head = NULL;

	for (int k = 0; k < TEST_CHAIN; k++) {
		struct test_node *n = GC_MALLOC(sizeof(*n));

		CHECK(n, "out of memory");
		n->value = value;
		n->next = head;
		head = n;
	}
	return head;
}

static inline void test_verify_chain(const struct test_node *n,
				     unsigned long value, const char *who)
{
	int k = 0;

	for (; n; n = n->next, k++)
		CHECK(n->value == value, "%s: chain %lu: node %d has value %lu "
		      "(freed while reachable?)", who, value, k, n->value);
	CHECK(k == TEST_CHAIN, "%s: chain %lu has %d nodes, want %d", who,
	      value, k, TEST_CHAIN);
}

/* A root array of about MB MiB of chains (their number in *n): chain i
 * has the value i + *n * generation. */
static inline struct test_node **test_live_chains(long mb, long *n)
{
	struct test_node **live;

	*n = mb * 1024 * 1024 / ((TEST_NODE + 16) * TEST_CHAIN);
	live = GC_MALLOC(*n * sizeof(*live));
	CHECK(live, "out of memory");
	for (long i = 0; i < *n; i++)
		live[i] = test_new_chain((unsigned long)i);
	return live;
}

/* Verify a random chain of live and replace it by a new generation. */
static inline void test_replace_chain(struct test_node **live, long n,
				      unsigned long long *seed, const char *who)
{
	unsigned long long r = test_rand(seed);
	long i = (long)(r % (unsigned long long)n);

	test_verify_chain(live[i], live[i]->value, who);
	live[i] = test_new_chain((unsigned long)i +
				 (unsigned long)n * (1 + (r >> 40)));
}

#endif
