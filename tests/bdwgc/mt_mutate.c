/*
 * mt_mutate - MUTATORS threads mutate a shared old graph while the main
 * thread keeps collections running; an integrity oracle outside the
 * collected heap says what every edge must lead to.
 *
 * The graph is NODES base nodes, allocated first and made old by full
 * collections, each with EDGES edges; a GC-allocated array keeps the base
 * nodes alive.  Thread t owns the base nodes whose index is t modulo the
 * thread count and is the only one to write their edges.  A mutation
 * points an edge either at another base node (old to old) or at a chain
 * of 1..4 new nodes built for it (old to young, and young to young inside
 * the chain).  A new chain is reachable only through that edge, so if a
 * store into an old node is not reported to the collector the chain is
 * freed, reused by later allocations and shows up as a wrong id, magic or
 * check word.  The oracle is a malloc'ed table (which the collector does
 * not scan, so it keeps nothing alive): for each edge the id of its first
 * target and the length of the chain.  Ids are unique (an atomic
 * counter); a chain's nodes have consecutive ids.
 *
 * Each thread checks its own nodes every VERIFY_EVERY mutations; at the
 * end the main thread checks all of them.  Usage:
 *   mt_mutate [--no-incremental] [SECONDS] [THREADS]
 * (default 3 seconds, 3 threads; 2-4 threads).  Incremental mode must run
 * on the wbdev VDB (see testutil.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "testutil.h"

#define NODES 40000
#define EDGES 4
#define MAX_CHAIN 4
#define VERIFY_EVERY 20000
#define MAX_THREADS 4
#define MAGIC 0x6d757461UL	/* "muta" */

struct gnode {
	unsigned long magic;
	unsigned long id;
	unsigned long check;	/* ~id */
	struct gnode *edge[EDGES];
};

/* Oracle entry for one edge: first target's id, chain length (0: a base
 * node). */
struct expect {
	unsigned long id;
	int len;
};

static struct gnode **base;		/* GC_MALLOC'ed, a root */
static struct expect *oracle;		/* malloc'ed: NODES * EDGES */
static atomic_ulong next_id = NODES;
static atomic_int stop;
static int nthreads = 3;

static struct gnode *new_node(unsigned long id)
{
	struct gnode *n = GC_MALLOC(sizeof(*n));

	CHECK(n, "out of memory");
	n->magic = MAGIC;
	n->id = id;
	n->check = ~id;
	return n;
}

static void check_node(const struct gnode *n, unsigned long id,
		       const char *what, int i, int e)
{
	CHECK(n != NULL, "base %d edge %d: %s: NULL", i, e, what);
	CHECK(n->magic == MAGIC && n->id == id && n->check == ~id,
	      "base %d edge %d: %s: want id %lu, found magic %lx id %lu "
	      "check %lx (freed while reachable?)", i, e, what, id,
	      n->magic, n->id, n->check);
}

static void verify_node(int i)
{
	const struct gnode *b = base[i];

	check_node(b, (unsigned long)i, "base node", i, -1);
	for (int e = 0; e < EDGES; e++) {
		const struct expect *x = &oracle[i * EDGES + e];
		const struct gnode *n = b->edge[e];

		if (x->len == 0) {
			check_node(n, x->id, "base target", i, e);
			continue;
		}
		for (int k = 0; k < x->len; k++) {
			check_node(n, x->id + (unsigned long)k, "chain node", i, e);
			n = n->edge[0];
		}
		CHECK(n == NULL, "base %d edge %d: chain longer than %d", i, e,
		      x->len);
	}
}

/* Thread t's nodes are t, t + nthreads, ... */
static void verify_owned(int t)
{
	for (int i = t; i < NODES; i += nthreads)
		verify_node(i);
}

static void mutate(int i, int e, unsigned long long r)
{
	struct expect *x = &oracle[i * EDGES + e];

	if (r & 1) {
		int target = (int)((r >> 8) % NODES);

		base[i]->edge[e] = base[target];
		x->id = (unsigned long)target;
		x->len = 0;
	} else {
		int len = 1 + (int)((r >> 8) % MAX_CHAIN);
		unsigned long id = atomic_fetch_add(&next_id, (unsigned long)len);
		struct gnode *head = NULL;

		/* Build back to front: the head has the smallest id. */
		for (int k = len - 1; k >= 0; k--) {
			struct gnode *n = new_node(id + (unsigned long)k);

			n->edge[0] = head;
			/* A young-to-old pointer too, never followed. */
			n->edge[1] = base[(r >> 16) % NODES];
			head = n;
		}
		base[i]->edge[e] = head;	/* the store to an old node */
		x->id = id;
		x->len = len;
	}
}

static void *mutator(void *arg)
{
	int t = (int)(uintptr_t)arg;
	unsigned long long seed = 0x9e3779b97f4a7c15ULL * (unsigned)(t + 1);
	long done = 0;

	while (!atomic_load(&stop)) {
		unsigned long long r = test_rand(&seed);
		int k = (int)((r >> 32) % (unsigned)((NODES - t + nthreads - 1) / nthreads));

		mutate(t + k * nthreads, (int)((r >> 24) % EDGES), r);
		/* Garbage, so that collections come often. */
		(void)GC_MALLOC(16 + (r >> 50) % 256);
		if (++done % VERIFY_EVERY == 0)
			verify_owned(t);
	}
	verify_owned(t);
	return (void *)done;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	pthread_t thr[MAX_THREADS];
	int incremental = 1;
	double seconds = 3, end;
	long mutations = 0, steps = 0;
	int a = 1;

	incremental = test_incremental_arg(argc, argv, &a);
	if (a < argc)
		seconds = atof(argv[a++]);
	if (a < argc)
		nthreads = atoi(argv[a++]);
	CHECK(nthreads >= 2 && nthreads <= MAX_THREADS, "2-4 threads");

	test_init(incremental);
	base = GC_MALLOC(NODES * sizeof(*base));
	oracle = malloc(NODES * EDGES * sizeof(*oracle));
	CHECK(base && oracle, "out of memory");
	for (int i = 0; i < NODES; i++)
		base[i] = new_node((unsigned long)i);
	for (int i = 0; i < NODES; i++)
		for (int e = 0; e < EDGES; e++) {
			base[i]->edge[e] = base[(i + e + 1) % NODES];
			oracle[i * EDGES + e] = (struct expect){
				(unsigned long)((i + e + 1) % NODES), 0 };
		}
	/* Make the graph old. */
	GC_gcollect();
	GC_gcollect();

	for (int t = 0; t < nthreads; t++)
		CHECK(pthread_create(&thr[t], NULL, mutator,
				     (void *)(uintptr_t)t) == 0,
		      "pthread_create");
	end = now() + seconds;
	while (now() < end) {
		steps++;
		if (incremental) {
			if (!GC_collect_a_little())
				GC_start_incremental_collection();
		} else if (steps % 16 == 0) {
			GC_gcollect();
		} else {
			usleep(1000);
		}
	}
	atomic_store(&stop, 1);
	for (int t = 0; t < nthreads; t++) {
		void *done;

		CHECK(pthread_join(thr[t], &done) == 0, "pthread_join");
		mutations += (long)done;
	}
	GC_gcollect();
	for (int i = 0; i < NODES; i++)
		verify_node(i);
	printf("mt_mutate: ok, %s, %d threads, %ld mutations, %lu "
	       "collections, VDB: %s\n",
	       incremental ? "incremental" : "non-incremental", nthreads,
	       mutations, (unsigned long)GC_get_gc_no(),
	       incremental ? GC_get_vdb_name() : "none");
	return 0;
}
