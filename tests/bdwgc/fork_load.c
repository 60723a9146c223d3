/*
 * fork_load - system(3), posix_spawn(3) and fork() without exec from a
 * process with a large tracked heap (default 256 MiB) while other threads
 * allocate and mutate; the child and the parent each complete a
 * collection and verify their heaps.
 *
 * The big heap is a chain of pointer-containing objects, one per page,; each
 * holds its index, a check word and a fill pattern derived from the
 * index, and is reachable only through its predecessor.  ALLOCATORS
 * threads each keep a small ring of chains that they replace and verify
 * while allocating garbage, during every spawn and fork.  Per round:
 *   1. system("exit 7") must report exit status 7;
 *   2. posix_spawn of /bin/sh -c "exit 5" must report 5;
 *   3. fork() without exec: the child (only the forking thread is left)
 *      rewrites part of the big heap (data, and pointers to new copies
 *      of blocks), allocates, collects incrementally
 *      and fully and verifies everything; the parent, with the
 *      allocators still running, does the same at the same time.
 * Usage: fork_load [--no-incremental] [MIB] [ROUNDS]
 * (default 256 MiB, 3 rounds).  Incremental mode must run on the wbdev
 * VDB (see testutil.h).
 */
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>

#include "testutil.h"

/* Object size: with the collector's extra byte (interior pointers) it
 * still fits in one page. */
#define BLOCK 4080
#define ALLOCATORS 2
#define RING 64
#define RING_LEN 32
#define MAGIC 0xf0f1f2f3UL

extern char **environ;

struct block {
	unsigned long magic;
	unsigned long index;
	unsigned long check;	/* ~index ^ generation */
	unsigned long generation;
	struct block *next;
	unsigned long fill[BLOCK / sizeof(unsigned long) - 5];
};

static struct block *big;	/* head of the big chain, a root */
static long nblocks;
static atomic_int stop;

static unsigned long fill_word(unsigned long index, unsigned long gen, int w)
{
	return (index * 0x9e3779b97f4a7c15UL) ^ (gen << 32) ^ (unsigned long)w;
}

static struct block *new_block(unsigned long index, struct block *next)
{
	struct block *b = GC_MALLOC(sizeof(*b));

	CHECK(b, "out of memory (block %lu)", index);
	b->magic = MAGIC;
	b->index = index;
	b->generation = 0;
	b->check = ~index;
	b->next = next;
	for (size_t w = 0; w < sizeof(b->fill) / sizeof(b->fill[0]); w++)
		b->fill[w] = fill_word(index, 0, (int)w);
	return b;
}

/* Verify a chain of blocks numbered from `first` down to `last`. */
static void verify_chain(const struct block *b, unsigned long first,
			 unsigned long len, const char *who)
{
	for (unsigned long k = 0; k < len; k++, b = b->next) {
		unsigned long index = first - k;

		CHECK(b && b->magic == MAGIC && b->index == index &&
		      b->check == (~index ^ b->generation),
		      "%s: block %lu of %lu broken (freed while reachable?)",
		      who, k, len);
		for (size_t w = 0; w < sizeof(b->fill) / sizeof(b->fill[0]);
		     w += 61)
			CHECK(b->fill[w] == fill_word(index, b->generation,
						      (int)w),
			      "%s: block %lu word %zu: bad fill", who, index, w);
	}
	CHECK(b == NULL, "%s: chain longer than %lu", who, len);
}

/* Rewrite every stride-th block of the big heap (a new generation), and
 * after every third of them replace the next block by a new copy: a
 * store of a young pointer into an old block, which is then the copy's
 * only reference. */
static void rewrite_big(unsigned long gen, long stride)
{
	long k = 0;

	for (struct block *b = big; b; b = b->next, k++) {
		if (k % stride)
			continue;
		b->generation = gen;
		b->check = ~b->index ^ gen;
		for (size_t w = 0; w < sizeof(b->fill) / sizeof(b->fill[0]); w++)
			b->fill[w] = fill_word(b->index, gen, (int)w);
		if (b->next && k % (3 * stride) == 0) {
			struct block *c = GC_MALLOC(sizeof(*c));

			CHECK(c, "out of memory (copy of %lu)", b->next->index);
			memcpy(c, b->next, sizeof(*c));
			b->next = c;
		}
	}
}

/* After a round: the parent's own generation on every rewritten block,
 * none of the child's (its heap is private). */
static void verify_generation(unsigned long gen, long stride)
{
	long k = 0;

	for (const struct block *b = big; b; b = b->next, k++)
		CHECK(b->generation == (k % stride ? 0 : gen),
		      "parent: block %lu has generation %lu, want %lu (a "
		      "child's write reached the parent?)", b->index,
		      b->generation, k % stride ? 0 : gen);
}

