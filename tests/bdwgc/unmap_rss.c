/*
 * unmap_rss - with --enable-munmap (bdwgc's default) blocks that stay free
 * for MUNMAP_THRESHOLD collections are returned to the OS; on the wbdev
 * VDB they are discarded through the adapter.  Check that the memory is
 * really freed (RSS drops), and that a block used again after being
 * unmapped is correct: it reads as zero and keeps what is stored into it
 * across collections.
 */
#include "testutil.h"

#define CHUNK (64 * 1024)
#define NCHUNKS 3200		/* 200 MiB */

static void **chunks;		/* GC root */

int main(void)
{
	long rss_full, rss_freed, rss_again;
	size_t unmapped;

	test_enable_incremental();
	chunks = GC_MALLOC(NCHUNKS * sizeof(void *));
	CHECK(chunks, "out of memory");
	for (int i = 0; i < NCHUNKS; i++) {
		chunks[i] = GC_MALLOC_ATOMIC(CHUNK);
		CHECK(chunks[i], "out of memory");
		memset(chunks[i], 0x5a, CHUNK);
	}
	rss_full = test_rss_bytes();
	for (int i = 0; i < NCHUNKS; i++)
		chunks[i] = NULL;
	for (int i = 0; i < 12; i++)
		GC_gcollect();
	unmapped = GC_get_unmapped_bytes();
	rss_freed = test_rss_bytes();
	printf("unmap_rss: RSS %ld MiB full, %ld MiB after unmapping "
	       "(%lu MiB unmapped)\n", rss_full >> 20, rss_freed >> 20,
	       (unsigned long)(unmapped >> 20));
	CHECK(unmapped >= (size_t)NCHUNKS * CHUNK / 2,
	      "only %lu bytes unmapped", (unsigned long)unmapped);
	CHECK(rss_full - rss_freed >= (long)NCHUNKS * CHUNK / 2,
	      "RSS dropped by %ld bytes only: memory not returned",
	      rss_full - rss_freed);

	/* Reuse the unmapped blocks (remap), now with pointers in them. */
	for (int i = 0; i < NCHUNKS; i++) {
		unsigned long *p = GC_MALLOC(CHUNK);

		CHECK(p, "out of memory");
		for (size_t w = 0; w < CHUNK / sizeof(long); w += 512)
			CHECK(p[w] == 0, "reused block not zero");
		p[0] = (unsigned long)i << 1 | 1;
		p[1] = (unsigned long)GC_MALLOC(32);	/* a pointer */
		CHECK(p[1], "out of memory");
		*(unsigned long *)p[1] = 0xfeed;
		chunks[i] = p;
	}
	for (int c = 0; c < 3; c++) {
		for (int s = 0; s < 20 && GC_collect_a_little(); s++)
			(void)GC_MALLOC(4096);
		GC_gcollect();
	}
	for (int i = 0; i < NCHUNKS; i++) {
		unsigned long *p = chunks[i];

		CHECK(p[0] == ((unsigned long)i << 1 | 1), "chunk %d lost", i);
		CHECK(*(unsigned long *)p[1] == 0xfeed,
		      "chunk %d: target freed while reachable", i);
	}
	rss_again = test_rss_bytes();
	printf("unmap_rss: ok, RSS %ld MiB after reuse\n", rss_again >> 20);
	return 0;
}
