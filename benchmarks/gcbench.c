/*
 * gcbench - the Ellis/Kovac/Boehm GC benchmark, written for wbdev from its
 * published description (binary trees built top-down and bottom-up while a
 * long-lived tree and an array of doubles stay live).
 *
 * Defaults follow the classic parameters: a stretch tree of depth 18, a
 * long-lived tree of depth 16, an array of 500,000 doubles, then for depths
 * 4, 6, ..., 16 as many trees as hold the nodes of two stretch trees, built
 * top-down (parent first, then children) and bottom-up (children first).
 *
 * Besides the classic report it measures GC pauses with a collection-event
 * callback and ends with one machine-readable line starting "RESULT" that
 * benchmarks/compare parses.
 *
 * Pauses are defined in gc_pause.h.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <gc.h>

#include "bench_util.h"
#include "gc_pause.h"

struct node {
	struct node *left;
	struct node *right;
	int i, j;
};

struct params {
	int stretch_depth;
	int long_lived_depth;
	long array_size;
	int min_depth;
	int max_depth;
	int depth_step;
	int incremental;
	int quiet;
};

static struct node *new_node(struct node *left, struct node *right)
{
	struct node *n = GC_MALLOC(sizeof(*n));

	if (!n) {
		fprintf(stderr, "gcbench: out of memory\n");
		exit(2);
	}
	n->left = left;
	n->right = right;
	return n;
}

/* Nodes in a complete binary tree of the given depth. */
static long tree_size(int depth)
{
	return (1L << (depth + 1)) - 1;
}

/* Top-down: the parent exists (and is old) before its children are made,
 * so building stores young pointers into older objects. */
static void populate(int depth, struct node *n)
{
	if (depth <= 0)
		return;
	depth--;
	n->left = new_node(NULL, NULL);
	n->right = new_node(NULL, NULL);
	populate(depth, n->left);
	populate(depth, n->right);
}

/* Bottom-up: children first, so every store is into a fresh object. */
static struct node *make_tree(int depth)
{
	if (depth <= 0)
		return new_node(NULL, NULL);
	struct node *left = make_tree(depth - 1);

	return new_node(left, make_tree(depth - 1));
}

static void time_construction(const struct params *p, int depth)
{
	long iters = 2 * tree_size(p->stretch_depth) / tree_size(depth);
	double t0, t1, t2;
	long k;

	if (!p->quiet)
		printf("Creating %ld trees of depth %d\n", iters, depth);
	t0 = now_ms();
	for (k = 0; k < iters; k++) {
		struct node *root = new_node(NULL, NULL);

		populate(depth, root);
	}
	t1 = now_ms();
	for (k = 0; k < iters; k++)
		(void)make_tree(depth);
	t2 = now_ms();
	if (!p->quiet) {
		printf("\tTop down construction took %.0f msec\n", t1 - t0);
		printf("\tBottom up construction took %.0f msec\n", t2 - t1);
	}
	printf("DEPTH %d iters=%ld topdown_ms=%.3f bottomup_ms=%.3f\n",
	       depth, iters, t1 - t0, t2 - t1);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gcbench [options]\n"
		"  --stretch-depth N     depth of the stretch tree (18)\n"
		"  --long-lived-depth N  depth of the long-lived tree (16)\n"
		"  --array-size N        doubles in the live array (500000)\n"
		"  --min-depth N         first tree depth timed (4)\n"
		"  --max-depth N         last tree depth timed (16)\n"
		"  --depth-step N        depth increment (2)\n"
		"  --incremental         call GC_enable_incremental()\n"
		"  --quiet               only the DEPTH and RESULT lines\n");
}

