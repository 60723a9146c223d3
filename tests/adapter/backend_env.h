/*
 * backend_env.h - the adapter tests' choice of backend.
 *
 * The adapter reads no environment variable: its caller decides (bdwgc
 * reads GC_WBDEV_BACKEND).  These tests take theirs from WBDEV_BACKEND
 * (kmod, uffd or auto; unset means auto), so one binary runs against
 * every backend.
 */
#ifndef WBDEV_TEST_BACKEND_ENV_H
#define WBDEV_TEST_BACKEND_ENV_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wbdev.h"

/* wbdev_open() with the backend WBDEV_BACKEND names; -EINVAL if bad. */
static inline int test_wbdev_open(wbdev_t **out)
{
	struct wbdev_options o;
	const char *v = getenv("WBDEV_BACKEND");

	memset(&o, 0, sizeof(o));
	if (!v || !*v || !strcmp(v, "auto"))
		o.backend = WBDEV_BACKEND_AUTO;
	else if (!strcmp(v, "kmod"))
		o.backend = WBDEV_BACKEND_KMOD;
	else if (!strcmp(v, "uffd"))
		o.backend = WBDEV_BACKEND_UFFD;
	else
		return -EINVAL;
	return wbdev_open(out, &o);
}

#endif
