/*
 * big_heap - a heap with more pages than vm.max_map_count, under random
 * pointer moves during incremental collections.
 *
 * With MPROTECT_VDB, protecting and unprotecting pages one by one splits
 * the heap mappings until mprotect fails with ENOMEM; the wbdev VDB
 * keeps one mapping per heap section.  Half of the objects ("movers")
 * are reachable only through one home slot in another object; moves
 * store a mover into a new slot and clear the old one, the classic case
 * a missed write barrier turns into a freed live object.  Garbage of the
 * same size is allocated between collections so that a wrongly freed
 * mover is reused and its tag destroyed.
 */
#include <errno.h>

#include "testutil.h"

#define OBJ_BYTES 512
#define NSLOTS 7

struct obj {
	unsigned long tag;		/* (id << 1) | 1 */
	struct obj *slot[NSLOTS];
	unsigned long pad[(OBJ_BYTES / sizeof(long)) - 1 - NSLOTS];
};

struct home {
	long holder;			/* index of the anchor object */
	int slot;
};

static struct obj **anchors;		/* GC root: even objects */

static long read_max_map_count(void)
{
	long v = 65530;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

int main(int argc, char **argv)
{
	long max_map = read_max_map_count();
	long pages = max_map + 8192;
	long nobj = pages * 4096 / OBJ_BYTES;
	long nanchor = nobj / 2, nmover = nobj - nanchor;
	long moves = argc > 1 ? atol(argv[1]) : 400000;
	struct obj **movers = malloc(nmover * sizeof(*movers)); /* unscanned */
	struct home *homes = malloc(nmover * sizeof(*homes));
	unsigned long long seed = 7;

	test_enable_incremental();
	CHECK(movers && homes, "malloc");
	printf("big_heap: vm.max_map_count %ld, %ld objects of %d bytes "
	       "(%ld MiB), %ld moves\n", max_map, nobj, OBJ_BYTES,
	       nobj * OBJ_BYTES >> 20, moves);
	fflush(stdout);
	anchors = GC_MALLOC(nanchor * sizeof(*anchors));
	CHECK(anchors, "out of memory");
	for (long i = 0; i < nanchor; i++) {
		anchors[i] = GC_MALLOC(sizeof(struct obj));
		CHECK(anchors[i], "out of memory at anchor %ld", i);
		anchors[i]->tag = ((unsigned long)i << 1) | 1;
	}
	for (long k = 0; k < nmover; k++) {
		struct obj *m = GC_MALLOC(sizeof(struct obj));

		CHECK(m, "out of memory at mover %ld", k);
		m->tag = ((unsigned long)(nanchor + k) << 1) | 1;
		anchors[k % nanchor]->slot[k / nanchor] = m;
		homes[k].holder = k % nanchor;
		homes[k].slot = (int)(k / nanchor);
		movers[k] = m;
	}
	CHECK(GC_get_heap_size() / 4096 > (size_t)max_map,
	      "heap of %lu pages is not above vm.max_map_count",
	      (unsigned long)(GC_get_heap_size() / 4096));

	for (long mv = 0; mv < moves; mv++) {
		long k = (long)(test_rand(&seed) % nmover);
		long b;
		int s;
		struct obj *m;

		do {
			b = (long)(test_rand(&seed) % nanchor);
			s = (int)(test_rand(&seed) % NSLOTS);
		} while (anchors[b]->slot[s] != NULL);
		m = anchors[homes[k].holder]->slot[homes[k].slot];
		CHECK(m == movers[k], "mover %ld lost its home", k);
		anchors[b]->slot[s] = m;
		anchors[homes[k].holder]->slot[homes[k].slot] = NULL;
		homes[k].holder = b;
		homes[k].slot = s;
		m = NULL;
		if (mv % 1000 == 0) {
			GC_collect_a_little();
			for (int g = 0; g < 20; g++)
				memset(GC_MALLOC(sizeof(struct obj)), 0xff,
				       sizeof(struct obj));
		}
	}
	while (GC_collect_a_little())
		;
	for (long g = 0; g < nmover / 4; g++)
		memset(GC_MALLOC(sizeof(struct obj)), 0xff, sizeof(struct obj));

	for (long k = 0; k < nmover; k++) {
		struct obj *m = anchors[homes[k].holder]->slot[homes[k].slot];

		CHECK(m == movers[k], "mover %ld not in its home", k);
		CHECK(m->tag == (((unsigned long)(nanchor + k) << 1) | 1),
		      "mover %ld tag %lx: freed while reachable", k, m->tag);
	}
	for (long i = 0; i < nanchor; i++)
		CHECK(anchors[i]->tag == (((unsigned long)i << 1) | 1),
		      "anchor %ld corrupted", i);
	printf("big_heap: ok, heap %lu MiB, %ld movers verified\n",
	       (unsigned long)(GC_get_heap_size() >> 20), nmover);
	return 0;
}