static void parse_args(int argc, char **argv, struct params *p)
{
	static const struct option opts[] = {
		{ "stretch-depth", required_argument, NULL, 's' },
		{ "long-lived-depth", required_argument, NULL, 'l' },
		{ "array-size", required_argument, NULL, 'a' },
		{ "min-depth", required_argument, NULL, 'm' },
		{ "max-depth", required_argument, NULL, 'M' },
		{ "depth-step", required_argument, NULL, 'S' },
		{ "incremental", no_argument, NULL, 'i' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;
	long v;

	while ((c = getopt_long(argc, argv, "iqh", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			p->incremental = 1;
			continue;
		case 'q':
			p->quiet = 1;
			continue;
		case 'h':
			usage(stdout);
			exit(0);
		case 'a':
			if (parse_int(optarg, 1, 1L << 30, &v))
				goto bad;
			p->array_size = v;
			continue;
		case 's': case 'l': case 'm': case 'M': case 'S':
			if (parse_int(optarg, 1, 30, &v))
				goto bad;
			if (c == 's')
				p->stretch_depth = (int)v;
			else if (c == 'l')
				p->long_lived_depth = (int)v;
			else if (c == 'm')
				p->min_depth = (int)v;
			else if (c == 'M')
				p->max_depth = (int)v;
			else
				p->depth_step = (int)v;
			continue;
		default:
			usage(stderr);
			exit(64);
		}
bad:
		fprintf(stderr, "gcbench: bad value '%s' for an option\n",
			optarg);
		exit(64);
	}
	if (optind != argc || p->min_depth > p->max_depth) {
		usage(stderr);
		exit(64);
	}
}

int main(int argc, char **argv)
{
	struct params p = {
		.stretch_depth = 18, .long_lived_depth = 16,
		.array_size = 500000, .min_depth = 4, .max_depth = 16,
		.depth_step = 2,
	};
	struct node *long_lived;
	double *array;
	double t_start, t_end;
	struct rusage ru;
	int depth;
	long k;

	parse_args(argc, argv, &p);

	GC_INIT();
	GC_set_on_collection_event(on_collection_event);
	if (p.incremental)
		GC_enable_incremental();

	if (!p.quiet) {
		printf("Garbage Collector Test\n");
		printf(" Stretching memory with a binary tree of depth %d\n",
		       p.stretch_depth);
	}
	t_start = now_ms();

	/* Grow the heap to its working size first. */
	(void)make_tree(p.stretch_depth);

	if (!p.quiet)
		printf(" Creating a long-lived binary tree of depth %d\n",
		       p.long_lived_depth);
	long_lived = new_node(NULL, NULL);
	populate(p.long_lived_depth, long_lived);

	if (!p.quiet)
		printf(" Creating a long-lived array of %ld doubles\n",
		       p.array_size);
	array = GC_MALLOC_ATOMIC(sizeof(double) * (size_t)p.array_size);
	if (!array) {
		fprintf(stderr, "gcbench: out of memory\n");
		return 2;
	}
	for (k = 0; k < p.array_size / 2; k++)
		array[k] = 1.0 / (double)(k + 1);

	for (depth = p.min_depth; depth <= p.max_depth; depth += p.depth_step)
		time_construction(&p, depth);

	/* The live data must have survived every collection intact. */
	if (!long_lived || !long_lived->left ||
	    array[p.array_size / 4] != 1.0 / (double)(p.array_size / 4 + 1)) {
		fprintf(stderr, "gcbench: live data lost\n");
		return 1;
	}
	t_end = now_ms();
	getrusage(RUSAGE_SELF, &ru);

	if (!p.quiet) {
		printf("Completed in %.0f msec\n", t_end - t_start);
		printf("Completed %lu collections\n",
		       (unsigned long)GC_get_gc_no());
		printf("Heap size is %lu\n", (unsigned long)GC_get_heap_size());
	}
	printf("RESULT total_ms=%.3f gcs=%lu heap_bytes=%lu pauses=%lu "
	       "pause_total_ms=%.3f pause_max_ms=%.3f maxrss_kb=%ld "
	       "incremental=%d protection_needs=%d\n",
	       t_end - t_start, (unsigned long)GC_get_gc_no(),
	       (unsigned long)GC_get_heap_size(), gc_pause.count,
	       gc_pause.total_ms, gc_pause.max_ms, ru.ru_maxrss,
	       GC_is_incremental_mode(), GC_incremental_protection_needs());
	return 0;
}
