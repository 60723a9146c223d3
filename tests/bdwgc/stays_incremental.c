/*
 * stays_incremental - incremental mode survives a heap past the VM maps
 * limit guard of bdwgc 8.2.8 and later.
 *
 * Since 8.2.8 the collector switches incremental mode off (and warns
 * "GC incremental mode is turned off to prevent hitting VM maps limit")
 * once the heap has about twice as many pages as it allows unmapped
 * regions (~128 MiB): with MPROTECT_VDB each protected page may become a
 * mapping of its own.  The wbdev VDB protects whole heap sections in the
 * kernel without splitting them, so the guard must not fire while it
 * runs.  Builds up a live linked heap of 192 MiB (argv[1] in MiB), then
 * checks that incremental mode is on, the wbdev VDB still in use, and the
 * list intact after a full collection.
 */
#include "testutil.h"

#define NODE_BYTES 4096

struct node {
	struct node *next;
	unsigned long tag;
	char pad[NODE_BYTES - sizeof(struct node *) - sizeof(unsigned long)];
};

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 192;
	long n = mib * (1024 * 1024 / NODE_BYTES);
	struct node *head = NULL;
	const char *vdb;
	long i;

	test_enable_incremental();
	for (i = 0; i < n; i++) {
		struct node *p = GC_MALLOC(sizeof(struct node));

		CHECK(p, "out of memory at node %ld", i);
		p->next = head;
		p->tag = (unsigned long)i;
		head = p;
		if (i % 4096 == 0)
			GC_collect_a_little();
	}
	CHECK(GC_get_heap_size() >= (size_t)mib << 20,
	      "heap of %lu MiB is smaller than %ld MiB",
	      (unsigned long)(GC_get_heap_size() >> 20), mib);
	CHECK(GC_is_incremental_mode(),
	      "incremental mode was switched off with a %lu MiB heap",
	      (unsigned long)(GC_get_heap_size() >> 20));
	vdb = gc_vdb_name();
	CHECK(strncmp(vdb, "wbdev", 5) == 0, "VDB is now %s", vdb);
	GC_gcollect();
	for (i = n - 1; i >= 0; i--, head = head->next) {
		CHECK(head != NULL, "list ends early at %ld", i);
		CHECK(head->tag == (unsigned long)i, "node %ld has tag %lu",
		      i, head->tag);
	}
	printf("stays_incremental: ok, heap %lu MiB, VDB: %s\n",
	       (unsigned long)(GC_get_heap_size() >> 20), vdb);
	return 0;
}
