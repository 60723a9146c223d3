/*
 * wbdev_kmod.c - adapter backend over the wbdev kernel module (/dev/wbdev).
 * Placeholder until the module's backend lands: it always refuses.
 */
#include <errno.h>

#include "wbdev_backend.h"

static int kmod_open(wbdev_t *w)
{
	wbdev_log(w, "kmod backend: not built yet");
	return -ENODEV;
}

const struct wbdev_backend_ops wbdev_kmod_ops = {
	.name = "kmod",
	.id = WBDEV_BACKEND_KMOD,
	.open = kmod_open,
};
