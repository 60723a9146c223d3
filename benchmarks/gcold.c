/*
 * gcold - a big-heap benchmark in the spirit of GCOld (a large long-lived
 * heap of old objects, a steady state of short-lived garbage, and a
 * configurable rate of pointer stores from old objects to new ones),
 * written for wbdev from that published description.
 *
 * The old heap is an array of complete binary trees of depth OLD_DEPTH
 * (1 MiB of 32-byte nodes each) totalling --live-mb.  In the steady state
 * every mutator thread allocates short-lived nodes (each survives a ring
 * of YOUNG_RING allocations, then is garbage) and, once per --store-every
 * allocations, replaces a random leaf of one of its old trees by a new
 * node: an old-to-young pointer store that a generational or incremental
 * collector must see.  The live size stays constant.
 *
 * What the program sees is measured: every batch of --batch allocations
 * is timed and the longest and 99th-percentile batch time are the
 * mutator's stalls (they include the collector's pauses and the
 * incremental marking done inside allocations).  Also reported: total
 * and steady-state time, collections, peak RSS, and the collector's own
 * pause events (gc_pause.h).  The run ends with a check of the whole live
 * graph (every node where it belongs, holding what it should); a damaged
 * graph exits 1 with "gcold: INTEGRITY FAILED".
 *
 * One line starting "RESULT" is printed for benchmarks/compare.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#ifndef GC_THREADS
#define GC_THREADS
#endif
#include <gc.h>

#include "bench_util.h"
#include "gc_pause.h"
#include "gc_vdb_name.h"

/* One old tree: 2^(OLD_DEPTH+1)-1 nodes of 32 bytes, about 1 MiB. */
#define OLD_DEPTH 14
#define TREE_NODES ((1L << (OLD_DEPTH + 1)) - 1)
#define YOUNG_RING 64		/* a young node lives this many allocations */
#define MAX_THREADS 8

/* Stall histogram: 1 us bins up to 1 ms, 100 us bins up to 100 ms, 10 ms
 * bins up to 100 s. */
#define H_FINE 1000
#define H_MID 990
#define H_COARSE 9990
#define H_BINS (H_FINE + H_MID + H_COARSE)

struct onode {
	struct onode *left;
	struct onode *right;
	uint64_t key;		/* (tree << 32) | heap index (root 1) */
	uint64_t check;		/* node_check(key) */
};

struct params {
	long live_mb;
	long work_mb;		/* steady-state allocation, all threads */
	long store_every;
	long batch;
	long threads;
	long seed;
	int incremental;
	int quiet;
};

struct worker {
	pthread_t tid;
	int id;
	long first_tree, ntrees;
	long allocs;		/* steady-state allocations to do */
	uint64_t rng;
	unsigned long stores;
	double max_stall_ms;
	unsigned long hist[H_BINS];
	unsigned long batches;
};

/* --trace-stalls: the collector's events of the last moments, printed
 * with every stall longer than the threshold (ms). */
#define TRACE_EVENTS 64
static double trace_threshold_ms;
static struct {
	double ms;
	GC_EventType ev;
} trace_ring[TRACE_EVENTS];
static unsigned long trace_n;

static void traced_event(GC_EventType ev)
{
	trace_ring[trace_n % TRACE_EVENTS].ms = now_ms();
	trace_ring[trace_n % TRACE_EVENTS].ev = ev;
	trace_n++;
	on_collection_event(ev);
}

static void trace_stall(double t0, double len)
{
	unsigned long i = trace_n > TRACE_EVENTS ? trace_n - TRACE_EVENTS : 0;

	fprintf(stderr, "gcold: stall of %.3f ms at %.3f ms:", len, t0);
	for (; i < trace_n; i++) {
		double at = trace_ring[i % TRACE_EVENTS].ms;

		if (at >= t0)
			fprintf(stderr, " ev%d@+%.3f", trace_ring[i % TRACE_EVENTS].ev,
				at - t0);
	}
	fprintf(stderr, "\n");
}

static struct params P = {
	.live_mb = 256, .work_mb = -1, .store_every = 16, .batch = 1000,
	.threads = 1, .seed = 1,
};
static struct onode **trees;	/* GC-allocated: the old heap's roots */
static long ntrees;


