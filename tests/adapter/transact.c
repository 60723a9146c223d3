/*
 * transact.c - no write is lost while threads write and a scanner
 * collects and re-protects, through the adapter API, on any backend.
 *
 * The idea of the kernel's pagemap_ioctl selftest transact_test: writer
 * threads keep storing unique values into tracked pages while the main
 * thread collects with WBDEV_COLLECT_REPROTECT in a loop.  Oracle: after
 * each collection the scanner reads what each reported page holds; a page
 * not reported whose content differs from that must be reported by the
 * very next collection (its change came after the re-protection, so it
 * faulted and was logged), else a write was lost.
 *
 * usage: wbdev-transact [ROUNDS [SEED]]   (default 500 rounds, seed from
 * the clock; the seed is printed).  WBDEV_BACKEND picks the backend.
 * Exit status 0: no write lost; 77: no backend here (skip).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wbdev.h"
#include "backend_env.h"

#define NPAGES 256
#define NWRITERS 2

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "transact: FAIL %s:%d: %s: ", __FILE__,	\
			__LINE__, #cond);				\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		exit(1);						\
	}								\
} while (0)

struct shared {
	_Atomic uint64_t *mem;		/* word 0 of each page */
	size_t words_per_page;
	atomic_int stop;
	atomic_uint round;		/* bumped by the scanner */
	unsigned int seed;
};

struct writer {
	struct shared *sh;
	int id;
	_Atomic uint64_t stores;
};

/* xorshift: a cheap private random sequence per writer */
static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * Store unique values into the pages this writer owns (page % NWRITERS),
 * a burst of up to BURST stores per scanner round, spread by short naps
 * so that it overlaps the scanner's collection; then sleep until the next
 * round, so that the scanner is not starved of a CPU (2-CPU machines,
 * qemu).
 */
#define BURST 512
static void *writer_main(void *p)
{
	struct writer *wr = p;
	struct shared *sh = wr->sh;
	uint32_t r = sh->seed * 2654435761u + (uint32_t)wr->id + 1;
	const struct timespec nap = { 0, 20000 };

	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		unsigned int round = atomic_load(&sh->round);
		uint32_t n = 1 + next_rand(&r) % BURST;

		for (uint32_t i = 0; i < n; i++) {
			size_t pg = (next_rand(&r) % (NPAGES / NWRITERS)) *
				    NWRITERS + (size_t)wr->id;
			uint64_t v = (uint64_t)(wr->id + 1) << 56 |
				     (atomic_load_explicit(&wr->stores,
							   memory_order_relaxed) + 1);

			atomic_store_explicit(&sh->mem[pg * sh->words_per_page],
					      v, memory_order_relaxed);
			atomic_fetch_add_explicit(&wr->stores, 1,
						  memory_order_relaxed);
			/* spread the burst over the scanner's collection */
			if (i % 64 == 63)
				nanosleep(&nap, NULL);
		}
		while (atomic_load(&sh->round) == round &&
		       !atomic_load_explicit(&sh->stop, memory_order_relaxed))
			nanosleep(&nap, NULL);
	}
	return NULL;
}

/*
 * Wait until every writer stored since the last round: on a loaded
 * machine the scanner could otherwise run all its rounds while the
 * writers wait for a CPU, and race with nothing.
 */
static void wait_writers(struct writer *wr, uint64_t *last)
{
	for (int i = 0; i < NWRITERS; i++) {
		while (atomic_load(&wr[i].stores) == last[i])
			sched_yield();
		last[i] = atomic_load(&wr[i].stores);
	}
}

