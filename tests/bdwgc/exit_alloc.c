/*
 * exit_alloc - threads end through pthread_exit() and pthread_cancel()
 * while other threads allocate; the heap must stay near what the
 * program needs, and every exiting thread must finish its exit.
 *
 * bdwgc's intercepted pthread_exit and pthread_cancel disable the
 * collection (GC_dont_gc++) until the exiting thread's exit handler has
 * waited in GC_wait_for_gc_completion for a collection in progress (its
 * stack may be on the mark stack).  In incremental mode with marking in
 * time slices a collection is often in progress; if that wait makes no
 * progress (8.2.2: GC_collect_a_little_inner does nothing while the
 * collection is disabled, bdwgc issue #257), the exiting thread spins for
 * ever and the allocating threads grow the heap without a collection.
 *
 * LIVE_MB of live data (a root array of chains) keeps each collection
 * busy for several slices; ALLOCATORS threads replace chains and
 * allocate garbage; the main thread starts ROUNDS threads, one at a
 * time, that allocate a little and then end, alternately through
 * pthread_exit() and by pthread_cancel() from the main thread (at a
 * cancellation point in their allocation loop), and joins each.  A
 * watchdog fails the test if the heap passes MAX_HEAP_MB (the heap size
 * is printed at the end: compare with --no-incremental) or no thread has
 * finished for 20 s (a hang).
 * The main thread sleeps GAP_US between the rounds, so that the collection
 * is enabled most of the time (back to back exits would keep it disabled
 * nearly always, and no collection could finish).
 * Usage: exit_alloc [--no-incremental] [ROUNDS [LIVE_MB [MAX_HEAP_MB
 * [GAP_US]]]] (default 100 rounds, 24 MiB live, at most 1 GiB of heap,
 * 1000 us).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "testutil.h"

#define ALLOCATORS 2

static struct test_node **live;	/* the live chains, a root */
static long nchains;
static atomic_int stop;
static atomic_long finished;	/* exiting threads joined so far */
static atomic_long max_heap;	/* largest heap size seen (bytes) */
static long max_heap_limit;

static void note_heap(void)
{
	long h = (long)GC_get_heap_size();
	long m = atomic_load(&max_heap);

	while (h > m && !atomic_compare_exchange_weak(&max_heap, &m, h))
		;
	if (h > max_heap_limit) {
		fprintf(stderr, "exit_alloc: FAIL: heap %ld MiB > %ld MiB after "
			"%ld exiting threads (grown while the collection was "
			"disabled?)\n", h >> 20, max_heap_limit >> 20,
			atomic_load(&finished));
		_exit(1);
	}
}

static void *allocator(void *arg)
{
	unsigned long long seed = (uintptr_t)arg;
	unsigned long n = 0;

	while (!atomic_load(&stop)) {
		test_replace_chain(live, nchains, &seed, "allocator");
		for (int k = 0; k < 64; k++)
			(void)GC_MALLOC(16 + (test_rand(&seed) >> 50) % 512);
		if (++n % 64 == 0)
			note_heap();
	}
	return NULL;
}

/* A thread that allocates, then ends through pthread_exit() (arg 0) or
 * waits at cancellation points for the main thread's pthread_cancel(). */
static atomic_int ready;

static void *exiter(void *arg)
{
	int cancel = (int)(uintptr_t)arg;
	struct test_node *mine = test_new_chain(7);

	atomic_store(&ready, 1);
	if (!cancel) {
		test_verify_chain(mine, 7, "exiter");
		pthread_exit(mine);
	}
	for (;;) {
		mine = test_new_chain(8);
		pthread_testcancel();
		usleep(100);	/* a cancellation point */
	}
	return NULL;
}

static void *watchdog(void *arg)
{
	long last = -1;
	int still = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		long f = atomic_load(&finished);

		usleep(100 * 1000);
		if (f != last) {
			last = f;
			still = 0;
		} else if (++still == 200) {
			fprintf(stderr, "exit_alloc: FAIL: no exiting thread "
				"finished for 20 s (after %ld; hang in the exit "
				"handler?), RSS %ld MiB\n", f,
				test_rss_bytes() >> 20);
			_exit(2);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t thr[ALLOCATORS], wd;
	int incremental, a = 1;
	long rounds = 100, live_mb = 24, limit_mb = 1024, gap_us = 1000;
	struct timespec t0, t1;

	incremental = test_incremental_arg(argc, argv, &a);
	if (a < argc)
		rounds = atol(argv[a++]);
	if (a < argc)
		live_mb = atol(argv[a++]);
	if (a < argc)
		limit_mb = atol(argv[a++]);
	if (a < argc)
		gap_us = atol(argv[a++]);
	max_heap_limit = limit_mb << 20;
	test_init(incremental);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	live = test_live_chains(live_mb, &nchains);

	CHECK(pthread_create(&wd, NULL, watchdog, NULL) == 0, "pthread_create");
	for (int t = 0; t < ALLOCATORS; t++)
		CHECK(pthread_create(&thr[t], NULL, allocator,
				     (void *)(uintptr_t)(t + 1)) == 0,
		      "pthread_create");
	for (long r = 0; r < rounds; r++) {
		int cancel = (int)(r & 1);
		pthread_t t;
		void *res;

		if (gap_us > 0)
			usleep((useconds_t)gap_us);
		atomic_store(&ready, 0);
		CHECK(pthread_create(&t, NULL, exiter,
				     (void *)(uintptr_t)cancel) == 0,
		      "pthread_create");
		if (cancel) {
			while (!atomic_load(&ready))
				usleep(50);
			CHECK(pthread_cancel(t) == 0, "pthread_cancel");
		}
		CHECK(pthread_join(t, &res) == 0, "pthread_join");
		CHECK(cancel ? res == PTHREAD_CANCELED : res != NULL,
		      "round %ld: bad exit value %p", r, res);
		atomic_fetch_add(&finished, 1);
		note_heap();
	}
	atomic_store(&stop, 1);
	for (int t = 0; t < ALLOCATORS; t++)
		CHECK(pthread_join(thr[t], NULL) == 0, "pthread_join");
	CHECK(pthread_join(wd, NULL) == 0, "pthread_join");
	GC_gcollect();
	for (long i = 0; i < nchains; i++)
		test_verify_chain(live[i], live[i]->value, "final");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("exit_alloc: ok, %s, %ld exiting threads, %ld MiB live, "
	       "max heap %ld MiB (limit %ld), %lu collections, %.1f s, "
	       "VDB: %s\n", incremental ? "incremental" : "non-incremental",
	       rounds, live_mb, atomic_load(&max_heap) >> 20, limit_mb,
	       (unsigned long)GC_get_gc_no(),
	       (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       incremental ? gc_vdb_name() : "none");
	return 0;
}
