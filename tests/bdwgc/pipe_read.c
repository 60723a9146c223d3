/*
 * pipe_read - read(2) from a pipe into a pointer-containing GC object in
 * the middle of an incremental collection.
 *
 * The holder object H is reachable and (probably) already scanned when
 * the kernel writes, into H, the only pointers to freshly allocated
 * targets.  With MPROTECT_VDB the read fails with EFAULT (H's page is
 * write-protected); the wbdev VDB records the kernel's write, so H is
 * rescanned and the targets survive.  A target that was wrongly freed is
 * detected through a disappearing link kept in malloc'd memory (not
 * scanned) and through its contents after the heap is reused.
 */
#include <errno.h>

#include "testutil.h"

#define NTARGETS 256
#define TARGET_WORDS 16
#define ROUNDS 60
#define MAGIC 0x5eed5eedUL

struct holder {
	void *ptrs[NTARGETS];
};

struct node {
	struct node *next;
	unsigned long pad[6];
};

static struct holder *root_holder;	/* static root */
static struct node *root_list;

static void build_list(long n)
{
	for (long i = 0; i < n; i++) {
		struct node *nd = GC_MALLOC(sizeof(*nd));

		CHECK(nd, "out of memory");
		nd->next = root_list;
		root_list = nd;
	}
}

int main(void)
{
	int fds[2];
	void **links = malloc(NTARGETS * sizeof(void *));
	unsigned long long seed = 42;
	long missed_window = 0;

	test_enable_incremental();
	CHECK(links, "malloc");
	/* A heap big enough that a collection takes many small steps. */
	build_list(1000000);
	CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));

	for (int round = 0; round < ROUNDS; round++) {
		void *addrs[NTARGETS];
		int steps = (int)(test_rand(&seed) % 3);
		ssize_t n;

		root_holder = GC_MALLOC(sizeof(struct holder));
		CHECK(root_holder, "out of memory");
		GC_start_incremental_collection();
		for (int s = 0; s < steps; s++)
			if (!GC_collect_a_little()) {
				missed_window++; /* already done */
				break;
			}

		/* New targets: their only pointers go through the pipe. */
		for (int i = 0; i < NTARGETS; i++) {
			unsigned long *t = GC_MALLOC(TARGET_WORDS
						     * sizeof(unsigned long));

			CHECK(t, "out of memory");
			for (int w = 0; w < TARGET_WORDS; w++)
				t[w] = MAGIC ^ (unsigned long)(round * 1000 + i);
			addrs[i] = t;
			links[i] = (void *)GC_HIDE_POINTER(t);
			CHECK(GC_general_register_disappearing_link(&links[i],
								    t) == 0,
			      "register link");
		}
		n = write(fds[1], addrs, sizeof(addrs));
		CHECK(n == (ssize_t)sizeof(addrs), "write: %s", strerror(errno));
		memset(addrs, 0, sizeof(addrs));

		/* The kernel stores the pointers into the GC heap. */
		n = read(fds[0], root_holder->ptrs, sizeof(root_holder->ptrs));
		CHECK(n == (ssize_t)sizeof(root_holder->ptrs),
		      "read(2) into a GC object failed: %s",
		      n < 0 ? strerror(errno) : "short read");

		/* Finish the collection, then reuse the freed memory. */
		while (GC_collect_a_little())
			;
		for (int i = 0; i < 2000; i++)
			memset(GC_MALLOC(TARGET_WORDS * sizeof(unsigned long)),
			       0xa5, TARGET_WORDS * sizeof(unsigned long));

		for (int i = 0; i < NTARGETS; i++) {
			unsigned long *t = root_holder->ptrs[i];

			CHECK(links[i] != NULL,
			      "round %d: target %d was collected although "
			      "reachable", round, i);
			for (int w = 0; w < TARGET_WORDS; w++)
				CHECK(t[w] == (MAGIC ^ (unsigned long)(round * 1000 + i)),
				      "round %d: target %d word %d overwritten "
				      "(freed while reachable)", round, i, w);
			GC_unregister_disappearing_link(&links[i]);
		}
	}
	printf("pipe_read: %d rounds, %ld with the collection already "
	       "finished before the read\n", ROUNDS, missed_window);
	CHECK(missed_window < ROUNDS, "no read happened during a collection");
	printf("pipe_read: ok\n");
	return 0;
}
