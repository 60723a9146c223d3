/*
 * unchanged_prog - an ordinary bdwgc client, built against Debian 12's
 * libgc-dev headers and libgc.so.1 and run unchanged on the patched
 * library (LD_LIBRARY_PATH).  It uses only the 8.2 API; the incremental
 * mode comes from GC_ENABLE_INCREMENTAL=1 in the environment.
 */
#include <gc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cell {
	long id;
	struct cell *next;
	char *name;
};

int main(void)
{
	struct cell *head = NULL;

	GC_INIT();
	for (long i = 0; i < 200000; i++) {
		struct cell *c = GC_MALLOC(sizeof(*c));

		if (!c)
			return 2;
		c->id = i;
		c->name = GC_MALLOC_ATOMIC(16);
		snprintf(c->name, 16, "c%ld", i);
		c->next = head;
		head = c;
		if (i % 3 == 0)
			(void)GC_MALLOC(100);	/* garbage */
	}
	GC_gcollect();
	for (long i = 199999; head; head = head->next, i--) {
		char want[24];

		snprintf(want, sizeof(want), "c%ld", i);
		if (head->id != i || strcmp(head->name, want) != 0) {
			fprintf(stderr, "unchanged_prog: cell %ld corrupted\n", i);
			return 1;
		}
	}
	printf("unchanged_prog: ok (incremental %d, protection needs %d)\n",
	       GC_is_incremental_mode(), GC_incremental_protection_needs());
	return 0;
}
