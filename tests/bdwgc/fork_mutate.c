/*
 * fork_mutate - fork while another thread allocates and mutates; then
 * collect (incrementally and fully) in both the parent and the child and
 * verify every object.
 *
 * The heap is an array of SLOTS chains of LEN nodes.  The mutator thread
 * replaces whole chains (built first, then published with one store) and
 * rewrites node values in place (value, then check = ~value).  The
 * parent verifies after stopping the mutator.  The child starts from a
 * snapshot taken at an arbitrary point, so it first completes a value
 * update that may have been cut in half (never the structure), then
 * churns, collects and verifies on its own.  A node freed while still
 * reachable shows up as a bad magic or a broken chain, because the
 * churn reuses freed memory.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>

#include "testutil.h"

#define SLOTS 512
#define LEN 64
#define NODE_MAGIC 0xc0ffee11UL

struct node {
	unsigned long magic;
	unsigned long value;
	unsigned long check;	/* ~value when consistent */
	struct node *next;
	char payload[32];
};

static struct node **slots;	/* GC-allocated, reachable from here */
static atomic_int stop_mutator;
static atomic_long generations;

static struct node *build_chain(unsigned long seed)
{
	struct node *head = NULL;

	for (int k = 0; k < LEN; k++) {
		struct node *n = GC_MALLOC(sizeof(*n));

		CHECK(n, "out of memory");
		n->magic = NODE_MAGIC;
		n->value = seed + (unsigned long)k;
		n->check = ~n->value;
		memset(n->payload, (int)(seed & 0x7f), sizeof(n->payload));
		n->next = head;
		head = n;
	}
	return head;
}

/* Returns the number of nodes checked; exits on corruption. */
static long verify(const char *who)
{
	long nodes = 0;

	for (int i = 0; i < SLOTS; i++) {
		int len = 0;

		for (struct node *n = slots[i]; n; n = n->next) {
			CHECK(n->magic == NODE_MAGIC,
			      "%s: slot %d node %d: bad magic %lx (freed "
			      "while reachable?)", who, i, len, n->magic);
			CHECK(n->check == ~n->value,
			      "%s: slot %d node %d: value %lx check %lx", who,
			      i, len, n->value, n->check);
			len++;
			nodes++;
		}
		CHECK(len == LEN, "%s: slot %d has %d nodes", who, i, len);
	}
	return nodes;
}

static void churn(unsigned long long *seed, int rounds)
{
	for (int r = 0; r < rounds; r++) {
		unsigned long long x = test_rand(seed);
		int i = (int)(x % SLOTS);

		if (x & 0x100) {
			slots[i] = build_chain(x >> 20);
		} else {
			struct node *n = slots[i];

			for (int k = (int)((x >> 9) % LEN); k > 0; k--)
				n = n->next;
			n->value = x >> 16;
			n->check = ~n->value;
		}
		/* Garbage, so that collections have work to do. */
		(void)GC_MALLOC(64 + (x >> 40) % 512);
	}
}

static void *mutator(void *arg)
{
	unsigned long long seed = (unsigned long long)(uintptr_t)arg;

	while (!atomic_load(&stop_mutator)) {
		churn(&seed, 1000);
		atomic_fetch_add(&generations, 1);
	}
	return NULL;
}

static void collect_and_verify(const char *who, unsigned long long seed)
{
	long nodes = 0;

	for (int round = 0; round < 5; round++) {
		churn(&seed, 20000);
		for (int s = 0; s < 50 && GC_collect_a_little(); s++)
			churn(&seed, 200);
		nodes = verify(who);
	}
	GC_gcollect();
	nodes = verify(who);
	printf("%s: ok, %ld nodes verified, VDB: %s\n", who, nodes,
	       gc_vdb_name());
	fflush(stdout);
}

int main(void)
{
	pthread_t thr;
	int forks = 3;

	test_enable_incremental();
	slots = GC_MALLOC(SLOTS * sizeof(*slots));
	CHECK(slots, "out of memory");
	for (int i = 0; i < SLOTS; i++)
		slots[i] = build_chain((unsigned long)i << 8);

	fflush(stdout);
	for (int f = 0; f < forks; f++) {
		pid_t pid;
		int status;

		atomic_store(&stop_mutator, 0);
		CHECK(pthread_create(&thr, NULL, mutator,
				     (void *)(uintptr_t)(f + 1)) == 0,
		      "pthread_create");
		while (atomic_load(&generations) < 3L * (f + 1))
			usleep(1000);
		pid = fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			/* The snapshot may hold a node mid-update: repair
			 * only values, never structure, then check. */
			for (int i = 0; i < SLOTS; i++)
				for (struct node *n = slots[i]; n; n = n->next)
					if (n->check != ~n->value)
						n->check = ~n->value;
			collect_and_verify("child", 1000 + f);
			CHECK(strncmp(gc_vdb_name(), "wbdev", 5) == 0 ||
			      getenv("WBDEV_TEST_ALLOW_FALLBACK"),
			      "child left the wbdev VDB");
			_exit(0);
		}
		atomic_store(&stop_mutator, 1);
		CHECK(pthread_join(thr, NULL) == 0, "pthread_join");
		collect_and_verify("parent", 2000 + f);
		CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child failed (status 0x%x)", status);
	}
	printf("fork_mutate: ok\n");
	return 0;
}