static struct block *small_chain(unsigned long first)
{
	struct block *head = NULL;

	for (unsigned long k = 0; k < RING_LEN; k++)
		head = new_block(first - (RING_LEN - 1) + k, head);
	return head;
}

static void *allocator(void *arg)
{
	unsigned long long seed = (uintptr_t)arg;
	struct block **ring = GC_MALLOC(RING * sizeof(*ring));
	unsigned long first[RING];

	CHECK(ring, "out of memory");
	for (int i = 0; i < RING; i++) {
		first[i] = 1000000UL * (uintptr_t)arg + (unsigned long)i * 100;
		ring[i] = small_chain(first[i]);
	}
	while (!atomic_load(&stop)) {
		unsigned long long r = test_rand(&seed);
		int i = (int)(r % RING);

		first[i] += RING * RING_LEN;
		ring[i] = small_chain(first[i]);
		(void)GC_MALLOC(32 + (r >> 40) % 2048);
		verify_chain(ring[(i + 1) % RING], first[(i + 1) % RING],
			     RING_LEN, "allocator");
	}
	for (int i = 0; i < RING; i++)
		verify_chain(ring[i], first[i], RING_LEN, "allocator");
	return NULL;
}

static void collect_and_verify(const char *who, unsigned long gen)
{
	rewrite_big(gen, 7);
	for (int s = 0; s < 200 && GC_collect_a_little(); s++)
		(void)GC_MALLOC(256);
	GC_gcollect();
	verify_chain(big, (unsigned long)nblocks - 1, (unsigned long)nblocks,
		     who);
}

static int wait_status(pid_t pid)
{
	int status;

	CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(status), "child did not exit (status 0x%x)", status);
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	pthread_t thr[ALLOCATORS];
	int incremental = 1, rounds = 3, a = 1;
	long mib = 256;

	incremental = test_incremental_arg(argc, argv, &a);
	if (a < argc)
		mib = atol(argv[a++]);
	if (a < argc)
		rounds = atoi(argv[a++]);
	test_init(incremental);
	nblocks = mib * 1024 * 1024 / 4096;
	for (long i = 0; i < nblocks; i++)
		big = new_block((unsigned long)i, big);
	GC_gcollect();
	verify_chain(big, (unsigned long)nblocks - 1, (unsigned long)nblocks,
		     "initial");

	for (int t = 0; t < ALLOCATORS; t++)
		CHECK(pthread_create(&thr[t], NULL, allocator,
				     (void *)(uintptr_t)(t + 1)) == 0,
		      "pthread_create");
	for (int round = 1; round <= rounds; round++) {
		char *sh_argv[] = { "sh", "-c", "exit 5", NULL };
		pid_t pid;
		int rc;

		rc = system("exit 7");
		CHECK(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 7,
		      "system: status 0x%x", rc);
		rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, sh_argv, environ);
		CHECK(rc == 0, "posix_spawn: %s", strerror(rc));
		CHECK(wait_status(pid) == 5, "posix_spawn child status");

		fflush(stdout);
		pid = fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			collect_and_verify("child", 1000 + (unsigned long)round);
			CHECK(!incremental ||
			      strncmp(GC_get_vdb_name(), "wbdev", 5) == 0 ||
			      getenv("WBDEV_TEST_ALLOW_FALLBACK"),
			      "child left the wbdev VDB");
			printf("fork_load: round %d: child ok, %lu collections\n",
			       round, (unsigned long)GC_get_gc_no());
			fflush(stdout);
			_exit(0);
		}
		collect_and_verify("parent", (unsigned long)round);
		CHECK(wait_status(pid) == 0, "fork child failed");
		verify_chain(big, (unsigned long)nblocks - 1,
			     (unsigned long)nblocks, "parent after child");
		verify_generation((unsigned long)round, 7);
		printf("fork_load: round %d: parent ok\n", round);
	}
	atomic_store(&stop, 1);
	for (int t = 0; t < ALLOCATORS; t++)
		CHECK(pthread_join(thr[t], NULL) == 0, "pthread_join");
	GC_gcollect();
	verify_chain(big, (unsigned long)nblocks - 1, (unsigned long)nblocks,
		     "final");
	printf("fork_load: ok, %s, %ld MiB, %d rounds, %lu collections, "
	       "VDB: %s\n", incremental ? "incremental" : "non-incremental",
	       mib, rounds, (unsigned long)GC_get_gc_no(),
	       incremental ? GC_get_vdb_name() : "none");
	return 0;
}