static uint64_t node_check(uint64_t key)
{
	return (key * 0x9e3779b97f4a7c15ULL) ^ 0x5bd1e995d1b54a32ULL;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static struct onode *new_node(uint64_t key)
{
	struct onode *n = GC_MALLOC(sizeof(*n));

	if (!n) {
		fprintf(stderr, "gcold: out of memory\n");
		exit(2);
	}
	n->key = key;
	n->check = node_check(key);
	return n;
}

static struct onode *build(uint64_t tree, uint64_t idx, int depth)
{
	struct onode *n = new_node(tree << 32 | idx);

	if (depth > 0) {
		n->left = build(tree, 2 * idx, depth - 1);
		n->right = build(tree, 2 * idx + 1, depth - 1);
	}
	return n;
}

/* Nodes found intact in the subtree; -1 at the first damaged one. */
static long verify(const struct onode *n, uint64_t tree, uint64_t idx,
		   int depth)
{
	long l, r;

	if (!n || n->key != (tree << 32 | idx) || n->check != node_check(n->key))
		return -1;
	if (depth == 0)
		return (n->left || n->right) ? -1 : 1;
	l = verify(n->left, tree, 2 * idx, depth - 1);
	r = l < 0 ? -1 : verify(n->right, tree, 2 * idx + 1, depth - 1);
	return r < 0 ? -1 : l + r + 1;
}

static void record_stall(struct worker *w, double ms)
{
	double us = ms * 1e3;
	long bin;

	if (ms > w->max_stall_ms)
		w->max_stall_ms = ms;
	if (us < H_FINE)
		bin = (long)us;
	else if (us < 100e3)
		bin = H_FINE + (long)((us - H_FINE) / 100);
	else
		bin = H_FINE + H_MID + (long)((us - 100e3) / 10e3);
	if (bin >= H_BINS)
		bin = H_BINS - 1;
	w->hist[bin]++;
	w->batches++;
}

/* Upper edge of a histogram bin, in ms. */
static double bin_ms(long bin)
{
	if (bin < H_FINE)
		return (bin + 1) / 1e3;
	if (bin < H_FINE + H_MID)
		return (H_FINE + (bin - H_FINE + 1) * 100.0) / 1e3;
	return (100e3 + (bin - H_FINE - H_MID + 1) * 10e3) / 1e3;
}

/* Replace a random leaf of one of w's trees by a new node. */
static void store_old_to_young(struct worker *w)
{
	uint64_t r = xorshift(&w->rng);
	long t = w->first_tree + (long)(r % (uint64_t)w->ntrees);
	struct onode *n = trees[t];
	uint64_t idx = 1;
	int d;

	r >>= 20;
	for (d = 0; d < OLD_DEPTH - 1; d++, r >>= 1) {
		idx = 2 * idx + (r & 1);
		n = (r & 1) ? n->right : n->left;
	}
	if (r & 1)
		n->right = new_node((uint64_t)t << 32 | (2 * idx + 1));
	else
		n->left = new_node((uint64_t)t << 32 | (2 * idx));
	w->stores++;
}

static void *mutate(void *arg)
{
	struct worker *w = arg;
	struct onode *young[YOUNG_RING] = { NULL };
	long done = 0, k = 0, next_store = P.store_every;

	while (done < w->allocs) {
		long end = done + P.batch < w->allocs ? done + P.batch
						       : w->allocs;
		double t0 = now_ms();

		for (; done < end; done++) {
			struct onode *y = new_node(0);

			/* Short-lived structure: each young node points to
			 * the one allocated before it. */
			y->left = young[k];
			young[k] = y;
			k = (k + 1) % YOUNG_RING;
			if (y->left)
				y->left->left = NULL;
			if (--next_store == 0) {
				store_old_to_young(w);
				done++;
				next_store = P.store_every;
			}
		}
		record_stall(w, now_ms() - t0);
		if (trace_threshold_ms > 0 && now_ms() - t0 > trace_threshold_ms)
			trace_stall(t0, now_ms() - t0);
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gcold [options]\n"
		"  --live-mb N      live old heap in MiB (256)\n"
		"  --work-mb N      steady-state allocation in MiB, all threads\n"
		"                   (default 3 x live)\n"
		"  --store-every N  one old->young store per N allocations (16)\n"
		"  --batch N        allocations per timed batch (1000)\n"
		"  --threads N      mutator threads, 1..%d (1)\n"
		"  --seed N         random seed (1)\n"
		"  --incremental    call GC_enable_incremental()\n"
		"  --trace-stalls MS  print the collector's events around every\n"
		"                   stall longer than MS (stderr)\n"
		"  --quiet          only the RESULT line\n", MAX_THREADS);
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "live-mb", required_argument, NULL, 'l' },
		{ "work-mb", required_argument, NULL, 'w' },
		{ "store-every", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 'S' },
		{ "incremental", no_argument, NULL, 'i' },
		{ "trace-stalls", required_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;
	long v;

	while ((c = getopt_long(argc, argv, "iqh", opts, NULL)) != -1) {
		long lo = 1, hi = 1L << 20, *dst;

		switch (c) {
		case 'i':
			P.incremental = 1;
			continue;
		case 'q':
			P.quiet = 1;
			continue;
		case 'h':
			usage(stdout);
			exit(0);
		case 'T':
			if (parse_int(optarg, 1, 1L << 20, &v)) {
				fprintf(stderr, "gcold: bad value '%s' for an option\n",
					optarg);
				exit(64);
			}
			trace_threshold_ms = (double)v;
			continue;
		case 'l': dst = &P.live_mb; break;
		case 'w': dst = &P.work_mb; break;
		case 's': dst = &P.store_every; break;
		case 'b': dst = &P.batch; break;
		case 't': dst = &P.threads; hi = MAX_THREADS; break;
		case 'S': dst = &P.seed; hi = 1L << 62; break;
		default:
			usage(stderr);
			exit(64);
		}
		if (parse_int(optarg, lo, hi, &v)) {
			fprintf(stderr, "gcold: bad value '%s' for an option\n",
				optarg);
			exit(64);
		}
		*dst = v;
	}
	if (optind != argc) {
		usage(stderr);
		exit(64);
	}
	if (P.work_mb < 0)
		P.work_mb = 3 * P.live_mb;
	if (P.live_mb < P.threads) {
		fprintf(stderr, "gcold: --live-mb must be >= --threads\n");
		exit(64);
	}
}

int main(int argc, char **argv)
{
	static struct worker w[MAX_THREADS];
	double t_start, t_steady, t_end, max_stall = 0, p99 = 0;
	unsigned long hist_all[H_BINS] = { 0 }, batches = 0, stores = 0;
	unsigned long gcs_before;
	struct rusage ru;
	long t, i, bad = -1, per, allocs;

	parse_args(argc, argv);
	GC_INIT();
	GC_set_on_collection_event(trace_threshold_ms > 0 ? traced_event
						     : on_collection_event);
	if (P.incremental)
		GC_enable_incremental();

	t_start = now_ms();
	ntrees = P.live_mb;	/* one tree is about 1 MiB */
	trees = GC_MALLOC(sizeof(*trees) * (size_t)ntrees);
	if (!trees) {
		fprintf(stderr, "gcold: out of memory\n");
		return 2;
	}
	for (t = 0; t < ntrees; t++)
		trees[t] = build((uint64_t)t, 1, OLD_DEPTH);
	t_steady = now_ms();
	gcs_before = (unsigned long)GC_get_gc_no();
	if (!P.quiet)
		printf("gcold: %ld MiB live built in %.0f ms (%lu collections)\n",
		       P.live_mb, t_steady - t_start, gcs_before);

	allocs = P.work_mb * (1L << 20) / (long)sizeof(struct onode);
	per = ntrees / P.threads;
	for (t = 0; t < P.threads; t++) {
		w[t].id = (int)t;
		w[t].first_tree = t * per;
		w[t].ntrees = t == P.threads - 1 ? ntrees - t * per : per;
		w[t].allocs = allocs / P.threads;
		w[t].rng = (uint64_t)P.seed * 0x2545f4914f6cdd1dULL + (uint64_t)t + 1;
		if (t > 0 && pthread_create(&w[t].tid, NULL, mutate, &w[t])) {
			fprintf(stderr, "gcold: pthread_create failed\n");
			return 2;
		}
	}
	mutate(&w[0]);
	for (t = 1; t < P.threads; t++)
		pthread_join(w[t].tid, NULL);
	t_end = now_ms();

	/* The whole live graph must have survived every collection. */
	for (t = 0; t < ntrees && bad < 0; t++)
		if (verify(trees[t], (uint64_t)t, 1, OLD_DEPTH) != TREE_NODES)
			bad = t;
	if (bad >= 0) {
		fprintf(stderr, "gcold: INTEGRITY FAILED: tree %ld damaged\n",
			bad);
		return 1;
	}

	for (t = 0; t < P.threads; t++) {
		if (w[t].max_stall_ms > max_stall)
			max_stall = w[t].max_stall_ms;
		for (i = 0; i < H_BINS; i++)
			hist_all[i] += w[t].hist[i];
		batches += w[t].batches;
		stores += w[t].stores;
	}
	for (i = 0, t = 0; i < H_BINS; i++) {
		t += (long)hist_all[i];
		if ((unsigned long)t * 100 >= batches * 99) {
			p99 = bin_ms(i);
			break;
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	if (!P.quiet)
		printf("gcold: steady state %.0f ms, longest stall %.3f ms, "
		       "p99 %.3f ms, integrity ok\n", t_end - t_steady,
		       max_stall, p99);
	printf("RESULT total_ms=%.3f steady_ms=%.3f build_ms=%.3f "
	       "max_stall_ms=%.3f p99_stall_ms=%.3f batches=%lu stores=%lu "
	       "gcs=%lu steady_gcs=%lu heap_bytes=%lu pauses=%lu "
	       "pause_total_ms=%.3f pause_max_ms=%.3f maxrss_kb=%ld "
	       "live_mb=%ld threads=%ld store_every=%ld incremental=%d "
	       "integrity=ok vdb=\"%s\"\n",
	       t_end - t_start, t_end - t_steady, t_steady - t_start,
	       max_stall, p99, batches, stores,
	       (unsigned long)GC_get_gc_no(),
	       (unsigned long)GC_get_gc_no() - gcs_before,
	       (unsigned long)GC_get_heap_size(), gc_pause.count,
	       gc_pause.total_ms, gc_pause.max_ms, ru.ru_maxrss, P.live_mb,
	       P.threads, P.store_every, GC_is_incremental_mode(),
	       gc_vdb_name());
	return 0;
}
