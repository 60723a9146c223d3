/*
 * no-libc-alloc - the adapter calls no libc allocator once a handle is
 * open.  A collector maps heap memory (wbdev_map) and collects while its
 * world is stopped; a stopped thread may hold the malloc arena lock, so a
 * malloc there can deadlock.  Linked with -Wl,--wrap=malloc,... so that
 * the adapter's (static) calls to malloc, calloc and realloc are counted.
 *
 * usage: wbdev-no-libc-alloc   (backend from WBDEV_BACKEND; exit 77 when
 * no backend works here, 1 on a counted allocation or a failed call)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <wbdev.h>
#include "backend_env.h"

#define NMAPS 100		/* past the table's first capacity */

static unsigned long counted;
static int counting;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
	counted += counting;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	counted += counting;
	return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	counted += counting;
	return __real_realloc(p, n);
}

int main(void)
{
	static void *addr[NMAPS];
	static void *pages[64];
	wbdev_t *w;
	size_t pg;
	int i, err;

	err = test_wbdev_open(&w);
	if (err == -ENODEV) {
		printf("no-libc-alloc: SKIP (no backend here)\n");
		return 77;
	}
	if (err) {
		printf("no-libc-alloc: FAIL wbdev_open: %s\n", wbdev_strerror(err));
		return 1;
	}
	pg = wbdev_page_size(w);
	counting = 1;
	for (i = 0; i < NMAPS; i++) {
		struct wbdev_collect c = { 0 };

		err = wbdev_map(w, NULL, 4 * pg, &addr[i]);
		if (!err)
			err = wbdev_protect(w, addr[i], 4 * pg);
		if (!err) {
			((char *)addr[i])[pg] = 1;
			c.start = addr[i];
			c.len = 4 * pg;
			c.flags = WBDEV_COLLECT_REPROTECT;
			c.pages = pages;
			c.max = 64;
			err = wbdev_collect(w, &c) < 0;
		}
		if (err) {
			printf("no-libc-alloc: FAIL map/protect/collect %d\n", i);
			return 1;
		}
	}
	for (i = 0; i < NMAPS; i += 2)
		if (wbdev_unmap(w, (char *)addr[i] + pg, pg)) {
			printf("no-libc-alloc: FAIL unmap %d\n", i);
			return 1;
		}
	counting = 0;
	if (counted) {
		printf("no-libc-alloc: FAIL %lu libc allocation(s) after "
		       "wbdev_open (%s backend)\n", counted,
		       wbdev_backend_name(w));
		return 1;
	}
	wbdev_close(w);
	printf("no-libc-alloc: PASS (%d mappings, no libc allocation)\n",
	       NMAPS);
	return 0;
}
