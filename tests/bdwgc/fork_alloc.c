/*
 * fork_alloc - fork() while other threads allocate small objects (and so
 * build free lists in GC_generic_malloc_many, with GC_fl_builder_count
 * raised and the allocation lock released); the child restarts the
 * parallel markers (GC_start_mark_threads, as gctest's child does) and
 * must complete collections.
 *
 * fork_prepare_proc waits for the free-list builders, then for the
 * collection in progress (GC_wait_for_gc_completion, which releases the
 * allocation lock between its steps); a builder starting in between is
 * inherited by the child as a nonzero GC_fl_builder_count, and the
 * child's GC_wait_for_markers_init waits for it for ever.  With marking
 * in time slices a collection is often in progress at fork, so the wait
 * runs often.
 *
 * LIVE_MB of live chains keep each collection busy for several slices;
 * ALLOCATORS threads replace chains and allocate garbage of many small
 * sizes; the main thread forks ROUNDS times.  Each child starts the
 * markers, collects, allocates and verifies a chain, collects again and
 * exits 0; a child not done within 20 s is killed and the test fails.
 * Usage: fork_alloc [--no-incremental] [ROUNDS [LIVE_MB]]
 * (default 60 rounds, 16 MiB live).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"

#define ALLOCATORS 3
#define CHILD_TIMEOUT_MS 20000

static struct test_node **live;	/* the live chains, a root */
static long nchains;
static atomic_int stop;

static void *allocator(void *arg)
{
	unsigned long long seed = (uintptr_t)arg;

	while (!atomic_load(&stop)) {
		test_replace_chain(live, nchains, &seed, "allocator");
		/* Many size classes: their thread-local free lists run out
		 * often, each refill a GC_generic_malloc_many. */
		for (int k = 0; k < 128; k++)
			(void)GC_MALLOC(8 + (test_rand(&seed) >> 52) % 1024);
	}
	return NULL;
}

static void child(void)
{
	struct test_node *c;

	GC_start_mark_threads();
	GC_gcollect();
	c = test_new_chain(42);
	for (int k = 0; k < 1000; k++)
		(void)GC_MALLOC(8 + k % 512);
	GC_gcollect();
	test_verify_chain(c, 42, "child");
	for (long i = 0; i < nchains; i += 97)
		test_verify_chain(live[i], live[i]->value, "child");
	_exit(0);
}

/* 0: the child exited 0; 1: it failed; 2: it hung and was killed. */
static int wait_child(pid_t pid, long round)
{
	int status, ms = 0;
	pid_t w;

	while ((w = waitpid(pid, &status, WNOHANG)) == 0) {
		if (ms >= CHILD_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s",
			      strerror(errno));
			fprintf(stderr, "fork_alloc: FAIL: round %ld: the child "
				"did not finish in %d s (hang in "
				"GC_start_mark_threads?), killed\n", round,
				CHILD_TIMEOUT_MS / 1000);
			return 2;
		}
		usleep(10 * 1000);
		ms += 10;
	}
	CHECK(w == pid, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "fork_alloc: FAIL: round %ld: child status "
			"0x%x\n", round, status);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t thr[ALLOCATORS];
	int incremental, a = 1, rc = 0;
	long rounds = 60, live_mb = 16, r;
	struct timespec t0, t1;

	incremental = test_incremental_arg(argc, argv, &a);
	if (a < argc)
		rounds = atol(argv[a++]);
	if (a < argc)
		live_mb = atol(argv[a++]);
	test_init(incremental);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	live = test_live_chains(live_mb, &nchains);

	for (int t = 0; t < ALLOCATORS; t++)
		CHECK(pthread_create(&thr[t], NULL, allocator,
				     (void *)(uintptr_t)(t + 1)) == 0,
		      "pthread_create");
	for (r = 0; r < rounds && rc == 0; r++) {
		pid_t pid;

		usleep(20 * 1000);
		fflush(stdout);
		pid = fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0)
			child();
		rc = wait_child(pid, r);
	}
	atomic_store(&stop, 1);
	for (int t = 0; t < ALLOCATORS; t++)
		CHECK(pthread_join(thr[t], NULL) == 0, "pthread_join");
	if (rc != 0)
		return rc;
	GC_gcollect();
	for (long i = 0; i < nchains; i++)
		test_verify_chain(live[i], live[i]->value, "parent");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("fork_alloc: ok, %s, %ld forks, %ld MiB live, %lu collections, "
	       "%.1f s, VDB: %s\n",
	       incremental ? "incremental" : "non-incremental", rounds,
	       live_mb, (unsigned long)GC_get_gc_no(),
	       (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       incremental ? gc_vdb_name() : "none");
	return 0;
}
