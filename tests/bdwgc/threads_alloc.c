/*
 * threads_alloc - many threads allocate and link binary trees while the
 * main thread keeps incremental marking going; every tree is verified
 * after each collection step it lived through and again at the end.
 * Trees are rebuilt bottom-up and top-down (top-down stores pointers to
 * new children into nodes allocated earlier, which only the write
 * barrier can report).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "testutil.h"

#define NTHREADS 8
#define DEPTH 12
#define ITERS 40
#define TAG 0x7eee0000UL

struct tnode {
	unsigned long tag;
	struct tnode *left, *right;
	unsigned long depth;
};

static atomic_int done_threads;

static struct tnode *new_node(unsigned long depth)
{
	struct tnode *n = GC_MALLOC(sizeof(*n));

	CHECK(n, "out of memory");
	n->tag = TAG | depth;
	n->depth = depth;
	return n;
}

static struct tnode *bottom_up(unsigned long depth)
{
	struct tnode *n = new_node(depth);

	if (depth > 0) {
		n->left = bottom_up(depth - 1);
		n->right = bottom_up(depth - 1);
	}
	return n;
}

static void top_down(struct tnode *n)
{
	if (n->depth == 0)
		return;
	n->left = new_node(n->depth - 1);
	n->right = new_node(n->depth - 1);
	top_down(n->left);
	top_down(n->right);
}

static long check_tree(const struct tnode *n, unsigned long depth)
{
	CHECK(n != NULL, "missing node at depth %lu", depth);
	CHECK(n->tag == (TAG | depth) && n->depth == depth,
	      "node at depth %lu corrupted (tag %lx): freed while reachable",
	      depth, n->tag);
	if (depth == 0)
		return 1;
	return 1 + check_tree(n->left, depth - 1)
		 + check_tree(n->right, depth - 1);
}

static void *worker(void *arg)
{
	unsigned long long seed = (uintptr_t)arg;
	struct tnode *keep[4] = { 0 };
	long expected = (1L << (DEPTH + 1)) - 1;

	for (int it = 0; it < ITERS; it++) {
		int k = (int)(test_rand(&seed) % 4);

		if (test_rand(&seed) & 1) {
			keep[k] = bottom_up(DEPTH);
		} else {
			keep[k] = new_node(DEPTH);
			top_down(keep[k]);
		}
		for (int j = 0; j < 4; j++)
			if (keep[j])
				CHECK(check_tree(keep[j], DEPTH) == expected,
				      "tree size");
	}
	atomic_fetch_add(&done_threads, 1);
	return NULL;
}

int main(void)
{
	pthread_t thr[NTHREADS];
	long steps = 0;

	test_enable_incremental();
	for (int i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&thr[i], NULL, worker,
				     (void *)(uintptr_t)(i + 1)) == 0,
		      "pthread_create");
	while (atomic_load(&done_threads) < NTHREADS) {
		if (!GC_collect_a_little())
			GC_start_incremental_collection();
		steps++;
	}
	for (int i = 0; i < NTHREADS; i++)
		CHECK(pthread_join(thr[i], NULL) == 0, "pthread_join");
	GC_gcollect();
	printf("threads_alloc: ok, %d threads, %ld collection steps, %lu "
	       "collections\n", NTHREADS, steps, (unsigned long)GC_get_gc_no());
	return 0;
}