/* One collection with re-protection: reported[] marks the pages. */
static size_t collect(wbdev_t *w, void *base, size_t ps, unsigned char *reported)
{
	void *pages[64];
	struct wbdev_collect c = {
		.start = base, .len = NPAGES * ps,
		.flags = WBDEV_COLLECT_REPROTECT,
		.pages = pages, .max = 64,
	};
	size_t n = 0;
	int rc;

	memset(reported, 0, NPAGES);
	do {
		rc = wbdev_collect(w, &c);
		CHECK(rc >= 0, "wbdev_collect: %s", wbdev_strerror(rc));
		for (size_t i = 0; i < c.count; i++) {
			size_t pg = (size_t)((char *)pages[i] - (char *)base) / ps;

			CHECK(pg < NPAGES, "page %p outside", pages[i]);
			reported[pg] = 1;
		}
		n += c.count;
	} while (rc == 1);
	return n;
}

int main(int argc, char **argv)
{
	static uint64_t seen[NPAGES];
	static unsigned char reported[NPAGES], pending[NPAGES];
	long rounds = argc > 1 ? atol(argv[1]) : 500;
	struct shared sh = { 0 };
	struct writer wr[NWRITERS];
	pthread_t t[NWRITERS];
	uint64_t stores = 0, nreported = 0, deferred = 0, last[NWRITERS] = { 0 };
	wbdev_t *w;
	size_t ps;
	void *base;
	int rc;

	sh.seed = argc > 2 ? (unsigned int)strtoul(argv[2], NULL, 0) :
			     (unsigned int)time(NULL);
	rc = test_wbdev_open(&w);
	if (rc == -ENODEV) {
		printf("transact: SKIP: no backend (%s)\n", wbdev_strerror(rc));
		return 77;
	}
	CHECK(rc == 0, "wbdev_open: %s", wbdev_strerror(rc));
	ps = wbdev_page_size(w);
	printf("transact: backend %s, %d writers, %d pages, %ld rounds, seed %u\n",
	       wbdev_backend_name(w), NWRITERS, NPAGES, rounds, sh.seed);
	rc = wbdev_map(w, NULL, NPAGES * ps, &base);
	CHECK(rc == 0, "wbdev_map: %s", wbdev_strerror(rc));
	rc = wbdev_protect(w, base, NPAGES * ps);
	CHECK(rc == 0, "wbdev_protect: %s", wbdev_strerror(rc));
	collect(w, base, ps, reported);	/* forget what the backend had */
	sh.mem = base;
	sh.words_per_page = ps / sizeof(uint64_t);
	for (int i = 0; i < NWRITERS; i++) {
		wr[i].sh = &sh;
		wr[i].id = i;
		atomic_init(&wr[i].stores, 0);
		CHECK(pthread_create(&t[i], NULL, writer_main, &wr[i]) == 0,
		      "pthread_create");
	}
	for (long k = 0; k < rounds + 2; k++) {
		if (k < rounds) {
			atomic_fetch_add(&sh.round, 1);
			wait_writers(wr, last);
		} else if (k == rounds) {	/* two quiet rounds to drain */
			atomic_store(&sh.stop, 1);
			for (int i = 0; i < NWRITERS; i++)
				pthread_join(t[i], NULL);
		}
		nreported += collect(w, base, ps, reported);
		for (size_t pg = 0; pg < NPAGES; pg++) {
			uint64_t v = atomic_load_explicit(
				&sh.mem[pg * sh.words_per_page],
				memory_order_relaxed);

			if (reported[pg]) {
				seen[pg] = v;
				pending[pg] = 0;
				continue;
			}
			CHECK(!pending[pg], "round %ld: page %zu changed to %#llx "
			      "after round %ld and was never reported (seed %u)",
			      k, pg, (unsigned long long)v, k - 1, sh.seed);
			if (v != seen[pg]) {
				pending[pg] = 1;
				deferred++;
			}
		}
	}
	for (int i = 0; i < NWRITERS; i++)
		stores += atomic_load(&wr[i].stores);
	printf("transact: PASS: %llu stores, %llu pages reported, %llu changes "
	       "reported one round later, no write lost\n",
	       (unsigned long long)stores, (unsigned long long)nreported,
	       (unsigned long long)deferred);
	wbdev_close(w);
	return 0;
}
